//! The handle to a spawned task's output.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::cell;
use super::home::ShardHome;

/// Why a task produced no output.
#[derive(thiserror::Error)]
pub enum JoinError {
    /// The task was aborted (or its shard stopped) before it finished.
    #[error("task was cancelled")]
    Cancelled,
    /// The task panicked; the payload is kept for `resume_unwind`.
    #[error("task panicked: {}", panic_message(&**.0))]
    Panicked(Box<dyn Any + Send>),
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("Cancelled"),
            JoinError::Panicked(p) => write!(f, "Panicked({:?})", panic_message(&**p)),
        }
    }
}

impl JoinError {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }
}

fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic>")
}

/// An owned permission to await, abort or detach a task.
///
/// Awaiting yields the task's output, or a [`JoinError`] if it panicked or
/// was aborted. Dropping the handle detaches the task (it keeps running).
/// The handle stays on the task's shard (`!Send`).
///
/// ```
/// # seastar_core::block_on(async {
/// let h = seastar_core::spawn_local(std::future::pending::<()>());
/// h.abort();
/// assert!(h.await.unwrap_err().is_cancelled());
/// let p = seastar_core::spawn_local(async { panic!("boom") });
/// assert!(p.await.unwrap_err().is_panic());
/// # });
/// ```
pub struct JoinHandle<T> {
    /// `None` once the output was returned.
    cell: Option<cell::JoinHandle<T, ShardHome>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(cell: cell::JoinHandle<T, ShardHome>) -> Self {
        JoinHandle { cell: Some(cell) }
    }

    /// Cancels the task unless it already finished: its future is dropped
    /// on its shard, and awaiting the handle yields
    /// [`JoinError::Cancelled`].
    pub fn abort(&self) {
        if let Some(c) = &self.cell {
            c.abort();
        }
    }

    /// Lets the task run to completion unobserved.
    pub fn detach(self) {}

    /// Whether the task has finished (or was aborted).
    pub fn is_finished(&self) -> bool {
        self.cell.as_ref().is_none_or(|c| c.is_finished())
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    // (Inlined into the awaiting future: one call fewer per await.)
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match cell::JoinHandle::poll_take(&mut self.get_mut().cell, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => Poll::Ready(match out {
                Some(Ok(v)) => Ok(v),
                Some(Err(p)) => Err(JoinError::Panicked(p)),
                None => Err(JoinError::Cancelled),
            }),
        }
    }
}
