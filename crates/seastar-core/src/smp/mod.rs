//! Cross-shard calls: run a closure on another shard and await its result.
//!
//! [`submit_to`] moves a `Send` closure to the target shard, where it
//! builds and runs its (possibly `!Send`) future. Submitting to the calling
//! shard spawns locally, without crossing threads.
//!
//! # Transport
//!
//! Every ordered pair of shards has a bounded single-producer
//! single-consumer ring (`ring.rs`) carrying messages: tasks of the
//! destination woken elsewhere, and the steps of cross-shard calls. A call
//! is a work item (`call/`, as in Seastar): one cell, allocated on the
//! caller's shard from a shard-local pool (`pool.rs`), sent to the target,
//! polled there in place (a future that finishes at once costs no task; one
//! that waits gets a local driver task), and sent back with its result. No
//! atomic operation per call: each field of the cell belongs to one side
//! and the ring's publication hands it over.
//!
//! Messages for shard B are appended to A's outgoing batch for B, which is
//! published into the ring (a stamp per slot, on the slot's own line) when
//! 32 messages are pending or at the end of A's task batch, whichever
//! comes first: B starts working while A is still producing. B drains its
//! incoming rings on every loop iteration, so A signals B only if B
//! sleeps (a look at B's sleeping flag, which in poll mode is skipped
//! altogether), and B runs the calls at the start of its task batch
//! (within its quota).
//!
//! One call in flight between two shards in poll mode is a latency test
//! of all this (`examples/submit_throughput.rs` with `POLL_MODE=1`, and the
//! core bench suite's `cross_shard_round_trip_poll_mode`): what it costs
//! is cache lines crossing between the cores, plus half a loop iteration
//! on each side. Signalling through a read-modify-write of B's state word
//! and publishing through a shared tail index made about five crossings a
//! hop; the stamped slots and the sleep-only signal leave the slot's line
//! and the call cell's, and a call whose closure and output each fit a
//! word carries them in its start and its reply (`call_msg.rs`), so that
//! neither side reads a line of the cell the other wrote last (the target
//! only writes the cell, the origin reads its own line). A loop iteration
//! that finds nothing reads no clock, and a batch of a task or two none
//! either (`reactor/run_loop.rs`). When B falls behind and A's
//! backlog for B reaches eight rings' worth, `submit_to` waits for room:
//! nothing is dropped and nobody spins (B signals A when it frees space).
//! Threads that are not shards of the runtime fall back to B's
//! mutex-protected inbox (for wakes only: `submit_to` needs a shard).
//!
//! The batching, publishing, back-pressure and draining live in
//! `transport.rs`: one `Transport` per shard, which owns that shard's
//! ends of the rings (a ring's only `Producer` and only `Consumer`, so the
//! one-producer/one-consumer rule holds by type) and which the reactor
//! loop calls at fixed points. `transport.rs`, `call/`, `ring.rs` and
//! `pool.rs` sit below the reactor and name none of its items (bar the
//! leaf modules `reactor::remote` and `reactor::stats`); this file sits
//! above it.
//!
//! ```
//! use seastar_core::{Runtime, shard_id, smp};
//!
//! Runtime::builder().shards(2).build().unwrap().run(async {
//!     let id = smp::submit_to(1, || async { shard_id() }).await.unwrap();
//!     assert_eq!(id, 1);
//! });
//! ```

mod call;
mod call_msg;
mod foreign;
pub(crate) mod pool;
mod ring;
mod sharded;
pub(crate) mod transport;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt;

use crate::reactor;

/// Why a cross-shard call produced no value.
#[derive(thiserror::Error)]
pub enum SubmitError {
    /// The target shard does not exist.
    #[error("no shard {0}")]
    NoSuchShard(usize),
    /// The target shard stopped before the call finished.
    #[error("target shard stopped")]
    Stopped,
    /// The closure or its future panicked on the target shard.
    #[error("submitted call panicked")]
    Panicked(Box<dyn Any + Send>),
}

impl fmt::Debug for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::NoSuchShard(n) => write!(f, "NoSuchShard({n})"),
            SubmitError::Stopped => f.write_str("Stopped"),
            SubmitError::Panicked(_) => f.write_str("Panicked(..)"),
        }
    }
}

pub use foreign::ForeignPtr;
pub use sharded::{Sharded, StopHook};

/// Runs `f` on shard `shard` and resolves to the output of its future.
///
/// `f` is `Send` (it travels), its future need not be (it runs where it
/// was built, on the target), in the caller's scheduling group. Calling
/// with the own shard spawns locally.
///
/// The call starts at once (as in Seastar), not when the returned future is
/// first polled: issue many calls, then await them, to keep many in flight.
/// Only when the backlog towards `shard` is full (eight rings' worth of
/// calls not yet taken by the target) does the call wait, inside the
/// returned future, for room. Dropping the future cancels the call: one
/// not started yet does not run, a running one has its future dropped on
/// the target, and a finished one's result is dropped.
///
/// # Panics
///
/// Outside a shard.
pub fn submit_to<F, Fut, T>(shard: usize, f: F) -> Submit<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let state = reactor::with(|s| {
        if shard >= s.count() {
            State::Failed(Some(SubmitError::NoSuchShard(shard)))
        } else if shard == s.id() {
            let call = AssertUnwindSafe(async move { f().await }).catch_unwind();
            State::Running(Running::Local(crate::spawn_local(call)))
        } else if s.transport().has_space(shard) {
            State::Running(Running::Remote(start(s, shard, f)))
        } else {
            let start = move || reactor::with(|s| Running::Remote(start(s, shard, f)));
            State::WaitingForRoom(shard, Some(Box::new(start)))
        }
    });
    Submit { state }
}

/// Sends a new call of `f` from shard `s` to `shard` (another one), in the
/// caller's scheduling group.
fn start<F, Fut, T>(s: &reactor::Shard, shard: usize, f: F) -> call::Pending<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (ptr, start) = call::new(s.id(), shard, s.current_group().get(), f);
    s.transport().push(shard, start);
    call::Pending::new(ptr, s.transport().clone())
}

type Output<T> = std::thread::Result<T>;

enum Running<T> {
    Local(crate::JoinHandle<Output<T>>),
    Remote(call::Pending<T>),
}

enum State<T> {
    WaitingForRoom(usize, Option<Box<dyn FnOnce() -> Running<T>>>),
    Running(Running<T>),
    Failed(Option<SubmitError>),
}

/// The future of [`submit_to`]: the call's output, or why there is none.
#[must_use = "dropping a Submit cancels the call"]
pub struct Submit<T> {
    state: State<T>,
}

impl<T> fmt::Debug for Submit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Submit { .. }")
    }
}

impl<T> Unpin for Submit<T> {}

impl<T: Send + 'static> Future for Submit<T> {
    type Output = Result<T, SubmitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let out = match &mut self.state {
                State::Failed(e) => {
                    return Poll::Ready(Err(e.take().unwrap_or(SubmitError::Stopped)));
                }
                State::WaitingForRoom(shard, start) => {
                    if !reactor::with(|s| s.transport().poll_space(*shard, cx.waker())) {
                        return Poll::Pending;
                    }
                    let start = start.take().expect("started once");
                    self.state = State::Running(start());
                    continue;
                }
                State::Running(Running::Local(h)) => match Pin::new(h).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r.map_err(|_| SubmitError::Stopped),
                },
                State::Running(Running::Remote(t)) => match t.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r.ok_or(SubmitError::Stopped),
                },
            };
            self.state = State::Failed(None);
            return Poll::Ready(out.and_then(|r| r.map_err(SubmitError::Panicked)));
        }
    }
}

/// Runs `f` on every shard concurrently; resolves to the results in shard
/// order.
///
/// ```
/// use seastar_core::{Runtime, shard_id, smp};
///
/// Runtime::builder().shards(2).build().unwrap().run(async {
///     let ids = smp::invoke_on_all(|| async { shard_id() }).await.unwrap();
///     assert_eq!(ids, vec![0, 1]);
/// });
/// ```
pub async fn invoke_on_all<F, Fut, T>(f: F) -> Result<Vec<T>, SubmitError>
where
    F: Fn() -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let n = crate::shard_count();
    let calls = (0..n).map(|s| submit_to(s, f.clone()));
    futures::future::join_all(calls).await.into_iter().collect()
}

/// Runs `f` on every shard except the calling one, concurrently; results
/// in shard order (the caller's slot skipped).
///
/// ```
/// use seastar_core::{Runtime, shard_id, smp};
///
/// Runtime::builder().shards(2).build().unwrap().run(async {
///     let others = smp::invoke_on_others(|| async { shard_id() }).await.unwrap();
///     assert_eq!(others, vec![1]);
/// });
/// ```
pub async fn invoke_on_others<F, Fut, T>(f: F) -> Result<Vec<T>, SubmitError>
where
    F: Fn() -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let me = crate::shard_id();
    let calls: Vec<_> = (0..crate::shard_count())
        .filter(|&s| s != me)
        .map(|s| submit_to(s, f.clone()))
        .collect();
    futures::future::join_all(calls).await.into_iter().collect()
}

/// Delivers `f` to every shard (the caller's included) for its side
/// effects, and resolves once every shard has run it: the way to push a
/// configuration change or a cache invalidation everywhere.
///
/// ```
/// use std::cell::Cell;
/// use seastar_core::{Runtime, smp};
///
/// thread_local!(static LIMIT: Cell<u32> = const { Cell::new(0) });
///
/// Runtime::builder().shards(2).build().unwrap().run(async {
///     smp::broadcast(|| async { LIMIT.with(|l| l.set(64)) }).await.unwrap();
///     let limits = smp::invoke_on_all(|| async { LIMIT.with(Cell::get) }).await.unwrap();
///     assert_eq!(limits, vec![64, 64]);
/// });
/// ```
pub async fn broadcast<F, Fut>(f: F) -> Result<(), SubmitError>
where
    F: Fn() -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    invoke_on_all(f).await.map(drop)
}
