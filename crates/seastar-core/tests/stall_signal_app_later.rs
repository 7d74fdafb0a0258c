//! An app that installs its own handler for the stall detector's signal
//! (`SIGRTMIN + 1`) after the runtime started gets no signal from the
//! detector: it checks the handler is still its own before each one.
//! Stalls are still counted, without a backtrace.
//! (Its own test binary: the handler is per process.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use seastar_core::{Runtime, introspect};

static APP_SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn app_handler(_: libc::c_int) {
    APP_SIGNALS.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn an_app_handler_installed_later_is_never_signalled() {
    let info = Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .pin(false)
        .task_quota(Duration::from_millis(1))
        .blocked_reactor_notify(Duration::from_millis(10))
        .build()
        .unwrap()
        .run(async {
            let h = app_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // SAFETY: installing an async-signal-safe handler (one atomic add).
            let old = unsafe { libc::signal(introspect::stall_signal(), h) };
            assert_ne!(old, libc::SIG_ERR);
            assert_ne!(old, libc::SIG_DFL, "the runtime installed its handler");
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(80) {
                std::hint::spin_loop();
            }
            seastar_core::yield_now().await;
            introspect::stall_info()
        });
    assert_eq!(APP_SIGNALS.load(Ordering::Relaxed), 0);
    assert!(info.count >= 1, "{info:?}");
    assert_eq!(info.last_backtrace, None);
}
