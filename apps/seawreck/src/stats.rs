//! Counters and the latency histogram: one [`ShardStats`] per shard, no
//! sharing; merged at the end into a [`Report`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// What one shard measured.
#[derive(Debug, Clone)]
pub struct ShardStats {
    /// Latency in µs (1 µs to 60 s, 3 significant digits).
    pub latency: Histogram<u64>,
    /// Responses received, by status class (`[1xx, 2xx, 3xx, 4xx, 5xx]`).
    pub status: [u64; 5],
    /// Failures by kind (`connect`, `read`, `write`, `timeout`, `malformed`, `closed`).
    pub errors: BTreeMap<&'static str, u64>,
    /// Response bytes received.
    pub bytes: u64,
}

impl Default for ShardStats {
    fn default() -> Self {
        ShardStats {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            status: [0; 5],
            errors: BTreeMap::new(),
            bytes: 0,
        }
    }
}

impl ShardStats {
    /// Responses of any status.
    pub fn responses(&self) -> u64 {
        self.status.iter().sum()
    }

    /// Counts one response.
    pub fn record(&mut self, status: u16, latency_us: u64, bytes: usize) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.status[class] += 1;
        self.bytes += bytes as u64;
        self.latency.saturating_record(latency_us.max(1));
    }

    /// Counts one failure.
    pub fn error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ShardStats) {
        let _ = self.latency.add(&other.latency);
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.bytes += other.bytes;
    }
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

/// The final report (`--json` prints it as one line).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The URL loaded.
    pub url: String,
    /// Connections.
    pub connections: usize,
    /// Requests per write.
    pub pipeline: usize,
    /// Target rate (open loop), if any.
    pub rate: Option<f64>,
    /// Measured seconds.
    pub duration_s: f64,
    /// Responses received.
    pub requests: u64,
    /// Responses per second.
    pub requests_per_sec: f64,
    /// Response bytes per second.
    pub bytes_per_sec: f64,
    /// Responses by status class.
    pub status: BTreeMap<String, u64>,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Latency in µs.
    pub latency_us: Latency,
}

impl Report {
    /// The report for merged `stats` over `duration_s`.
    pub fn new(
        url: &str,
        connections: usize,
        pipeline: usize,
        rate: Option<f64>,
        duration_s: f64,
        stats: &ShardStats,
    ) -> Report {
        let h = &stats.latency;
        let requests = stats.responses();
        let status = ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .iter()
            .zip(stats.status)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        Report {
            url: url.to_owned(),
            connections,
            pipeline,
            rate,
            duration_s,
            requests,
            requests_per_sec: requests as f64 / duration_s.max(1e-9),
            bytes_per_sec: stats.bytes as f64 / duration_s.max(1e-9),
            status,
            errors: stats
                .errors
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            latency_us: Latency {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                p99_9: h.value_at_quantile(0.999),
                max: h.max(),
                mean: h.mean(),
            },
        }
    }

    /// The human-readable summary.
    pub fn text(&self) -> String {
        let l = &self.latency_us;
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let status = self
            .status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{} requests in {:.2} s: {:.0} requests/s, {:.2} MB/s\n\
             status: {status}\n\
             errors: {errors}\n\
             latency (µs): p50 {} p90 {} p99 {} p99.9 {} max {} mean {:.1}\n",
            self.requests,
            self.duration_s,
            self.requests_per_sec,
            self.bytes_per_sec / 1e6,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
            l.mean
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_reports_percentiles() {
        let mut a = ShardStats::default();
        let mut b = ShardStats::default();
        for i in 1..=100 {
            a.record(200, i, 10);
        }
        b.record(503, 1000, 10);
        b.error("timeout");
        a.merge(&b);
        let r = Report::new("http://x/", 2, 1, None, 2.0, &a);
        assert_eq!(r.requests, 101);
        assert_eq!(r.requests_per_sec, 50.5);
        assert_eq!(r.status["2xx"], 100);
        assert_eq!(r.status["5xx"], 1);
        assert_eq!(r.errors["timeout"], 1);
        assert_eq!(r.latency_us.p50, 51);
        assert_eq!(r.latency_us.max, 1000);
        assert!(r.text().contains("errors: timeout 1"));
    }
}
