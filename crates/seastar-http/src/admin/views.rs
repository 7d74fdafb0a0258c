//! The API's answers, as JSON, gathered from every shard by message
//! passing: each shard reads only its own counters and sampler ring
//! ([`invoke_on_all`]), the shard that took the request puts the answers
//! together. No lock, no shared counter.
//!
//! The shapes are the contract written in `openapi.json` next to this
//! file; the crate's `admin` tests check real answers against it.

use std::cell::RefCell;
use std::sync::Arc;

use seastar_core::introspect::StallBacktrace;
use seastar_core::io::spawn_blocking;
use seastar_core::metrics::{self, HistogramValue, Value as MetricValue};
use seastar_core::smp::{SubmitError, invoke_on_all};
use seastar_core::{introspect, shard_count};
use serde_json::{Map, Value, json};

use super::config::Config;
use super::sampler::{self, Tick};
use super::{quantile, system};

/// The window latency percentiles are computed over, in samples (seconds).
const LATENCY_WINDOW: usize = 10;

/// `GET /api/v1/runtime`.
pub(crate) async fn runtime(cfg: &Arc<Config>) -> Result<Value, SubmitError> {
    let cpus = invoke_on_all(|| async {
        json!({
            "shard": seastar_core::shard_id(),
            "cpu": system::current_cpu(),
            "allowed_cpus": system::allowed_cpus(),
        })
    })
    .await?;
    let options: Map<String, Value> = (cfg.options.iter())
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Ok(json!({
        "app": cfg.app,
        "app_version": cfg.app_version,
        "framework_version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "shards": shard_count(),
        "cpus": cpus,
        "backend": seastar_core::runtime::backend().to_string(),
        "backend_summary": seastar_core::runtime::backend_summary(),
        "network_stack": cfg.network_stack,
        "options": options,
        "uptime_seconds": system::uptime().as_secs_f64(),
        "now_unix_ms": sampler::unix_ms(),
        "sample_period_seconds": sampler::PERIOD.as_secs_f64(),
        "busy_time_measured": introspect::busy_time_measured(),
    }))
}

/// One shard's part of `/api/v1/shards`, taken on that shard, with the
/// messages it sent to each shard (to count messages in) and its last
/// stall's raw backtrace (named later, off the shard: [`stall_text`]).
fn shard_view(cfg: &Config) -> (Value, Vec<u64>, Option<StallBacktrace>) {
    let c = introspect::reactor_counters();
    let stall = introspect::stall_info();
    let (ticks, seq) = sampler::ticks();
    let window = |secs| sampler::last(&ticks, secs);
    let busy = |secs| window(secs).map(|w| w.busy);
    let rate = |secs| window(secs).map(|w| w.rate);
    let newest = ticks.last();
    let app: Map<String, Value> = match &cfg.shard_view {
        Some(f) => f().into_iter().map(|(k, v)| (k, num(v))).collect(),
        None => Map::new(),
    };
    let v = json!({
        "shard": c.shard,
        "cpu": system::current_cpu(),
        "busy": {"last_1s": busy(1), "last_10s": busy(10), "last_60s": busy(60)},
        "requests_per_second": {"last_1s": rate(1), "last_10s": rate(10), "last_60s": rate(60)},
        "latency_seconds": latency(&ticks),
        "history": history(&ticks),
        "samples": seq,
        "sampled_at_unix_ms": newest.map(|t| t.unix_ms),
        "requests_total": newest.map_or(0, |t| t.requests),
        "tasks_run": c.tasks_run,
        "ready_tasks": c.ready_tasks,
        "polls": c.polls,
        "sleeps": c.sleeps,
        "stalls": c.stalls,
        "last_stall_backtrace": Value::Null,
        "last_stall_seconds": stall.last_duration.map(|d| d.as_secs_f64()),
        "messages_out": c.messages_sent.iter().sum::<u64>(),
        "ring_full": c.ring_full.iter().sum::<u64>(),
        "backlog_waits": c.backlog_waits,
        "busy_seconds": c.busy_ns as f64 / 1e9,
        "cpu_seconds": c.cpu_ns as f64 / 1e9,
        "memory_bytes": newest.and_then(|t| t.memory_bytes),
        "app": app,
    });
    (v, c.messages_sent, stall.last_backtrace)
}

/// Stall backtraces already named, most recent last (the dashboard asks
/// every second; a backtrace is resolved once).
const STALL_CACHE: usize = 8;

// A thread-local, not a shard slot: a memo of a pure function of the binary
// (addresses to names), right for any runtime on the thread.
thread_local! {
    static NAMED: RefCell<Vec<(StallBacktrace, Arc<str>)>> = const { RefCell::new(Vec::new()) };
}

/// `bt` with its frames named. Resolving reads the binary's debug
/// information (slow the first time, and allocating): it runs on a helper
/// thread, never on the shard, and each backtrace once.
async fn stall_text(bt: StallBacktrace) -> Arc<str> {
    let cached = NAMED.with(|n| {
        let n = n.borrow();
        n.iter().find(|(b, _)| *b == bt).map(|(_, t)| t.clone())
    });
    if let Some(t) = cached {
        return t;
    }
    let key = bt.clone();
    let text: Arc<str> = spawn_blocking(move || bt.render()).await.into();
    NAMED.with(|n| {
        let mut n = n.borrow_mut();
        if n.len() == STALL_CACHE {
            n.remove(0);
        }
        n.push((key, text.clone()));
    });
    text
}

/// `GET /api/v1/shards`.
pub(crate) async fn shards(cfg: &Arc<Config>) -> Result<Value, SubmitError> {
    let cfg = cfg.clone();
    let views = invoke_on_all(move || {
        let cfg = cfg.clone();
        async move { shard_view(&cfg) }
    })
    .await?;
    let n = views.len();
    let mut shards = Vec::with_capacity(n);
    for (me, (mut v, _, stall)) in views.iter().cloned().enumerate() {
        let incoming: u64 = (views.iter().enumerate())
            .filter(|(from, _)| *from != me)
            .map(|(_, (_, sent, _))| sent.get(me).copied().unwrap_or(0))
            .sum();
        v["messages_in"] = json!(incoming);
        if let Some(bt) = stall {
            v["last_stall_backtrace"] = json!(&*stall_text(bt).await);
        }
        shards.push(v);
    }
    Ok(json!({
        "sample_period_seconds": sampler::PERIOD.as_secs_f64(),
        "latency_window_seconds": LATENCY_WINDOW,
        "busy_time_measured": introspect::busy_time_measured(),
        "now_unix_ms": sampler::unix_ms(),
        "shards": shards,
    }))
}

/// Percentiles over the last [`LATENCY_WINDOW`] samples.
fn latency(ticks: &[Tick]) -> Value {
    let Some(new) = ticks.last().and_then(|t| t.latency.as_ref()) else {
        return percentiles(None);
    };
    let from = ticks.len().saturating_sub(LATENCY_WINDOW + 1);
    let h = quantile::since(
        new,
        ticks[from]
            .latency
            .as_ref()
            .filter(|_| from + 1 < ticks.len()),
    );
    percentiles(Some(&h))
}

/// Per-second series, oldest first: busy fraction, requests per second,
/// 99th percentile latency (null where nothing was recorded).
fn history(ticks: &[Tick]) -> Value {
    let pairs = ticks.windows(2);
    let busy: Vec<f64> = pairs
        .clone()
        .map(|w| sampler::window(&w[0], &w[1]).busy)
        .collect();
    let rate: Vec<f64> = pairs
        .clone()
        .map(|w| sampler::window(&w[0], &w[1]).rate)
        .collect();
    let p99: Vec<Option<f64>> = pairs
        .map(|w| match &w[1].latency {
            Some(new) => quantile::quantile(&quantile::since(new, w[0].latency.as_ref()), 0.99),
            None => None,
        })
        .collect();
    json!({"busy": busy, "requests_per_second": rate, "p99_seconds": p99})
}

/// `GET /api/v1/groups`.
pub(crate) async fn groups() -> Result<Value, SubmitError> {
    let per_shard = invoke_on_all(|| async { introspect::groups() }).await?;
    let mut out: Vec<Value> = Vec::new();
    for (shard, groups) in per_shard.iter().enumerate() {
        for g in groups {
            while out.len() <= g.id {
                out.push(Value::Null);
            }
            if out[g.id].is_null() {
                out[g.id] = json!({"id": g.id, "name": g.name, "shares": g.shares,
                    "runtime_seconds": 0.0, "ready_tasks": 0, "shards": []});
            }
            let e = &mut out[g.id];
            let rt = g.runtime_ns as f64 / 1e9;
            e["runtime_seconds"] = json!(e["runtime_seconds"].as_f64().unwrap_or(0.0) + rt);
            e["ready_tasks"] = json!(e["ready_tasks"].as_u64().unwrap_or(0) + g.ready_tasks as u64);
            if let Some(a) = e["shards"].as_array_mut() {
                a.push(
                    json!({"shard": shard, "ready_tasks": g.ready_tasks, "runtime_seconds": rt}),
                );
            }
        }
    }
    out.retain(|g| !g.is_null());
    Ok(json!({ "groups": out }))
}

/// `GET /api/v1/connections`.
pub(crate) async fn connections() -> Result<Value, SubmitError> {
    let per_shard = invoke_on_all(|| async {
        let shard = seastar_core::shard_id();
        let s = seastar_net::stats::local();
        let listeners: Vec<Value> = super::local_listeners()
            .into_iter()
            .map(|(name, l)| {
                json!({"name": name, "shard": shard, "accepted": l.accepted,
                    "open": l.open, "backoffs": l.backoffs,
                    "oldest_idle_seconds": l.oldest_idle.map(|d| d.as_secs_f64())})
            })
            .collect();
        let totals = json!({"shard": shard, "accepted": s.accepted, "open": s.open,
            "refused": s.refused, "bytes_received": s.bytes_received, "bytes_sent": s.bytes_sent});
        (totals, listeners)
    })
    .await?;
    let (shards, listeners): (Vec<Value>, Vec<Vec<Value>>) = per_shard.into_iter().unzip();
    Ok(json!({"shards": shards, "listeners": listeners.concat()}))
}

/// `GET /api/v1/io`.
pub(crate) async fn io(cfg: &Arc<Config>) -> Result<Value, SubmitError> {
    let shared = cfg.clone();
    let per_shard = invoke_on_all(move || {
        let cfg = shared.clone();
        async move { io_view(&cfg) }
    })
    .await?;
    let (queues, classes): (Vec<Value>, Vec<Vec<(String, Value)>>) = per_shard.into_iter().unzip();
    // Classes by name, in the order first seen.
    let mut by_name: Vec<(String, Value)> = Vec::new();
    for (name, shard) in classes.into_iter().flatten() {
        let shares = (cfg.io_classes.iter())
            .find(|c| c.name() == name)
            .map(|c| c.shares());
        let i = match by_name.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                by_name.push((
                    name.clone(),
                    json!({"name": name, "shares": shares, "shards": []}),
                ));
                by_name.len() - 1
            }
        };
        if let Some(a) = by_name[i].1["shards"].as_array_mut() {
            a.push(shard);
        }
    }
    let classes: Vec<Value> = by_name.into_iter().map(|(_, v)| v).collect();
    Ok(json!({"shards": queues, "classes": classes}))
}

/// One shard's I/O queue and classes: those the app named (with their
/// dispatch counts) and those seen in the shard's `seastar_io_*` metrics.
fn io_view(cfg: &Config) -> (Value, Vec<(String, Value)>) {
    let shard = seastar_core::shard_id();
    let q = seastar_io::sched::stats();
    let queue = json!({"shard": shard, "in_flight": q.in_flight,
        "in_flight_cost_seconds": q.in_flight_cost, "capacity_seconds": q.capacity});
    let mut classes: Vec<(String, Value)> = Vec::new();
    let entry = |classes: &mut Vec<(String, Value)>, name: &str| -> usize {
        match classes.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                classes.push((
                    name.to_owned(),
                    json!({"shard": shard, "queued": 0,
                    "dispatched": null, "requests_read": 0, "requests_write": 0,
                    "bytes_read": 0, "bytes_written": 0, "latency_seconds": percentiles(None)}),
                ));
                classes.len() - 1
            }
        }
    };
    for c in &cfg.io_classes {
        let (dispatched, queued) = seastar_io::sched::class_stats(c);
        let i = entry(&mut classes, c.name());
        classes[i].1["dispatched"] = json!(dispatched);
        classes[i].1["queued"] = json!(queued);
    }
    // Reads and writes of a class merged, since the start.
    let mut latency: Vec<(String, HistogramValue)> = Vec::new();
    for s in metrics::local_snapshot().samples {
        if let (IO_LATENCY, MetricValue::Histogram(h)) = (s.name.as_str(), &s.value) {
            if let Some((_, class)) = s.labels.iter().find(|(k, _)| k == "class") {
                match latency.iter_mut().find(|(c, _)| c == class) {
                    Some((_, sum)) => *sum = quantile::merge(sum.clone(), h),
                    None => latency.push((class.clone(), h.clone())),
                }
            }
            continue;
        }
        let Some(field) = io_field(&s.name, &s.labels) else {
            continue;
        };
        let Some((_, class)) = s.labels.iter().find(|(k, _)| k == "class") else {
            continue;
        };
        let value = match s.value {
            MetricValue::Counter(n) => n,
            MetricValue::Gauge(g) => g.max(0.0) as u64,
            _ => continue,
        };
        let i = entry(&mut classes, class);
        classes[i].1[field] = json!(value);
    }
    for (class, h) in &latency {
        let i = entry(&mut classes, class);
        classes[i].1["latency_seconds"] = percentiles(Some(h));
    }
    (queue, classes)
}

/// seastar-io's latency histogram (labels `class`, `op`).
const IO_LATENCY: &str = "seastar_io_latency_seconds";

/// Count and percentiles of `h` (none recorded: zero and nulls).
fn percentiles(h: Option<&HistogramValue>) -> Value {
    match h {
        Some(h) if h.count > 0 => json!({
            "count": h.count,
            "p50": quantile::quantile(h, 0.5),
            "p90": quantile::quantile(h, 0.9),
            "p99": quantile::quantile(h, 0.99),
        }),
        _ => json!({"count": 0, "p50": null, "p90": null, "p99": null}),
    }
}

/// The class field a `seastar_io_*` metric fills.
fn io_field(name: &str, labels: &[(String, String)]) -> Option<&'static str> {
    let op = labels
        .iter()
        .find(|(k, _)| k == "op")
        .map(|(_, v)| v.as_str());
    match (name, op) {
        ("seastar_io_requests_total", Some("read")) => Some("requests_read"),
        ("seastar_io_requests_total", Some("write")) => Some("requests_write"),
        ("seastar_io_bytes_total", Some("read")) => Some("bytes_read"),
        ("seastar_io_bytes_total", Some("write")) => Some("bytes_written"),
        ("seastar_io_queue_length", _) => Some("queued"),
        _ => None,
    }
}

/// `GET /api/v1/metrics`: every shard's registry.
pub(crate) async fn metrics() -> Result<Value, SubmitError> {
    let snap = metrics::gather().await?;
    let shards: Vec<Value> = (snap.shards.iter())
        .map(|s| {
            let samples: Vec<Value> = (s.samples.iter())
                .map(|m| {
                    let labels: Map<String, Value> = (m.labels.iter())
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    let (value, hist) = match &m.value {
                        MetricValue::Counter(n) => (json!(n), Value::Null),
                        MetricValue::FloatCounter(f) | MetricValue::Gauge(f) => {
                            (num(*f), Value::Null)
                        }
                        MetricValue::Histogram(h) => (
                            Value::Null,
                            json!({"bounds": h.bounds, "buckets": h.buckets,
                                "sum": num(h.sum), "count": h.count}),
                        ),
                    };
                    json!({"name": m.name, "type": m.value.kind(), "labels": labels,
                        "value": value, "histogram": hist})
                })
                .collect();
            json!({"shard": s.shard, "samples": samples})
        })
        .collect();
    Ok(json!({"shards": shards, "help": snap.help}))
}

/// A float as JSON (non-finite values, which JSON cannot carry, as null).
fn num(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}
