//! One shard's registry: its metrics by key, owned by the shard's reactor
//! (so it lives and dies with the runtime) and touched only on its thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use metrics::Key;

use super::cell::{CounterCell, GaugeCell, HistogramCell, TOKEN};
use super::snapshot::{Sample, Value, label_pairs};
use crate::reactor;

/// `Key` carries a hash computed once (at compile time for static keys);
/// its `Hash` impl writes just that `u64`, which this hasher passes on.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Key`; fold anything else in (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Map<T> = RefCell<HashMap<Key, Arc<T>, BuildHasherDefault<KeyHasher>>>;

/// Source of registry tokens (0 means "no registry").
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// The metrics recorded on one shard through the `metrics` facade.
pub(crate) struct Registry {
    token: u64,
    counters: Map<CounterCell>,
    gauges: Map<GaugeCell>,
    histograms: Map<HistogramCell>,
    /// When the previous snapshot was taken and the shard's busy time then
    /// (for the utilization gauge).
    pub(super) last: Cell<(Instant, u64)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("counters", &self.counters.borrow().len())
            .field("gauges", &self.gauges.borrow().len())
            .field("histograms", &self.histograms.borrow().len())
            .finish()
    }
}

impl Registry {
    /// A registry for the shard being created on the calling thread; makes
    /// it the thread's own and installs the recorder if nobody has.
    pub(crate) fn new(_shard: usize) -> Registry {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        TOKEN.with(|t| t.set(token));
        if let Err(e) = super::install() {
            tracing::debug!(error = %e, "seastar metrics recorder not installed");
        }
        Registry {
            token,
            counters: RefCell::default(),
            gauges: RefCell::default(),
            histograms: RefCell::default(),
            last: Cell::new((Instant::now(), 0)),
        }
    }

    pub(super) fn counter(&self, key: &Key) -> Arc<CounterCell> {
        lookup(&self.counters, key, || {
            CounterCell::new(self.token, key.clone())
        })
    }

    pub(super) fn gauge(&self, key: &Key) -> Arc<GaugeCell> {
        lookup(&self.gauges, key, || {
            GaugeCell::new(self.token, key.clone())
        })
    }

    pub(super) fn histogram(&self, key: &Key) -> Arc<HistogramCell> {
        lookup(&self.histograms, key, || {
            HistogramCell::new(self.token, key.clone(), super::buckets_for(key.name()))
        })
    }

    /// Every metric of this registry, as samples (unsorted).
    pub(super) fn samples(&self, out: &mut Vec<Sample>) {
        let sample = |key: &Key, value| Sample {
            name: key.name().to_owned(),
            labels: label_pairs(key),
            value,
        };
        for (k, c) in self.counters.borrow().iter() {
            out.push(sample(k, Value::Counter(c.get())));
        }
        for (k, g) in self.gauges.borrow().iter() {
            out.push(sample(k, Value::Gauge(g.get())));
        }
        for (k, h) in self.histograms.borrow().iter() {
            out.push(sample(k, Value::Histogram(h.get())));
        }
    }
}

fn lookup<T>(map: &Map<T>, key: &Key, make: impl FnOnce() -> T) -> Arc<T> {
    if let Some(c) = map.borrow().get(key) {
        return c.clone();
    }
    let cell = Arc::new(make());
    map.borrow_mut().insert(key.clone(), cell.clone());
    cell
}

impl Drop for Registry {
    fn drop(&mut self) {
        TOKEN.with(|t| {
            if t.get() == self.token {
                t.set(0);
            }
        });
    }
}

/// Runs `f` with the calling shard's registry; does nothing outside a
/// shard.
pub(super) fn on_current_shard(f: impl FnOnce(&Registry)) {
    let _ = reactor::try_with(|s| f(s.metrics()));
}
