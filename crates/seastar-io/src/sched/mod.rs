//! The per-shard I/O scheduler.
//!
//! Every read and write of a [`DmaFile`](crate::DmaFile) or
//! [`File`](crate::File) asks its shard's queue for admission before it is
//! submitted, naming its [`IoClass`]. The queue:
//!
//! 1. prices the request with the disk model ([`IoConfig::cost`]: a cost per
//!    request plus a cost per byte, in seconds of disk time);
//! 2. dispatches at once if nothing waits and the cost in flight stays
//!    within the shard's capacity ([`IoConfig::capacity`], the latency goal
//!    divided among the shards);
//! 3. otherwise queues it in its class's FIFO; each completion frees
//!    capacity and dispatches the head of the class with the smallest
//!    virtual time (cost dispatched divided by shares, see `fair`), waking
//!    its task.
//!
//! While an interactive class (one or two requests at a time) is active,
//! the busy classes only get [`IoConfig::contended_capacity`] instead of
//! the whole capacity, so its requests do not queue in the disk behind
//! theirs (latency protection, see `fair`).
//!
//! The queue is created on a shard's first request from [`config()`], so
//! call [`configure`] (or set `SEASTAR_IO_PROPERTIES`) before doing file
//! I/O. Everything here is shard-local: no locks, no atomics besides the
//! shares of a class.
//!
//! # Metrics
//!
//! Through the `metrics` facade (handles are made once per class and
//! shard, when the class first appears on it, by the recorder installed at
//! that time): `seastar_io_requests_total` and `seastar_io_bytes_total`
//! counters with labels `class` and `op` (`read`|`write`), a
//! `seastar_io_queue_length` gauge with label `class`, and a
//! `seastar_io_latency_seconds` histogram with labels `class` and `op`:
//! the time from asking for admission to dropping the [`Permit`] (queueing
//! plus the request itself), on the shard's clock. Its buckets run from
//! 25 µs to 1 s ([`LATENCY_BUCKETS`]) with feature `metrics` (set in
//! seastar-core's recorder for the prefix `seastar_io_latency` when the
//! first class appears; a `seastar_core::metrics::set_buckets` call for
//! the full name `seastar_io_latency_seconds`, a longer prefix, wins).
//!
//! ```
//! # seastar_core::block_on(async {
//! use seastar_io::{IoClass, sched};
//! let class = IoClass::new("doc", 200);
//! let permit = sched::admit(&class, sched::Dir::Read, 4096).await;
//! assert_eq!(sched::stats().in_flight, 1);
//! drop(permit);
//! assert_eq!(sched::stats().in_flight, 0);
//! # });
//! ```

mod class;
mod fair;
mod model;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use std::time::Instant;

use metrics::{Counter, Gauge, Histogram};
use seastar_core::shard_local::{self, SlotKey};

pub use class::IoClass;
pub use model::{IoConfig, IoProperties, IoPropertiesFile, config, configure};

use fair::{FairQueue, Limits};

/// The direction of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// A read.
    Read,
    /// A write.
    Write,
}

/// A waiting request's state, shared by the queue and the waiter.
#[derive(Default)]
struct Ticket {
    granted: Cell<bool>,
    cancelled: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The name of the I/O latency histogram.
const LATENCY: &str = "seastar_io_latency_seconds";

/// The I/O latency histogram's bucket bounds, in seconds: from a fast
/// NVMe read (tens of microseconds) to a second of queueing.
pub const LATENCY_BUCKETS: &[f64] = &[
    25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3,
    1.0,
];

/// Per class and shard: metric handles and counters.
struct ClassLocal {
    requests: [Counter; 2],
    bytes: [Counter; 2],
    latency: [Histogram; 2],
    queue_len: Gauge,
    dispatched: u64,
}

impl ClassLocal {
    fn new(class: &IoClass) -> ClassLocal {
        #[cfg(feature = "metrics")]
        static BUCKETS: std::sync::Once = std::sync::Once::new();
        #[cfg(feature = "metrics")]
        BUCKETS.call_once(|| {
            seastar_core::metrics::set_buckets("seastar_io_latency", LATENCY_BUCKETS)
                .expect("the bounds are increasing");
        });
        let name = class.name().to_owned();
        let op = |dir: &'static str, metric: &'static str| metrics::counter!(metric, "class" => name.clone(), "op" => dir);
        ClassLocal {
            requests: [
                op("read", "seastar_io_requests_total"),
                op("write", "seastar_io_requests_total"),
            ],
            bytes: [
                op("read", "seastar_io_bytes_total"),
                op("write", "seastar_io_bytes_total"),
            ],
            latency: [
                metrics::histogram!(LATENCY, "class" => name.clone(), "op" => "read"),
                metrics::histogram!(LATENCY, "class" => name.clone(), "op" => "write"),
            ],
            queue_len: metrics::gauge!("seastar_io_queue_length", "class" => name.clone()),
            dispatched: 0,
        }
    }
}

struct Queue {
    fq: FairQueue<Rc<Ticket>>,
    classes: Vec<Option<ClassLocal>>,
    config: IoConfig,
    /// The origin of the fair queue's clock (the shard's).
    epoch: std::time::Instant,
}

/// The calling shard's queue, kept in its `shard_local` slots (so a new
/// runtime on the same thread starts with a fresh queue).
fn queue() -> Rc<RefCell<Queue>> {
    shard_local::get_or_init(SlotKey::SINGLETON, || RefCell::new(Queue::new()))
}

impl Queue {
    fn new() -> Queue {
        let config = config();
        let mut q = Queue {
            fq: FairQueue::new(Limits {
                capacity: 0.0,
                contended: 0.0,
                window_ns: 0,
                max_requests: 1,
            }),
            classes: Vec::new(),
            config: config.clone(),
            epoch: seastar_core::timer::lowres_now(),
        };
        q.set_config(config);
        q
    }

    fn set_config(&mut self, config: IoConfig) {
        let shards = seastar_core::shard_count();
        tracing::debug!(?config, shards, "I/O queue");
        self.fq.set_limits(Limits {
            capacity: config.capacity(shards),
            contended: config.contended_capacity(shards),
            window_ns: u64::try_from(config.contention_window.as_nanos()).unwrap_or(u64::MAX),
            max_requests: config.max_requests.unwrap_or(usize::MAX),
        });
        self.config = config;
        self.dispatch();
    }

    fn local(&mut self, class: &IoClass) -> &mut ClassLocal {
        let id = class.id();
        if self.classes.len() <= id {
            self.classes.resize_with(id + 1, || None);
        }
        self.classes[id].get_or_insert_with(|| ClassLocal::new(class))
    }

    /// Nanoseconds on the fair queue's clock: the reactor's reading at
    /// the start of its loop iteration (no clock read per request; a lag
    /// of at most one task quota is nothing against the contention
    /// window).
    fn now(&self) -> u64 {
        let at = seastar_core::timer::lowres_now().saturating_duration_since(self.epoch);
        u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Dispatches what fits, waking the waiters.
    fn dispatch(&mut self) {
        let now = self.now();
        while let Some((id, _cost, ticket)) = self.fq.pop(|t| !t.cancelled.get(), now) {
            ticket.granted.set(true);
            if let Some(w) = ticket.waker.borrow_mut().take() {
                w.wake();
            }
            let len = self.fq.queue_len(id);
            if let Some(Some(c)) = self.classes.get_mut(id) {
                c.dispatched += 1;
                c.queue_len.set(len as f64);
            }
        }
    }
}

/// Admission for one request: hold it while the request is in flight.
/// Dropping it (on completion, or when the request is abandoned) frees its
/// capacity and dispatches waiting requests.
#[must_use = "the request is admitted only while the permit lives"]
pub struct Permit {
    queue: Rc<RefCell<Queue>>,
    class: usize,
    dir: Dir,
    cost: f64,
    /// When admission was asked for (the latency's start).
    asked: Instant,
    ticket: Option<Rc<Ticket>>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("cost", &self.cost).finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut q = self.queue.borrow_mut();
        match &self.ticket {
            Some(t) if !t.granted.get() => t.cancelled.set(true),
            _ => {
                let took = seastar_core::timer::now().saturating_duration_since(self.asked);
                if let Some(Some(c)) = q.classes.get(self.class) {
                    c.latency[self.dir as usize].record(took.as_secs_f64());
                }
                q.fq.complete(self.class, self.cost);
                q.dispatch();
            }
        }
    }
}

/// Waits until the shard's queue admits a request of `len` bytes in
/// direction `dir` for `class`; counts it in the metrics.
///
/// # Panics
///
/// Outside a shard.
pub async fn admit(class: &IoClass, dir: Dir, len: usize) -> Permit {
    let queue = queue();
    let asked = seastar_core::timer::now();
    let (shares, id) = (class.shares(), class.id());
    let ticket = {
        let mut q = queue.borrow_mut();
        let cost = q.config.cost(dir == Dir::Write, len);
        let c = q.local(class);
        c.requests[dir as usize].increment(1);
        c.bytes[dir as usize].increment(len as u64);
        let now = q.now();
        if q.fq.try_dispatch_now(id, shares, cost, now) {
            q.local(class).dispatched += 1;
            return Permit {
                queue: queue.clone(),
                class: id,
                dir,
                cost,
                asked,
                ticket: None,
            };
        }
        let ticket = Rc::new(Ticket::default());
        q.fq.push(id, shares, cost, ticket.clone());
        let len = q.fq.queue_len(id);
        q.local(class).queue_len.set(len as f64);
        // Something may have completed since the last dispatch.
        q.dispatch();
        Permit {
            queue: queue.clone(),
            class: id,
            dir,
            cost,
            asked,
            ticket: Some(ticket),
        }
    };
    Admission(Some(ticket)).await
}

struct Admission(Option<Permit>);

impl Future for Admission {
    type Output = Permit;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let t = self
            .0
            .as_ref()
            .and_then(|p| p.ticket.clone())
            .expect("admission polled after completion");
        if t.granted.get() {
            Poll::Ready(self.0.take().expect("checked above"))
        } else {
            *t.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Runs `io` once the queue admits it, holding the admission until it ends.
pub(crate) async fn run<T>(
    class: &IoClass,
    dir: Dir,
    len: usize,
    io: impl Future<Output = T>,
) -> T {
    let permit = admit(class, dir, len).await;
    let out = io.await;
    drop(permit);
    out
}

/// Replaces the calling shard's configuration (limits apply from the next
/// dispatch; requests in flight are unaffected). [`configure`] sets the
/// configuration of queues not created yet; this one changes a live
/// queue, e.g. from `smp::invoke_on_all`.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_io::sched::{IoConfig, configure_shard, stats};
/// configure_shard(IoConfig { latency_goal: std::time::Duration::from_millis(2), ..IoConfig::default() });
/// assert_eq!(stats().capacity, 0.002);
/// # });
/// ```
pub fn configure_shard(config: IoConfig) {
    queue().borrow_mut().set_config(config);
}

/// A snapshot of this shard's queue.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueStats {
    /// Requests admitted and not yet finished.
    pub in_flight: usize,
    /// Their cost, in seconds of disk time.
    pub in_flight_cost: f64,
    /// The cost bound.
    pub capacity: f64,
}

/// This shard's queue: what is in flight.
pub fn stats() -> QueueStats {
    let q = queue();
    let q = q.borrow();
    let (in_flight, in_flight_cost) = q.fq.in_flight();
    QueueStats {
        in_flight,
        in_flight_cost,
        capacity: q.config.capacity(seastar_core::shard_count()),
    }
}

/// Requests of `class` this shard has dispatched, and how many wait.
///
/// ```
/// # seastar_core::block_on(async {
/// let c = seastar_io::IoClass::new("count", 100);
/// drop(seastar_io::sched::admit(&c, seastar_io::sched::Dir::Write, 512).await);
/// assert_eq!(seastar_io::sched::class_stats(&c), (1, 0));
/// # });
/// ```
pub fn class_stats(class: &IoClass) -> (u64, usize) {
    let q = queue();
    let q = q.borrow();
    let dispatched = q
        .classes
        .get(class.id())
        .and_then(Option::as_ref)
        .map_or(0, |c| c.dispatched);
    (dispatched, q.fq.queue_len(class.id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[seastar_core::test]
    async fn waiting_requests_are_granted_by_shares_as_permits_drop() {
        configure_shard(IoConfig {
            max_requests: Some(1),
            ..IoConfig::default()
        });
        let (lo, hi) = (IoClass::new("lo", 100), IoClass::new("hi", 400));
        let first = admit(&lo, Dir::Read, 4096).await;
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..10 {
            for (c, tag) in [(&lo, 0), (&hi, 1)] {
                let (c, order) = (c.clone(), order.clone());
                tasks.push(seastar_core::spawn_local(async move {
                    let p = admit(&c, Dir::Read, 4096).await;
                    order.borrow_mut().push((tag, i));
                    seastar_core::yield_now().await;
                    drop(p);
                }));
            }
        }
        seastar_core::yield_now().await;
        assert_eq!(class_stats(&lo).1 + class_stats(&hi).1, 20);
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.borrow();
        let first_ten_hi = order[..10].iter().filter(|(t, _)| *t == 1).count();
        assert_eq!(first_ten_hi, 8, "{order:?}");
        assert_eq!(stats().in_flight, 0);
    }

    /// The latency histogram of `class` and `op` on this shard.
    #[cfg(feature = "metrics")]
    fn latency(class: &str, op: &str) -> seastar_core::metrics::HistogramValue {
        let snap = seastar_core::metrics::local_snapshot();
        let s = (snap.samples.iter())
            .find(|s| {
                s.name == LATENCY
                    && s.labels.contains(&("class".into(), class.into()))
                    && s.labels.contains(&("op".into(), op.into()))
            })
            .unwrap_or_else(|| panic!("no {LATENCY} for {class}/{op}"));
        match &s.value {
            seastar_core::metrics::Value::Histogram(h) => h.clone(),
            other => panic!("not a histogram: {other:?}"),
        }
    }

    #[cfg(feature = "metrics")]
    #[seastar_core::test(manual_clock)]
    async fn latency_runs_from_asking_to_the_permit_drop_including_the_queue() {
        use seastar_core::timer::ManualClock;
        use std::time::Duration;
        configure_shard(IoConfig {
            max_requests: Some(1),
            ..IoConfig::default()
        });
        let c = IoClass::new("lat", 100);
        // The first request takes 300 µs.
        let first = admit(&c, Dir::Read, 4096).await;
        let queued = seastar_core::spawn_local({
            let c = c.clone();
            async move { admit(&c, Dir::Write, 4096).await }
        });
        seastar_core::yield_now().await;
        ManualClock::advance(Duration::from_micros(300)).await;
        drop(first);
        // The second waited those 300 µs in the queue, then runs 2 ms.
        let second = queued.await.unwrap();
        ManualClock::advance(Duration::from_millis(2)).await;
        drop(second);
        let read = latency("lat", "read");
        assert_eq!(read.bounds, LATENCY_BUCKETS);
        assert_eq!(read.count, 1);
        // 300 µs: in the bucket (250 µs, 500 µs].
        assert_eq!(read.buckets[4], 1, "{read:?}");
        let write = latency("lat", "write");
        assert_eq!(write.count, 1);
        // 2.3 ms: in (1 ms, 2.5 ms].
        assert_eq!(write.buckets[6], 1, "{write:?}");
        assert!((write.sum - 0.0023).abs() < 1e-9, "{}", write.sum);
    }

    #[seastar_core::test]
    async fn dropping_a_waiting_request_frees_its_place() {
        configure_shard(IoConfig {
            max_requests: Some(1),
            ..IoConfig::default()
        });
        let c = IoClass::new("c", 100);
        let p = admit(&c, Dir::Write, 4096).await;
        let waiting = seastar_core::spawn_local({
            let c = c.clone();
            async move { drop(admit(&c, Dir::Write, 4096).await) }
        });
        seastar_core::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        drop(p);
        let again = admit(&c, Dir::Write, 4096).await;
        assert_eq!(stats().in_flight, 1);
        drop(again);
    }
}
