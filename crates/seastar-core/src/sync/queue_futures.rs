//! The futures of a [`Queue`]: [`Push`] and [`Pop`].
//!
//! Each waits in its own FIFO (producers, consumers) and is served by
//! hand-off, so what the other side does before the woken task runs cannot
//! take its item or its room. Dropped while waiting, a push drops its item
//! unpushed; a pop that had already been handed an item passes it to the
//! next waiting pop, or back to the head of the queue, so no item is lost.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::queue::{Node, Queue};
use super::wait_list::park;
use super::{Error, PushError, wake_all};

/// The future of [`Queue::push`].
///
/// ```
/// # seastar_core::block_on(async {
/// let q = seastar_core::sync::Queue::new(1);
/// let push: seastar_core::sync::Push<u8> = q.push(1);
/// push.await.unwrap();
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Push<T> {
    pub(super) queue: Queue<T>,
    pub(super) item: Option<T>,
    pub(super) slot: Option<usize>,
}

// The item is never pinned: it only moves in and out by value.
impl<T> Unpin for Push<T> {}

impl<T> fmt::Debug for Push<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("queued", &self.slot.is_some())
            .finish()
    }
}

impl<T> Future for Push<T> {
    type Output = Result<(), PushError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut woken = Vec::new();
        let outcome = {
            let mut st = this.queue.state.borrow_mut();
            match this.slot {
                None => {
                    let item = this.item.take().expect("Push polled after completion");
                    if let Some(cause) = &st.aborted {
                        Err(PushError::Aborted(item, cause.clone()))
                    } else if st.has_room() {
                        st.deliver(item, &mut woken);
                        Ok(())
                    } else {
                        let node = Node {
                            item: Some(item),
                            waker: Some(cx.waker().clone()),
                        };
                        this.slot = Some(st.pushers.push_back(node));
                        return Poll::Pending;
                    }
                }
                Some(slot) if st.pushers.is_linked(slot) => {
                    park(&mut st.pushers.get_mut(slot).waker, cx);
                    return Poll::Pending;
                }
                Some(slot) => {
                    this.slot = None;
                    match st.pushers.remove(slot).item {
                        None => Ok(()),
                        Some(item) => {
                            let cause = st.aborted.clone().expect("aborted");
                            Err(PushError::Aborted(item, cause))
                        }
                    }
                }
            }
        };
        wake_all(woken);
        Poll::Ready(outcome)
    }
}

impl<T> Drop for Push<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let node = self.queue.state.borrow_mut().pushers.remove(slot);
            drop(node); // the unpushed item, outside the borrow
        }
    }
}

/// The future of [`Queue::pop`].
///
/// ```
/// # seastar_core::block_on(async {
/// let q = seastar_core::sync::Queue::new(1);
/// q.try_push(1u8).unwrap();
/// let pop: seastar_core::sync::Pop<u8> = q.pop();
/// assert_eq!(pop.await.unwrap(), 1);
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Pop<T> {
    pub(super) queue: Queue<T>,
    pub(super) slot: Option<usize>,
}

impl<T> fmt::Debug for Pop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pop")
            .field("queued", &self.slot.is_some())
            .finish()
    }
}

impl<T> Future for Pop<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut woken = Vec::new();
        let outcome = {
            let mut st = this.queue.state.borrow_mut();
            match this.slot {
                None => {
                    if let Some(cause) = &st.aborted {
                        Err(Error::Broken(cause.clone()))
                    } else if let Some(item) = st.take(&mut woken) {
                        Ok(item)
                    } else {
                        let node = Node {
                            item: None,
                            waker: Some(cx.waker().clone()),
                        };
                        this.slot = Some(st.poppers.push_back(node));
                        return Poll::Pending;
                    }
                }
                Some(slot) if st.poppers.is_linked(slot) => {
                    park(&mut st.poppers.get_mut(slot).waker, cx);
                    return Poll::Pending;
                }
                Some(slot) => {
                    this.slot = None;
                    match st.poppers.remove(slot).item {
                        Some(item) => Ok(item),
                        None => Err(Error::Broken(st.aborted.clone().expect("aborted"))),
                    }
                }
            }
        };
        wake_all(woken);
        Poll::Ready(outcome)
    }
}

impl<T> Drop for Pop<T> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let mut woken = Vec::new();
        {
            let mut st = self.queue.state.borrow_mut();
            if let Some(item) = st.poppers.remove(slot).item {
                // Handed an item but cancelled before taking it: the item
                // goes to the next consumer, or back to the head.
                match st.poppers.pop_front() {
                    Some(next) => {
                        let node = st.poppers.get_mut(next);
                        node.item = Some(item);
                        woken.extend(node.waker.take());
                    }
                    None => st.items.push_front(item),
                }
            }
        }
        wake_all(woken);
    }
}
