//! Offloading calls that have no asynchronous form.
//!
//! Each runtime keeps a small pool of helper threads (created on first use,
//! never pinned to the shards' CPUs' exclusive use) for syscalls such as
//! `open`, `stat` or `fsync` on the epoll backend, or DNS. The result comes
//! back through a cross-thread wake, so a shard thread never blocks.

use std::future::Future;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use futures::channel::oneshot;

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static Mutex<mpsc::Sender<Job>> {
    static POOL: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..4 {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("seastar-blocking-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawn blocking helper thread");
        }
        Mutex::new(tx)
    })
}

/// Runs `f` on a helper thread and resolves to its result. A panic in `f`
/// is resumed in the awaiting task.
///
/// ```
/// # seastar_core::block_on(async {
/// let len = seastar_core::io::spawn_blocking(|| std::fs::metadata("/").map(|m| m.is_dir())).await;
/// assert!(len.unwrap());
/// # });
/// ```
pub fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = T> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    let sent = pool().lock().map(|p| p.send(job).is_ok()).unwrap_or(false);
    async move {
        assert!(sent, "blocking pool is gone");
        match rx.await {
            Ok(Ok(v)) => v,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("blocking helper thread dropped the job"),
        }
    }
}
