//! The per-shard sampler: once a second, each shard records its own busy
//! time, request count, latency histogram, memory and app figures into a
//! small ring (the last [`RING`] samples) that only it touches.
//!
//! A shard-local timer task started with the admin server does it (so the
//! ring costs nothing while the admin port is off); the API reads the
//! rings by message passing and derives windows from them: the busy
//! fraction over 1 s, 10 s and 60 s is the busy time between two samples
//! over the wall time between them, requests per second likewise, latency
//! percentiles come from the difference of two cumulative histograms.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::{Either, select};
use seastar_core::metrics::{HistogramValue, Value, local_snapshot};
use seastar_core::shard_local::{self, SlotKey};
use seastar_core::{introspect, spawn_local};

use super::quantile;

/// Samples kept per shard: one minute at one a second, plus the one the
/// minute starts from.
pub(crate) const RING: usize = 61;

/// The sampling period.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

/// One sample of one shard.
#[derive(Clone, Debug)]
pub(crate) struct Tick {
    /// When it was taken.
    pub(crate) at: Instant,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub(crate) unix_ms: u64,
    /// The shard's busy nanoseconds so far.
    pub(crate) busy_ns: u64,
    /// Requests counted so far by the configured counters (all labels),
    /// less those the admin server answered.
    pub(crate) requests: u64,
    /// The configured latency histogram (all label sets merged).
    pub(crate) latency: Option<HistogramValue>,
    /// `seastar_memory_allocated_bytes`, when the app counts memory.
    pub(crate) memory_bytes: Option<f64>,
}

/// What the sampler reads, by metric name.
#[derive(Clone, Debug)]
pub(crate) struct Sources {
    /// Counters whose totals (all labels) add up to the requests served.
    pub(crate) requests: Vec<String>,
    pub(crate) latency: String,
}

#[derive(Default)]
struct Ring {
    ticks: VecDeque<Tick>,
    /// Samples taken since the start (the newest one's number).
    seq: u64,
    running: bool,
}

/// The calling shard's ring, in its slots: a runtime's samples (and its
/// sampler's `running` flag) go with it, so the next runtime on the thread
/// starts its own sampler.
fn ring() -> Rc<RefCell<Ring>> {
    shard_local::get_or_init(SlotKey::SINGLETON, RefCell::default)
}

/// Starts the calling shard's sampler (once; later calls do nothing). It
/// samples at once, then every [`PERIOD`], until the runtime stops.
pub(crate) fn start(sources: Sources) {
    let rings = ring();
    let fresh = !std::mem::replace(&mut rings.borrow_mut().running, true);
    if !fresh {
        return;
    }
    spawn_local(async move {
        let mut stop = std::pin::pin!(seastar_core::stop_signal());
        loop {
            let tick = take(&sources);
            {
                let mut r = rings.borrow_mut();
                if r.ticks.len() == RING {
                    r.ticks.pop_front();
                }
                r.ticks.push_back(tick);
                r.seq += 1;
            }
            let nap = std::pin::pin!(seastar_core::timer::sleep(PERIOD));
            if let Either::Right(_) = select(nap, stop.as_mut()).await {
                break;
            }
        }
        rings.borrow_mut().running = false;
    })
    .detach();
}

/// Takes a sample of the calling shard now.
fn take(sources: &Sources) -> Tick {
    let snap = local_snapshot();
    let mut requests = 0u64;
    // seastar-http's request counter also counts the admin server's own
    // requests (it is a seastar-http server too): those come off.
    let mut http = 0u64;
    let mut latency: Option<HistogramValue> = None;
    let mut memory_bytes = None;
    for s in &snap.samples {
        if sources.requests.contains(&s.name) {
            let n = match &s.value {
                Value::Counter(n) => *n,
                Value::FloatCounter(f) => *f as u64,
                _ => 0,
            };
            if s.name == crate::metrics::REQUESTS_TOTAL {
                http = http.wrapping_add(n);
            } else {
                requests = requests.wrapping_add(n);
            }
        } else if s.name == sources.latency {
            if let Value::Histogram(h) = &s.value {
                latency = Some(match latency.take() {
                    None => h.clone(),
                    Some(acc) => quantile::merge(acc, h),
                });
            }
        } else if s.name == "seastar_memory_allocated_bytes" {
            if let Value::Gauge(g) = s.value {
                memory_bytes = Some(g);
            }
        }
    }
    Tick {
        at: Instant::now(),
        unix_ms: unix_ms(),
        busy_ns: introspect::busy_ns(),
        requests: requests.wrapping_add(http.saturating_sub(super::api::served())),
        latency,
        memory_bytes,
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The calling shard's samples, oldest first, and the newest one's number.
pub(crate) fn ticks() -> (Vec<Tick>, u64) {
    let r = ring();
    let r = r.borrow();
    (r.ticks.iter().cloned().collect(), r.seq)
}

/// Figures over a window, from two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Window {
    /// Fraction of wall time the shard ran tasks, `0..=1`.
    pub(crate) busy: f64,
    /// Requests per second.
    pub(crate) rate: f64,
}

/// The window between `old` and `new`.
pub(crate) fn window(old: &Tick, new: &Tick) -> Window {
    let wall = new.at.duration_since(old.at).as_nanos() as f64;
    if wall <= 0.0 {
        return Window::default();
    }
    Window {
        busy: (new.busy_ns.saturating_sub(old.busy_ns) as f64 / wall).clamp(0.0, 1.0),
        rate: new.requests.saturating_sub(old.requests) as f64 / (wall / 1e9),
    }
}

/// The window over the last `secs` samples of `ticks` (oldest first), or
/// over as many as there are; `None` with fewer than two.
pub(crate) fn last(ticks: &[Tick], secs: usize) -> Option<Window> {
    let n = ticks.len();
    if n < 2 {
        return None;
    }
    let from = n - 1 - secs.min(n - 1);
    Some(window(&ticks[from], &ticks[n - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at: Instant, secs: u64, busy_ms: u64, requests: u64) -> Tick {
        Tick {
            at: at + Duration::from_secs(secs),
            unix_ms: secs * 1000,
            busy_ns: busy_ms * 1_000_000,
            requests,
            latency: None,
            memory_bytes: None,
        }
    }

    #[test]
    fn windows_divide_busy_time_and_requests_by_wall_time() {
        let t0 = Instant::now();
        // 100 ms busy in the first second, 500 ms in each of the next two.
        let ticks = [
            tick(t0, 0, 0, 0),
            tick(t0, 1, 100, 10),
            tick(t0, 2, 600, 30),
            tick(t0, 3, 1100, 60),
        ];
        let w1 = last(&ticks, 1).unwrap();
        assert!((w1.busy - 0.5).abs() < 1e-9, "{w1:?}");
        assert!((w1.rate - 30.0).abs() < 1e-9, "{w1:?}");
        // A 10 s window over 3 s of samples covers what there is.
        let w10 = last(&ticks, 10).unwrap();
        assert!((w10.busy - 1100.0 / 3000.0).abs() < 1e-9, "{w10:?}");
        assert!((w10.rate - 20.0).abs() < 1e-9, "{w10:?}");
        assert_eq!(last(&ticks[..1], 1), None);
    }

    #[test]
    fn busy_fraction_is_clamped_and_counters_never_go_negative() {
        let t0 = Instant::now();
        let w = window(&tick(t0, 0, 0, 5), &tick(t0, 1, 5000, 3));
        assert_eq!((w.busy, w.rate), (1.0, 0.0));
        let same = window(&tick(t0, 1, 0, 0), &tick(t0, 1, 10, 10));
        assert_eq!(same, Window::default());
    }
}
