//! Metrics (feature `metrics`): a per-shard registry behind the [`metrics`]
//! crate's facade, built-in runtime metrics, and a Prometheus renderer.
//!
//! # Recording
//!
//! Use the facade's macros anywhere on a shard (`metrics` is re-exported as
//! [`facade`]):
//!
//! ```
//! use seastar_core::{Runtime, metrics};
//! use seastar_core::metrics::facade::{counter, histogram};
//!
//! Runtime::builder().shards(1).build().unwrap().run(async {
//!     counter!("app_requests_total", "method" => "GET").increment(1);
//!     histogram!("app_latency_seconds").record(0.003);
//!     let text = metrics::prometheus::text().await.unwrap();
//!     assert!(text.contains("app_requests_total{shard=\"0\",method=\"GET\"} 1\n"));
//!     assert!(text.contains("app_latency_seconds_bucket{shard=\"0\",le=\"0.005\"} 1\n"));
//! });
//! ```
//!
//! The recorder ([`ShardRecorder`], installed process-wide when the first
//! shard starts, see [`install`]) hands every `counter!`/`gauge!`/
//! `histogram!` call a handle on the *calling shard's* registry, which the
//! shard's reactor owns: each shard counts its own work, in memory no other
//! core writes. Updating a handle on its shard is a relaxed load and store
//! (plain moves, no `lock`-prefixed instruction); `cell.rs` explains why
//! that is sound and what happens to a handle used on another thread.
//! The macro form looks the key up in the shard's map on every call (one
//! hash probe with the key's precomputed hash, and an `Arc` clone); on a
//! hot path keep the handle (`let c = counter!(..)`) and call `increment`.
//! Outside a shard, recording is a no-op.
//!
//! Histograms use fixed buckets, Prometheus' defaults
//! ([`DEFAULT_BUCKETS`]: 5 ms to 10 s, for latencies in seconds) unless
//! [`set_buckets`] chose others for the metric's name before its first
//! use on a shard.
//!
//! # Built-in metrics
//!
//! Read from the reactor's own counters when a snapshot is taken, so they
//! cost nothing meanwhile (all per shard):
//!
//! | name | type | what |
//! |---|---|---|
//! | `seastar_reactor_tasks_run_total` | counter | tasks polled |
//! | `seastar_reactor_polls_total` | counter | I/O backend polls |
//! | `seastar_reactor_sleeps_total` | counter | times the shard slept in the kernel |
//! | `seastar_reactor_stalls_total` | counter | tasks that overran the blocked-reactor threshold |
//! | `seastar_reactor_busy_seconds_total` | counter | time of loop iterations that ran tasks |
//! | `seastar_reactor_cpu_seconds_total` | counter | the shard thread's CPU time |
//! | `seastar_reactor_utilization` | gauge | busy fraction since the shard's previous snapshot |
//! | `seastar_reactor_run_queue_length{group}` | gauge | ready tasks per scheduling group |
//! | `seastar_reactor_group_runtime_seconds_total{group}` | counter | CPU time charged per scheduling group |
//! | `seastar_smp_messages_sent_total{to}` | counter | tasks sent to each other shard (with `shard`: per ordered pair) |
//! | `seastar_smp_ring_full_total{to}` | counter | times the ring to a shard was full |
//! | `seastar_smp_backlog_waits_total` | counter | `submit_to` calls that waited for room |
//! | `seastar_memory_*` (feature `alloc`) | | allocated and limit bytes, allocations, frees, reclaims |
//!
//! Other crates add theirs: seastar-net (`seastar_net_*`: connections,
//! bytes), seastar-io (`seastar_io_*`), apps their own; a library with
//! counters of its own in thread-locals exports them with a
//! [`register_collector`] function.
//!
//! # Export
//!
//! [`gather`] asks every shard for its [`ShardSnapshot`] by message passing
//! ([`invoke_on_all`](crate::smp::invoke_on_all)); each shard reads only
//! its own registry, nobody locks anyone's data. [`prometheus::render`]
//! writes the result in the text exposition format, adding a `shard`
//! label; seastar-http serves it and seastar-net's collectd client pushes
//! it.

mod builtin;
mod cell;
pub mod prometheus;
mod recorder;
mod registry;
mod snapshot;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

pub use ::metrics as facade;
pub use recorder::{InstallError, ShardRecorder, install};
pub(crate) use registry::Registry;
pub use snapshot::{
    Collector, CollectorFn, HistogramValue, Sample, ShardSnapshot, Snapshot, Value, gather,
    local_snapshot, register_collector,
};

pub use crate::smp::SubmitError;

/// Prometheus' default histogram buckets (seconds).
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket choices by metric-name prefix, longest match wins.
static BUCKETS: Mutex<Vec<(String, Arc<[f64]>)>> = Mutex::new(Vec::new());

/// Why [`set_buckets`] refused a bucket list.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BucketsError {
    /// No bounds given.
    #[error("a histogram needs at least one bucket bound")]
    Empty,
    /// Bounds not finite and strictly increasing.
    #[error("bucket bounds must be finite and strictly increasing")]
    NotIncreasing,
}

/// Sets the bucket upper bounds of histograms whose name starts with
/// `prefix` (the longest matching prefix wins), for histograms first used
/// on a shard after this call. `+Inf` is implicit.
///
/// ```
/// use seastar_core::metrics;
///
/// metrics::set_buckets("app_size_bytes", &[64.0, 1024.0, 65536.0]).unwrap();
/// assert!(metrics::set_buckets("x", &[2.0, 1.0]).is_err());
/// ```
pub fn set_buckets(prefix: &str, bounds: &[f64]) -> Result<(), BucketsError> {
    if bounds.is_empty() {
        return Err(BucketsError::Empty);
    }
    if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(BucketsError::NotIncreasing);
    }
    let mut b = BUCKETS.lock().unwrap_or_else(|e| e.into_inner());
    b.retain(|(p, _)| p != prefix);
    b.push((prefix.to_owned(), bounds.into()));
    Ok(())
}

/// The buckets of histogram `name` (at its registration on a shard).
fn buckets_for(name: &str) -> Arc<[f64]> {
    let b = BUCKETS.lock().unwrap_or_else(|e| e.into_inner());
    b.iter()
        .filter(|(p, _)| name.starts_with(p.as_str()))
        .max_by_key(|(p, _)| p.len())
        .map_or_else(|| DEFAULT_BUCKETS.into(), |(_, v)| v.clone())
}
