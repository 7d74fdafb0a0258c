//! Medians, spreads and side-by-side ratios.

use serde::{Deserialize, Serialize};

/// A measured quantity over runs: every run's value plus median, min and max.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// One value per run, in run order.
    pub runs: Vec<f64>,
    /// Median of `runs` (mean of the middle two for an even count); `None` if empty.
    pub median: Option<f64>,
    /// Smallest run.
    pub min: Option<f64>,
    /// Largest run.
    pub max: Option<f64>,
}

impl Stat {
    /// Summarises the given runs (non-finite values are dropped).
    pub fn new(runs: Vec<f64>) -> Self {
        let runs: Vec<f64> = runs.into_iter().filter(|x| x.is_finite()).collect();
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        Stat {
            median: median_sorted(&sorted),
            min: sorted.first().copied(),
            max: sorted.last().copied(),
            runs,
        }
    }

    /// Whether there is no value at all.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Per-run ratios of interleaved runs, oriented so that > 1 means ours is better:
/// `ours / peer` when higher is better (throughput), `peer / ours` otherwise (time).
/// Runs where either side is missing or the denominator is zero are skipped.
pub fn ratios(ours: &[f64], peer: &[f64], higher_is_better: bool) -> Vec<f64> {
    ours.iter()
        .zip(peer)
        .filter_map(|(&o, &p)| {
            let (num, den) = if higher_is_better { (o, p) } else { (p, o) };
            (den > 0.0).then(|| num / den)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Stat::new(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (Some(2.0), Some(1.0), Some(3.0)));
        assert_eq!(s.runs, [3.0, 1.0, 2.0]);
        assert_eq!(Stat::new(vec![4.0, 1.0, 2.0, 10.0]).median, Some(3.0));
        let empty = Stat::new(vec![f64::NAN]);
        assert!(empty.is_empty() && empty.median.is_none());
    }

    #[test]
    fn ratios_are_oriented_so_above_one_is_better() {
        // Throughput: ours 200 vs 100 -> 2x better.
        assert_eq!(ratios(&[200.0, 50.0], &[100.0, 100.0], true), [2.0, 0.5]);
        // Time: ours 50 ns vs 100 ns -> 2x better.
        assert_eq!(ratios(&[50.0], &[100.0], false), [2.0]);
        // Zero denominators and unpaired runs are dropped.
        assert_eq!(ratios(&[1.0, 2.0, 3.0], &[0.0, 1.0], true), [2.0]);
        let s = Stat::new(ratios(&[1.0, 3.0, 2.0], &[1.0, 1.0, 1.0], true));
        assert_eq!((s.median, s.min, s.max), (Some(2.0), Some(1.0), Some(3.0)));
    }
}
