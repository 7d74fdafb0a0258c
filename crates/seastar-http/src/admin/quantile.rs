//! Latency percentiles from fixed-bucket histograms, the way Prometheus'
//! `histogram_quantile` estimates them: find the bucket holding the rank,
//! interpolate linearly inside it; a rank in the overflow bucket answers
//! the highest finite bound.

use seastar_core::metrics::HistogramValue;

/// `a + b` bucket by bucket (`b` is ignored if its buckets differ).
pub(crate) fn merge(mut a: HistogramValue, b: &HistogramValue) -> HistogramValue {
    if a.bounds != b.bounds || a.buckets.len() != b.buckets.len() {
        return a;
    }
    for (x, y) in a.buckets.iter_mut().zip(&b.buckets) {
        *x = x.wrapping_add(*y);
    }
    a.sum += b.sum;
    a.count = a.count.wrapping_add(b.count);
    a
}

/// What `new` recorded since `old` (both cumulative since the start);
/// `new` whole when `old` is absent or has other buckets.
pub(crate) fn since(new: &HistogramValue, old: Option<&HistogramValue>) -> HistogramValue {
    match old {
        Some(o) if o.bounds == new.bounds && o.buckets.len() == new.buckets.len() => {
            HistogramValue {
                bounds: new.bounds.clone(),
                buckets: (new.buckets.iter().zip(&o.buckets))
                    .map(|(n, o)| n.saturating_sub(*o))
                    .collect(),
                sum: (new.sum - o.sum).max(0.0),
                count: new.count.saturating_sub(o.count),
            }
        }
        _ => new.clone(),
    }
}

/// The `q`-quantile (`0..=1`) of `h`, or `None` when it recorded nothing.
pub(crate) fn quantile(h: &HistogramValue, q: f64) -> Option<f64> {
    let total: u64 = h.buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut seen = 0u64;
    for (i, &n) in h.buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let Some(&upper) = h.bounds.get(i) else {
                // The overflow bucket: no upper bound to interpolate to.
                return h.bounds.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { h.bounds[i - 1] };
            let inside = (rank - seen as f64) / n as f64;
            return Some(lower + (upper - lower) * inside.clamp(0.0, 1.0));
        }
        seen += n;
    }
    h.bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(buckets: &[u64]) -> HistogramValue {
        HistogramValue {
            bounds: vec![0.001, 0.01, 0.1],
            buckets: buckets.to_vec(),
            sum: 0.0,
            count: buckets.iter().sum(),
        }
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_holding_the_rank() {
        // 100 values: 50 in (0, 1 ms], 40 in (1, 10 ms], 10 in (10, 100 ms].
        let x = h(&[50, 40, 10, 0]);
        assert_eq!(quantile(&x, 0.5), Some(0.001));
        let p90 = quantile(&x, 0.9).unwrap();
        assert!((p90 - 0.01).abs() < 1e-12, "{p90}");
        let p95 = quantile(&x, 0.95).unwrap();
        assert!((p95 - 0.055).abs() < 1e-12, "{p95}");
        let p25 = quantile(&x, 0.25).unwrap();
        assert!((p25 - 0.0005).abs() < 1e-12, "{p25}");
    }

    #[test]
    fn empty_histograms_have_no_quantile_and_overflow_answers_the_top_bound() {
        assert_eq!(quantile(&h(&[0, 0, 0, 0]), 0.5), None);
        assert_eq!(quantile(&h(&[0, 0, 1, 9]), 0.99), Some(0.1));
    }

    #[test]
    fn windows_subtract_cumulative_histograms_and_merge_adds_them() {
        let d = since(&h(&[5, 3, 1, 0]), Some(&h(&[5, 1, 0, 0])));
        assert_eq!((d.buckets.clone(), d.count), (vec![0, 2, 1, 0], 3));
        let m = merge(h(&[1, 0, 0, 0]), &h(&[0, 2, 0, 1]));
        assert_eq!((m.buckets, m.count), (vec![1, 2, 0, 1], 4));
        let other = HistogramValue {
            bounds: vec![1.0],
            buckets: vec![7, 7],
            sum: 0.0,
            count: 14,
        };
        assert_eq!(merge(h(&[1, 0, 0, 0]), &other).count, 1);
        assert_eq!(since(&h(&[2, 0, 0, 0]), Some(&other)).count, 2);
    }
}
