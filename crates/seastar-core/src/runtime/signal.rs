//! Graceful stop: SIGINT/SIGTERM, or a programmatic request, resolve
//! [`stop_signal`] on every shard.

use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::reactor::{self, Shared};

/// Resolves when a stop was requested (first SIGINT/SIGTERM, or
/// [`request_stop`]). Created by [`stop_signal`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct StopSignal(());

/// A future that resolves once the runtime is asked to stop. Servers
/// select on it next to their accept loop, stop accepting, finish in-flight
/// work, and return from main.
///
/// ```
/// # seastar_core::block_on(async {
/// seastar_core::request_stop();
/// seastar_core::stop_signal().await;
/// # });
/// ```
pub fn stop_signal() -> StopSignal {
    StopSignal(())
}

/// Requests a graceful stop, as SIGTERM would.
///
/// # Panics
///
/// Outside a shard.
pub fn request_stop() {
    reactor::with(|s| {
        s.shared().stop_requested.store(true, Ordering::Release);
        s.shared().signal_all();
    })
}

impl Future for StopSignal {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        reactor::with(|s| {
            if s.shared().stop_requested.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            let mut w = s.stop_waiters().borrow_mut();
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

/// Shard 0's task reading the signalfd: the first signal requests a stop
/// (and arms the stop deadline, if any), the second exits the process.
pub(crate) async fn watch(fd: OwnedFd, shared: Arc<Shared>, deadline: Option<Duration>) {
    let mut seen = 0u32;
    loop {
        let (res, buf) = crate::io::read(fd.as_raw_fd(), Vec::with_capacity(128)).await;
        match res {
            Ok(n) if n >= 4 => {
                let signo = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
                seen += 1;
                if seen == 1 {
                    tracing::info!(
                        signal = signo,
                        "stop requested; a second signal exits at once"
                    );
                    shared.stop_requested.store(true, Ordering::Release);
                    shared.signal_all();
                    if let Some(d) = deadline {
                        arm_deadline(d);
                    }
                } else {
                    eprintln!("second signal {signo}: exiting now");
                    std::process::exit(128 + signo as i32);
                }
            }
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "signalfd read failed; signals no longer handled");
                return;
            }
        }
    }
}

/// Exits the process if it still runs `d` from now: a thread of its own,
/// so that no task, however stuck, can hold the stop (a shard thread that
/// never yields included). Exiting ends the process even while this
/// thread sleeps; nothing waits for it.
fn arm_deadline(d: Duration) {
    let spawned = std::thread::Builder::new()
        .name("stop-deadline".into())
        .spawn(move || {
            std::thread::sleep(d);
            tracing::error!(
                deadline_s = d.as_secs_f64(),
                "graceful stop did not finish in time: exiting"
            );
            eprintln!("stop deadline of {d:?} passed: exiting");
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no stop-deadline thread; the stop is not bounded");
    }
}
