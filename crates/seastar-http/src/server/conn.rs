//! The per-connection hyper service: applies the body limit (413 before
//! reading a body whose `Content-Length` is too large), the per-connection
//! request cap (`Connection: close` on the last response), the body read
//! timeout, turns a handler's panic into a 500 that closes the
//! connection, and records metrics, around the server's handler.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use seastar_core::timer::lowres_now;

use http::StatusCode;
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderValue};
use hyper::body::{Body as _, Incoming};

use super::{ConnWatch, Shared, bump};
use crate::handler::HandlerFuture;
use crate::metrics::HttpMetrics;
use crate::{Body, Response};

pub(crate) struct ConnService {
    pub(crate) shared: Rc<Shared>,
    pub(crate) served: Cell<u64>,
    pub(crate) watch: Rc<ConnWatch>,
}

/// The request's `Content-Length`; not looked up for a request hyper
/// already knows has no body (most of them: no `Content-Length`, or 0).
fn declared_length(req: &http::Request<Incoming>) -> Option<u64> {
    if req.body().is_end_stream() {
        return None;
    }
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: http::Request<Incoming>) -> ResponseFuture {
        let shared = &self.shared;
        let n = self.served.get() + 1;
        self.served.set(n);
        shared.stats.requests.set(shared.stats.requests.get() + 1);
        let close = shared
            .config
            .max_requests_per_connection
            .is_some_and(|cap| n >= cap);
        let slot = HttpMetrics::slot(req.method());
        // The loop iteration's clock: no clock read per request (two
        // `Instant::now` cost about 150 instructions here, callgrind); a
        // request answered within the iteration records 0, waits show whole.
        let start = lowres_now();
        self.watch.request_started();
        let limit = shared.config.max_body_size;
        let handler = match limit {
            Some(limit) if declared_length(&req).is_some_and(|len| len > limit) => {
                let mut r = crate::response::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {limit} bytes"),
                );
                // The body stays unread: end the connection after this answer.
                r.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                let ready: HandlerFuture = Box::pin(std::future::ready(r));
                ready
            }
            _ => {
                let timeout = shared.config.body_read_timeout;
                let watch = || Some(self.watch.clone());
                let req = req.map(|b| Body::incoming(b, limit, timeout, watch));
                shared.handler.call(req)
            }
        };
        ResponseFuture {
            handler,
            shared: shared.clone(),
            slot,
            start,
            close,
            watch: self.watch.clone(),
        }
    }
}

/// The response on its way to hyper; one allocation (the handler's
/// future). Small: hyper moves it into its dispatcher, and a variant
/// holding a whole `Response` (the rare 413) made every move a `memcpy`.
pub(crate) struct ResponseFuture {
    handler: HandlerFuture,
    shared: Rc<Shared>,
    slot: usize,
    start: Instant,
    close: bool,
    watch: Rc<ConnWatch>,
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        self.watch.handler_done();
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let handler = &mut this.handler;
        // hyper polls this once more only if it returned `Pending`, so a
        // handler that panicked is never polled again.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx)));
        let mut resp = match polled {
            Ok(p) => ready!(p),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(not a string)");
                tracing::error!(
                    shard = seastar_core::shard_id(),
                    panic = what,
                    "handler panicked; answering 500 and closing the connection"
                );
                bump(&this.shared.stats.panics);
                this.shared.metrics.panicked();
                this.close = true;
                crate::response::error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            }
        };
        if this.close {
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        this.shared
            .metrics
            .record(this.slot, resp.status(), since(this.start));
        Poll::Ready(Ok(resp))
    }
}

/// Time since `start` on the loop clock; most answers leave in the
/// iteration that read their request, so the equal case skips the
/// subtraction (about 40 instructions, callgrind).
#[inline]
fn since(start: Instant) -> Duration {
    let now = lowres_now();
    if now == start {
        Duration::ZERO
    } else {
        now.saturating_duration_since(start)
    }
}
