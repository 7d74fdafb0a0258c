//! What a gRPC connection's watchdog looks at: whether the client has sent
//! anything yet, when bytes last moved, and how many requests are being
//! served; and the watchdog itself.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use seastar_core::timer;

/// Activity of one connection, updated by the I/O wrapper and the service.
#[derive(Debug)]
pub(crate) struct Activity {
    started: Instant,
    read_any: Cell<bool>,
    last: Cell<Instant>,
    busy: Cell<usize>,
    /// Requests that reached the service, ever.
    calls: Cell<u64>,
}

impl Activity {
    pub(crate) fn new() -> Rc<Activity> {
        let now = timer::now();
        Rc::new(Activity {
            started: now,
            read_any: Cell::new(false),
            last: Cell::new(now),
            busy: Cell::new(0),
            calls: Cell::new(0),
        })
    }

    /// Bytes were received.
    pub(crate) fn on_read(&self) {
        self.read_any.set(true);
        self.last.set(timer::now());
    }

    /// Bytes were sent.
    pub(crate) fn on_write(&self) {
        self.last.set(timer::now());
    }

    /// Whether any request has reached the service.
    pub(crate) fn called(&self) -> bool {
        self.calls.get() > 0
    }

    /// A request is being served until the guard drops.
    pub(crate) fn busy(self: &Rc<Self>) -> Busy {
        self.busy.set(self.busy.get() + 1);
        self.calls.set(self.calls.get() + 1);
        Busy(self.clone())
    }
}

/// See [`Activity::busy`].
#[derive(Debug)]
pub(crate) struct Busy(Rc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.set(self.0.busy.get() - 1);
        self.0.last.set(timer::now());
    }
}

/// A future that keeps a [`Busy`] guard while it runs.
pub(crate) struct Tracked<F> {
    pub(crate) fut: F,
    pub(crate) _busy: Busy,
}

impl<F: Future + Unpin> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        Pin::new(&mut self.get_mut().fut).poll(cx)
    }
}

/// Why the watchdog fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Nothing received within the first-bytes timeout.
    FirstBytes,
    /// No request in flight and no byte moved for the idle timeout.
    Idle,
}

/// Resolves when the connection should be closed.
pub(crate) async fn watchdog(act: &Activity, first: Duration, idle: Option<Duration>) -> Expired {
    loop {
        let now = timer::now();
        if !act.read_any.get() {
            let deadline = act.started + first;
            if now >= deadline {
                return Expired::FirstBytes;
            }
            timer::sleep_until(deadline).await;
            continue;
        }
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        if act.busy.get() > 0 {
            timer::sleep(idle).await;
            continue;
        }
        let deadline = act.last.get() + idle;
        if now >= deadline {
            return Expired::Idle;
        }
        timer::sleep_until(deadline).await;
    }
}
