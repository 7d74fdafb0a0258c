//! The handle to a spawned task's output.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::reactor::TaskMeta;

type Output<T> = std::thread::Result<T>;

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
    task: Cell<Option<async_task::Task<Output<T>, TaskMeta>>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: async_task::Task<Output<T>, TaskMeta>) -> Self {
        JoinHandle {
            task: Cell::new(Some(task)),
        }
    }

    /// Cancels the task unless it already finished: its future is dropped
    /// on its shard, and awaiting the handle yields
    /// [`JoinError::Cancelled`].
    pub fn abort(&self) {
        if let Some(task) = self.task.take() {
            if task.is_finished() {
                self.task.set(Some(task));
            }
        }
    }

    /// Lets the task run to completion unobserved.
    pub fn detach(self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }

    /// Whether the task has finished (or was aborted).
    pub fn is_finished(&self) -> bool {
        let task = self.task.take();
        let done = task.as_ref().is_none_or(|t| t.is_finished());
        self.task.set(task);
        done
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(task) = this.task.get_mut() else {
            return Poll::Ready(Err(JoinError::Cancelled));
        };
        match Pin::new(task).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                this.task.set(None);
                Poll::Ready(out.map_err(JoinError::Panicked))
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}
