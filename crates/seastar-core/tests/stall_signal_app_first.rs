//! An app that handles the stall detector's signal (`SIGRTMIN + 1`) before
//! the runtime starts keeps it: the runtime installs nothing over it and
//! never sends it; stalls are still counted, without a backtrace.
//! (Its own test binary: the handler is per process.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use seastar_core::{Runtime, introspect};

static APP_SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn app_handler(_: libc::c_int) {
    APP_SIGNALS.fetch_add(1, Ordering::Relaxed);
}

fn app_installs_its_handler() -> libc::sighandler_t {
    let h = app_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installing an async-signal-safe handler (one atomic add).
    let old = unsafe { libc::signal(introspect::stall_signal(), h) };
    assert_ne!(old, libc::SIG_ERR);
    h
}

fn current_handler() -> libc::sighandler_t {
    // SAFETY: an all-zero sigaction is valid to fill; querying only.
    unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        assert_eq!(
            libc::sigaction(introspect::stall_signal(), std::ptr::null(), &mut cur),
            0
        );
        cur.sa_sigaction
    }
}

#[test]
fn an_app_handler_installed_first_is_kept_and_never_signalled() {
    let h = app_installs_its_handler();
    let info = Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .pin(false)
        .task_quota(Duration::from_millis(1))
        .blocked_reactor_notify(Duration::from_millis(10))
        .build()
        .unwrap()
        .run(async {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(80) {
                std::hint::spin_loop();
            }
            seastar_core::yield_now().await;
            introspect::stall_info()
        });
    assert_eq!(current_handler(), h, "the app's handler was replaced");
    assert_eq!(APP_SIGNALS.load(Ordering::Relaxed), 0);
    assert!(info.count >= 1, "{info:?}");
    assert_eq!(info.last_backtrace, None);
}
