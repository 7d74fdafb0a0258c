//! [`ConnWatch`]: what the server knows about one connection beyond hyper:
//! bytes it sent, when a byte last moved, whether a handler is running,
//! and whether the request body failed in a way that deserves a reply of
//! its own (bad chunked framing: 400; no body byte in time: 408).
//!
//! hyper drops a connection whose request body is malformed without a
//! word when the handler's response had not left yet; the driver then
//! writes [`failure_response`] itself (nginx answers 400 there).

use std::cell::Cell;
use std::time::{Instant, SystemTime};

use http::StatusCode;
use seastar_core::timer::lowres_now;

/// Per-connection bookkeeping shared by the driver, the service, the
/// request bodies and the coalescing writer.
#[derive(Debug)]
pub(crate) struct ConnWatch {
    /// Bytes hyper has written so far.
    out: Cell<u64>,
    /// `out` when the current request reached the service.
    out_at_request: Cell<u64>,
    /// The reply a failed request body deserves, if it failed.
    failed: Cell<Option<StatusCode>>,
    /// Handlers (response futures) not yet resolved.
    handlers: Cell<u32>,
    /// Requests that reached the service on this connection.
    requests: Cell<u64>,
    /// When a byte last moved either way (the loop clock).
    last_activity: Cell<Instant>,
}

impl ConnWatch {
    pub(crate) fn new() -> ConnWatch {
        ConnWatch {
            out: Cell::new(0),
            out_at_request: Cell::new(0),
            failed: Cell::new(None),
            handlers: Cell::new(0),
            requests: Cell::new(0),
            last_activity: Cell::new(lowres_now()),
        }
    }

    /// hyper wrote `n` bytes.
    pub(crate) fn wrote(&self, n: usize) {
        self.out.set(self.out.get() + n as u64);
        self.touch();
    }

    /// Bytes hyper has written so far.
    #[cfg(test)]
    pub(crate) fn written(&self) -> u64 {
        self.out.get()
    }

    /// Bytes arrived.
    pub(crate) fn touch(&self) {
        self.last_activity.set(lowres_now());
    }

    pub(crate) fn last_activity(&self) -> Instant {
        self.last_activity.get()
    }

    /// A request reached the service: its handler starts.
    pub(crate) fn request_started(&self) {
        self.out_at_request.set(self.out.get());
        self.handlers.set(self.handlers.get() + 1);
        self.requests.set(self.requests.get() + 1);
    }

    /// Requests that reached the service so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// A handler resolved (or was dropped).
    pub(crate) fn handler_done(&self) {
        self.handlers.set(self.handlers.get().saturating_sub(1));
    }

    pub(crate) fn handlers_running(&self) -> bool {
        self.handlers.get() > 0
    }

    /// The request body failed; `status` is the reply it deserves.
    pub(crate) fn body_failed(&self, status: StatusCode) {
        if self.failed.get().is_none() {
            self.failed.set(Some(status));
        }
    }

    /// The reply to write before closing: the body failed and not one
    /// byte answered the request it belongs to.
    pub(crate) fn owed_reply(&self) -> Option<StatusCode> {
        self.failed
            .get()
            .filter(|_| self.out.get() == self.out_at_request.get())
    }
}

/// A complete HTTP/1.1 response with `Connection: close`, as the server
/// writes it when hyper could not (see the [module docs](self)).
pub(crate) fn failure_response(status: StatusCode) -> Vec<u8> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!("{}\n", reason.to_ascii_lowercase());
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: {}\r\ndate: {}\r\n\r\n{body}",
        status.as_u16(),
        body.len(),
        httpdate::fmt_http_date(SystemTime::now()),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_owed_only_when_nothing_answered_the_failed_request() {
        seastar_core::block_on(async {
            let w = ConnWatch::new();
            assert_eq!(w.owed_reply(), None);
            w.request_started();
            w.body_failed(StatusCode::BAD_REQUEST);
            assert_eq!(w.owed_reply(), Some(StatusCode::BAD_REQUEST));
            w.body_failed(StatusCode::REQUEST_TIMEOUT);
            assert_eq!(w.owed_reply(), Some(StatusCode::BAD_REQUEST), "first wins");
            w.wrote(17);
            assert_eq!(w.owed_reply(), None, "the answer had started");
            assert!(w.handlers_running());
            w.handler_done();
            assert!(!w.handlers_running());
        });
    }

    #[test]
    fn the_failure_response_is_complete_and_closes() {
        let r = String::from_utf8(failure_response(StatusCode::BAD_REQUEST)).unwrap();
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
        assert!(r.contains("\r\nconnection: close\r\n"), "{r}");
        assert!(r.contains("\r\ncontent-length: 12\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nbad request\n"), "{r}");
        let r = String::from_utf8(failure_response(StatusCode::REQUEST_TIMEOUT)).unwrap();
        assert!(r.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nrequest timeout\n"), "{r}");
    }
}
