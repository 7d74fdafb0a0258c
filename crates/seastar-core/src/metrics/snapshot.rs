//! Plain-data snapshots of the metrics of one shard or of all of them, and
//! the [`Collector`] through which built-in and app metrics are added to a
//! snapshot when it is taken.

use std::collections::BTreeMap;
use std::sync::Mutex;

use metrics::Key;

use crate::smp::{self, SubmitError};

/// The value of one metric on one shard.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A monotonic count (`counter!`).
    Counter(u64),
    /// A monotonic total with a fractional part, in a base unit: the
    /// runtime's time counters in seconds, as Prometheus wants them.
    FloatCounter(f64),
    /// A value that goes up and down (`gauge!`).
    Gauge(f64),
    /// A distribution over fixed buckets (`histogram!`).
    Histogram(HistogramValue),
}

impl Value {
    /// The Prometheus type name: `counter`, `gauge` or `histogram`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Counter(_) | Value::FloatCounter(_) => "counter",
            Value::Gauge(_) => "gauge",
            Value::Histogram(_) => "histogram",
        }
    }
}

/// A histogram's buckets, sum and count.
///
/// ```
/// use seastar_core::metrics::HistogramValue;
///
/// let h = HistogramValue { bounds: vec![1.0, 2.0], buckets: vec![3, 0, 1], sum: 7.5, count: 4 };
/// let le: Vec<_> = h.cumulative().collect();
/// assert_eq!(le, vec![(1.0, 3), (2.0, 3), (f64::INFINITY, 4)]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramValue {
    /// Upper bounds of the finite buckets, ascending.
    pub bounds: Vec<f64>,
    /// `bounds.len() + 1` counts, each of its own bucket (not cumulative):
    /// `buckets[i]` counts values in `(bounds[i-1], bounds[i]]`, the last
    /// one values above every bound.
    pub buckets: Vec<u64>,
    /// Sum of the recorded values.
    pub sum: f64,
    /// Number of recorded values.
    pub count: u64,
}

impl HistogramValue {
    /// Prometheus' cumulative buckets: `(le, values <= le)`, ending with
    /// `(+Inf, count)`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let uppers = self.bounds.iter().copied().chain([f64::INFINITY]);
        uppers.zip(self.buckets.iter()).scan(0u64, |acc, (le, n)| {
            *acc += n;
            Some((le, *acc))
        })
    }
}

/// One metric of one shard: name, labels (without `shard`) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The name as recorded.
    pub name: String,
    /// The labels as recorded, in order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: Value,
}

/// Every metric of one shard at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardSnapshot {
    /// The shard the figures come from.
    pub shard: usize,
    /// Its samples, sorted by name then labels.
    pub samples: Vec<Sample>,
    /// Help texts supplied by collectors, by metric name.
    pub help: BTreeMap<String, String>,
}

/// Every metric of every shard, from [`gather`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardSnapshot>,
    /// Help texts by metric name: from `describe_*!` calls and collectors.
    pub help: BTreeMap<String, String>,
}

impl Snapshot {
    /// The help text of metric `name`, if any.
    pub fn help(&self, name: &str) -> Option<&str> {
        self.help.get(name).map(String::as_str)
    }
}

/// What a collector function adds to the snapshot of its shard.
///
/// ```
/// use seastar_core::metrics::{self, Collector};
///
/// fn queue_depth(c: &mut Collector<'_>) {
///     c.gauge("app_queue_depth", "Requests waiting.", &[("queue", "main")], 3.0);
/// }
///
/// seastar_core::Runtime::builder().shards(1).build().unwrap().run(async {
///     metrics::register_collector("app_queue", queue_depth);
///     let snap = metrics::gather().await.unwrap();
///     assert!(snap.shards[0].samples.iter().any(|s| s.name == "app_queue_depth"));
/// });
/// ```
#[derive(Debug)]
pub struct Collector<'a> {
    pub(super) out: &'a mut ShardSnapshot,
}

impl Collector<'_> {
    /// The shard being collected.
    pub fn shard(&self) -> usize {
        self.out.shard
    }

    /// Adds a counter.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.push(name, help, labels, Value::Counter(value));
    }

    /// Adds a counter with a fractional value (a total in seconds).
    pub fn counter_f64(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.push(name, help, labels, Value::FloatCounter(value));
    }

    /// Adds a gauge.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.push(name, help, labels, Value::Gauge(value));
    }

    /// Adds a histogram.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: HistogramValue,
    ) {
        self.push(name, help, labels, Value::Histogram(value));
    }

    fn push(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: Value) {
        if !help.is_empty() && !self.out.help.contains_key(name) {
            self.out.help.insert(name.to_owned(), help.to_owned());
        }
        self.out.samples.push(Sample {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        });
    }
}

/// A function adding metrics to its shard's snapshot; runs on that shard.
pub type CollectorFn = fn(&mut Collector<'_>);

static COLLECTORS: Mutex<Vec<(&'static str, CollectorFn)>> = Mutex::new(Vec::new());

/// Registers `f` under `name` (process-wide; registering a name again
/// replaces its function). Every snapshot of every shard then calls it on
/// that shard, so it reads the shard's own thread-local state: this is how
/// a library exports counters it keeps in plain `Cell`s (seastar-net's
/// connection counters, memcached's statistics) at no cost on its hot path.
pub fn register_collector(name: &'static str, f: CollectorFn) {
    let mut c = COLLECTORS.lock().unwrap_or_else(|e| e.into_inner());
    match c.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = f,
        None => c.push((name, f)),
    }
}

/// The labels of a `metrics` key as owned pairs.
pub(super) fn label_pairs(key: &Key) -> Vec<(String, String)> {
    key.labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect()
}

/// The calling shard's metrics: those recorded through the `metrics`
/// facade, the built-in ones and every registered collector's.
///
/// # Panics
///
/// Outside a shard.
pub fn local_snapshot() -> ShardSnapshot {
    let mut snap = ShardSnapshot {
        shard: crate::shard_id(),
        ..ShardSnapshot::default()
    };
    crate::reactor::with(|s| s.metrics().samples(&mut snap.samples));
    let collectors = COLLECTORS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut c = Collector { out: &mut snap };
    super::builtin::collect(&mut c);
    for (_, f) in collectors {
        f(&mut c);
    }
    snap.samples
        .sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    snap
}

/// Takes a snapshot on every shard, by message passing (each shard reads
/// only its own registry), and returns them in shard order with the help
/// texts merged.
///
/// ```
/// use seastar_core::{Runtime, metrics};
///
/// Runtime::builder().shards(2).build().unwrap().run(async {
///     metrics::facade::counter!("doc_calls_total").increment(1);
///     let snap = metrics::gather().await.unwrap();
///     assert_eq!(snap.shards.len(), 2);
///     let mine = snap.shards[0].samples.iter().find(|s| s.name == "doc_calls_total");
///     assert_eq!(mine.unwrap().value, metrics::Value::Counter(1));
/// });
/// ```
pub async fn gather() -> Result<Snapshot, SubmitError> {
    let shards = smp::invoke_on_all(|| async { local_snapshot() }).await?;
    let mut help = super::recorder::descriptions();
    for s in &shards {
        for (k, v) in &s.help {
            help.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Ok(Snapshot { shards, help })
}
