//! Request metrics through the [`metrics`] facade, recorded by whatever
//! recorder the shard has installed (seastar-rs installs one per shard, so
//! recording touches no shared atomics).
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `seastar_http_requests_total` | counter | `method` (GET ... or `OTHER`), `status` (`1xx` ... `5xx`) |
//! | `seastar_http_request_duration_seconds` | histogram | none: from the request head to the response head |
//! | `seastar_http_connections_closed_total` | counter | `reason`: `refused` (over `max_connections`), `idle` (idle timeout), `dropped_at_stop` (shutdown timeout) |
//! | `seastar_http_handler_panics_total` | counter | none: handlers that panicked (answered 500) |
//!
//! Durations are read from the shard's loop clock
//! ([`lowres_now`](seastar_core::timer::lowres_now)): no clock read per
//! request, and under the manual clock they are exact. Their resolution is
//! one loop iteration: a request answered within the iteration that read
//! it records 0, and time spent waiting (I/O, timers, other shards) counts
//! whole.
//!
//! Handles are looked up once per shard server and cached, so the hot path
//! is an index and an increment.

use std::cell::RefCell;
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{Counter, Histogram};

/// Name of the request counter.
pub const REQUESTS_TOTAL: &str = "seastar_http_requests_total";
/// Name of the request duration histogram.
pub const REQUEST_DURATION: &str = "seastar_http_request_duration_seconds";
/// Name of the counter of connections the server closed on its own.
pub const CONNECTIONS_CLOSED: &str = "seastar_http_connections_closed_total";
/// Name of the counter of panicking handlers.
pub const HANDLER_PANICS: &str = "seastar_http_handler_panics_total";

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Closed {
    /// Accepted beyond `max_connections`.
    Refused = 0,
    /// Idle past the idle timeout.
    Idle = 1,
    /// Still open at the end of the shutdown timeout.
    DroppedAtStop = 2,
}

const CLOSED_REASONS: [&str; 3] = ["refused", "idle", "dropped_at_stop"];

const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// One shard server's cached handles.
pub(crate) struct HttpMetrics {
    counters: RefCell<Vec<Option<Counter>>>,
    duration: Histogram,
    closed: [Counter; 3],
    panics: Counter,
}

impl HttpMetrics {
    /// Looks the handles up in the current recorder (call on the shard).
    pub(crate) fn new() -> HttpMetrics {
        metrics::describe_counter!(
            REQUESTS_TOTAL,
            "HTTP requests answered, by method and status class"
        );
        metrics::describe_histogram!(
            REQUEST_DURATION,
            metrics::Unit::Seconds,
            "time from a request's head to its response's head"
        );
        metrics::describe_counter!(
            CONNECTIONS_CLOSED,
            "connections the server closed on its own, by reason"
        );
        metrics::describe_counter!(HANDLER_PANICS, "handlers that panicked (answered 500)");
        HttpMetrics {
            counters: RefCell::new(vec![None; METHODS.len() * CLASSES.len()]),
            duration: metrics::histogram!(REQUEST_DURATION),
            closed: CLOSED_REASONS.map(|r| metrics::counter!(CONNECTIONS_CLOSED, "reason" => r)),
            panics: metrics::counter!(HANDLER_PANICS),
        }
    }

    /// Counts `n` connections closed for `why`.
    pub(crate) fn closed(&self, why: Closed, n: u64) {
        self.closed[why as usize].increment(n);
    }

    /// Counts a handler's panic.
    pub(crate) fn panicked(&self) {
        self.panics.increment(1);
    }

    /// The method's slot, taken when the request arrives.
    pub(crate) fn slot(method: &Method) -> usize {
        method_index(method)
    }

    /// Counts one answered request.
    pub(crate) fn record(&self, method_slot: usize, status: StatusCode, elapsed: Duration) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        let i = method_slot * CLASSES.len() + class;
        let mut counters = self.counters.borrow_mut();
        counters[i]
            .get_or_insert_with(|| {
                metrics::counter!(REQUESTS_TOTAL, "method" => METHODS[method_slot], "status" => CLASSES[class])
            })
            .increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}
