//! The storage behind one metric of one shard, and its `metrics` handles.
//!
//! # Why relaxed loads and stores, not `fetch_add`
//!
//! The `metrics` facade hands out `Counter`/`Gauge`/`Histogram` handles
//! that must be `Send + Sync`, so a cell's fields are atomics. But a cell
//! belongs to one shard's registry and is only *written* on that shard's
//! thread: every write first checks that the calling thread is the owner
//! (one compare against a thread-local token). On the owner, an update is a
//! relaxed load and a relaxed store, which compile to plain moves: no
//! `lock`-prefixed read-modify-write, no cache line shared with another
//! core. A handle that travelled to another shard does not touch the cell
//! at all: it records into *that* shard's registry under the same key, so
//! a value is always counted where the work happened and no update is ever
//! lost to a race. Outside any shard (a helper thread), writes are dropped.
//!
//! Reads happen on the owner too: exporters ask each shard for a snapshot
//! by message passing (`super::gather`), never read another shard's cells.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key};

use super::registry;
use super::snapshot::HistogramValue;

thread_local! {
    /// The token of the registry of the shard running on this thread; 0
    /// when none.
    pub(super) static TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// Whether the calling thread is the shard owning registry `token`.
#[inline]
fn is_owner(token: u64) -> bool {
    TOKEN.with(Cell::get) == token
}

/// A monotonic count.
#[derive(Debug)]
pub(super) struct CounterCell {
    owner: u64,
    key: Key,
    value: AtomicU64,
}

impl CounterCell {
    pub(super) fn new(owner: u64, key: Key) -> CounterCell {
        CounterCell {
            owner,
            key,
            value: AtomicU64::new(0),
        }
    }

    pub(super) fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

impl CounterFn for CounterCell {
    #[inline]
    fn increment(&self, n: u64) {
        if is_owner(self.owner) {
            self.value
                .store(self.value.load(Relaxed).wrapping_add(n), Relaxed);
        } else {
            registry::on_current_shard(|r| r.counter(&self.key).increment(n));
        }
    }

    fn absolute(&self, n: u64) {
        if is_owner(self.owner) {
            self.value.store(self.value.load(Relaxed).max(n), Relaxed);
        } else {
            registry::on_current_shard(|r| r.counter(&self.key).absolute(n));
        }
    }
}

/// A value that goes up and down (an `f64` stored as its bits).
#[derive(Debug)]
pub(super) struct GaugeCell {
    owner: u64,
    key: Key,
    bits: AtomicU64,
}

impl GaugeCell {
    pub(super) fn new(owner: u64, key: Key) -> GaugeCell {
        GaugeCell {
            owner,
            key,
            bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub(super) fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Relaxed))
    }

    #[inline]
    fn update(&self, f: impl FnOnce(f64) -> f64, foreign: impl FnOnce(&GaugeCell)) {
        if is_owner(self.owner) {
            self.bits.store(f(self.get()).to_bits(), Relaxed);
        } else {
            registry::on_current_shard(|r| foreign(&r.gauge(&self.key)));
        }
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, v: f64) {
        self.update(|x| x + v, |g| g.increment(v));
    }

    fn decrement(&self, v: f64) {
        self.update(|x| x - v, |g| g.decrement(v));
    }

    fn set(&self, v: f64) {
        self.update(|_| v, |g| g.set(v));
    }
}

/// A distribution over fixed buckets (Prometheus' cumulative `le` buckets
/// are derived at export; here each bucket counts its own values).
#[derive(Debug)]
pub(super) struct HistogramCell {
    owner: u64,
    key: Key,
    /// Upper bounds, ascending; an implicit `+Inf` bucket follows.
    bounds: Arc<[f64]>,
    /// `bounds.len() + 1` counts: `counts[i]` holds values in
    /// `(bounds[i-1], bounds[i]]`.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
    count: AtomicU64,
}

impl HistogramCell {
    pub(super) fn new(owner: u64, key: Key, bounds: Arc<[f64]>) -> HistogramCell {
        HistogramCell {
            owner,
            key,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            bounds,
            sum_bits: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    pub(super) fn get(&self) -> HistogramValue {
        HistogramValue {
            bounds: self.bounds.to_vec(),
            buckets: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum: f64::from_bits(self.sum_bits.load(Relaxed)),
            count: self.count.load(Relaxed),
        }
    }
}

/// Adds `n` to an owner-only counter.
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

impl HistogramFn for HistogramCell {
    #[inline]
    fn record(&self, v: f64) {
        self.record_many(v, 1);
    }

    fn record_many(&self, v: f64, n: usize) {
        if v.is_nan() {
            return;
        }
        if !is_owner(self.owner) {
            registry::on_current_shard(|r| r.histogram(&self.key).record_many(v, n));
            return;
        }
        // Most observations fall in the first bucket (a request answered
        // within its loop iteration records 0): skip the search.
        let i = match self.bounds.first() {
            Some(&first) if v <= first => 0,
            _ => self.bounds.partition_point(|b| *b < v),
        };
        bump(&self.counts[i], n as u64);
        bump(&self.count, n as u64);
        let sum = f64::from_bits(self.sum_bits.load(Relaxed)) + v * n as f64;
        self.sum_bits.store(sum.to_bits(), Relaxed);
    }
}
