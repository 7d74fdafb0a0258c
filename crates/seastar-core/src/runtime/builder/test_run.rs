//! The runner behind `#[seastar_core::test]`: picks and prints the seed,
//! builds the runtime (unpinned, no signal handling), seeds every shard's
//! run queue (debug builds shuffle ready tasks with it), runs the test body
//! on shard 0 on a thread of its own under an optional timeout, and turns a
//! returned `Err` into a failure.
//!
//! The seed comes from `SEASTAR_TEST_SEED` when set (to replay a failure),
//! else from the clock, the process id and a counter. It fixes the run
//! queue's choices; I/O completions and other shards' messages may still
//! arrive at other times, so a replay is exact for what one shard does with
//! what it has, not for the whole interleaving.

use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::RuntimeBuilder;
use crate::BackendKind;

/// The environment variable that replays a test's seed.
const SEED_VAR: &str = "SEASTAR_TEST_SEED";

/// What a `#[seastar_core::test]` function may return: `()`, or
/// `Result<(), E>` with `E: Debug` (an `Err` fails the test).
#[diagnostic::on_unimplemented(
    message = "a `#[seastar_core::test]` function returns `()` or `Result<(), E>` with `E: Debug`, not `{Self}`"
)]
pub trait TestResult {
    /// The failure to report, if any.
    fn failure(self) -> Option<String>;
}

impl TestResult for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: Debug> TestResult for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| format!("test returned Err: {e:?}"))
    }
}

impl RuntimeBuilder {
    /// What `#[seastar_core::test]` expands to; not an API of its own.
    ///
    /// Prints `seastar test seed: N (replay with SEASTAR_TEST_SEED=N)` to
    /// stderr, then runs `body` as described in the attribute's docs.
    /// `backend`, when given, wins over `SEASTAR_REACTOR_BACKEND`.
    ///
    /// # Panics
    ///
    /// When the test fails: its panic is resumed, an `Err` or a timeout
    /// panics; also on a malformed `SEASTAR_TEST_SEED` or a runtime that
    /// cannot be built.
    #[doc(hidden)]
    pub fn __run_test<F, Fut>(
        self,
        backend: Option<BackendKind>,
        timeout: Option<Duration>,
        body: F,
    ) where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output: TestResult> + 'static,
    {
        let seed = test_seed();
        eprintln!("seastar test seed: {seed} (replay with {SEED_VAR}={seed})");
        let mut rt = self
            .pin(false)
            .handle_signals(false)
            .build()
            .expect("#[seastar_core::test]: building the runtime");
        if backend.is_some() {
            rt.config.backend = backend;
        }
        let name = std::thread::current()
            .name()
            .unwrap_or("seastar-test")
            .to_owned();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let failure = rt.run(async move {
                    shuffle_every_shard(seed).await;
                    body().await.failure()
                });
                let _ = done_tx.send(());
                failure
            })
            .expect("#[seastar_core::test]: spawning the test thread");
        if let Some(limit) = timeout {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(limit) {
                // The runtime's threads are left behind: nothing can stop a
                // task that never yields.
                panic!("test {name} still running after {limit:?} (seed {seed})");
            }
        }
        match thread.join() {
            Ok(None) => {}
            Ok(Some(failure)) => panic!("{failure} (seed {seed})"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// `SEASTAR_TEST_SEED` if set, else a fresh seed.
fn test_seed() -> u64 {
    if let Ok(v) = std::env::var(SEED_VAR) {
        let v = v.trim();
        if !v.is_empty() {
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            return parsed.unwrap_or_else(|_| panic!("{SEED_VAR}={v:?} is not a u64"));
        }
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    mix(nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The splitmix64 finaliser: spreads nearby inputs over the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seeds the run queue of every shard, shard `i` with its own stream drawn
/// from `seed`. Debug builds only; release builds keep the FIFO.
async fn shuffle_every_shard(seed: u64) {
    #[cfg(debug_assertions)]
    {
        let shard_seed = |i: usize| seed ^ mix(i as u64);
        set_shuffle(shard_seed(0));
        for i in 1..crate::shard_count() {
            let s = shard_seed(i);
            let seeded = crate::smp::submit_to(i, move || async move { set_shuffle(s) });
            seeded
                .await
                .expect("#[seastar_core::test]: seeding a shard");
        }
        // The queue learns which task runs when it hands it out: go through
        // it once, so that a yield of this task is known as one.
        crate::yield_now().await;
    }
    #[cfg(not(debug_assertions))]
    let _ = seed;
}

#[cfg(debug_assertions)]
fn set_shuffle(seed: u64) {
    crate::reactor::with(|s| s.queue().borrow_mut().set_shuffle(Some(seed)));
}
