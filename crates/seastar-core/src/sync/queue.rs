//! A bounded FIFO queue between tasks of a shard: Seastar's `queue<T>`.
//!
//! A producer that is faster than its consumer must be slowed down, not
//! allowed to fill memory; a consumer with nothing to do must sleep, not
//! poll. A [`Queue`] holds at most `capacity` items: [`Queue::push`] waits
//! for room and [`Queue::pop`] waits for an item, so back-pressure flows
//! both ways. Waiting producers and consumers are each served in FIFO
//! order, by hand-off: a pop that frees room moves the oldest waiting
//! producer's item in, a push into an empty queue gives its item straight
//! to the oldest waiting consumer. [`Queue::abort`] ends the queue for
//! everyone: buffered items are dropped and every waiter fails.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::task::Waker;

use super::wait_list::WaitList;
use super::{Cause, Error, Pop, Push, wake_all};

/// A waiting producer's item, or a waiting consumer's delivery. Unlinked
/// with `item: None` (producer) or `Some` (consumer) means served;
/// unlinked otherwise means failed by `abort`.
pub(super) struct Node<T> {
    pub(super) item: Option<T>,
    pub(super) waker: Option<Waker>,
}

pub(super) struct State<T> {
    pub(super) items: VecDeque<T>,
    capacity: usize,
    pub(super) pushers: WaitList<Node<T>>,
    pub(super) poppers: WaitList<Node<T>>,
    pub(super) aborted: Option<Cause>,
}

impl<T> State<T> {
    /// Places `item` with the oldest waiting consumer, or else at the back.
    pub(super) fn deliver(&mut self, item: T, woken: &mut Vec<Waker>) {
        match self.poppers.pop_front() {
            Some(slot) => {
                let node = self.poppers.get_mut(slot);
                node.item = Some(item);
                woken.extend(node.waker.take());
            }
            None => self.items.push_back(item),
        }
    }

    /// Takes the front item and lets waiting producers into the room.
    pub(super) fn take(&mut self, woken: &mut Vec<Waker>) -> Option<T> {
        let item = self.items.pop_front()?;
        while self.items.len() < self.capacity {
            let Some(slot) = self.pushers.pop_front() else {
                break;
            };
            let node = self.pushers.get_mut(slot);
            woken.extend(node.waker.take());
            let pushed = node.item.take().expect("waiting push holds its item");
            self.items.push_back(pushed);
        }
        Some(item)
    }

    pub(super) fn has_room(&self) -> bool {
        self.pushers.is_empty() && self.items.len() < self.capacity
    }
}

/// A bounded shard-local FIFO queue. Clones are handles to the same queue.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_core::sync::Queue;
///
/// let q = Queue::new(2);
/// let tx = q.clone();
/// seastar_core::spawn_local(async move {
///     for i in 0..5 {
///         tx.push(i).await.unwrap(); // waits while two items are queued
///     }
/// })
/// .detach();
/// for i in 0..5 {
///     assert_eq!(q.pop().await.unwrap(), i);
/// }
/// # });
/// ```
pub struct Queue<T> {
    pub(super) state: Rc<RefCell<State<T>>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            state: self.state.clone(),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("Queue")
            .field("len", &st.items.len())
            .field("capacity", &st.capacity)
            .field("aborted", &st.aborted.is_some())
            .finish()
    }
}

impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` items.
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::Queue::<u8>::new(8).capacity(), 8);
    /// ```
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    pub fn new(capacity: usize) -> Queue<T> {
        assert!(capacity > 0, "a queue needs a capacity of at least 1");
        Queue {
            state: Rc::new(RefCell::new(State {
                items: VecDeque::new(),
                capacity,
                pushers: WaitList::default(),
                poppers: WaitList::default(),
                aborted: None,
            })),
        }
    }

    /// Pushes `item`, waiting for room behind earlier waiting pushes. On an
    /// aborted queue, fails and gives the item back. Dropping the future
    /// while it waits drops the item unpushed.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let q = seastar_core::sync::Queue::new(1);
    /// q.push("a").await.unwrap();
    /// assert_eq!(q.len(), 1);
    /// # });
    /// ```
    pub fn push(&self, item: T) -> Push<T> {
        Push {
            queue: self.clone(),
            item: Some(item),
            slot: None,
        }
    }

    /// Pushes `item` if that needs no waiting, else gives it back in
    /// [`PushError::Full`] (or [`PushError::Aborted`]).
    ///
    /// ```
    /// use seastar_core::sync::{PushError, Queue};
    /// let q = Queue::new(1);
    /// q.try_push(1).unwrap();
    /// assert!(matches!(q.try_push(2), Err(PushError::Full(2))));
    /// ```
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        let mut woken = Vec::new();
        {
            let mut st = self.state.borrow_mut();
            if let Some(cause) = &st.aborted {
                return Err(PushError::Aborted(item, cause.clone()));
            }
            if !st.has_room() {
                return Err(PushError::Full(item));
            }
            st.deliver(item, &mut woken);
        }
        wake_all(woken);
        Ok(())
    }

    /// Pops the oldest item, waiting for one behind earlier waiting pops.
    /// Fails with [`Error::Broken`] once the queue is aborted.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let q = seastar_core::sync::Queue::new(1);
    /// q.try_push(5).unwrap();
    /// assert_eq!(q.pop().await.unwrap(), 5);
    /// # });
    /// ```
    pub fn pop(&self) -> Pop<T> {
        Pop {
            queue: self.clone(),
            slot: None,
        }
    }

    /// The oldest item if one is queued; `Ok(None)` if empty; an error
    /// once aborted.
    ///
    /// ```
    /// let q = seastar_core::sync::Queue::new(1);
    /// assert_eq!(q.try_pop().unwrap(), None);
    /// q.try_push('x').unwrap();
    /// assert_eq!(q.try_pop().unwrap(), Some('x'));
    /// ```
    pub fn try_pop(&self) -> Result<Option<T>, Error> {
        let mut woken = Vec::new();
        let item = {
            let mut st = self.state.borrow_mut();
            if let Some(cause) = &st.aborted {
                return Err(Error::Broken(cause.clone()));
            }
            st.take(&mut woken)
        };
        wake_all(woken);
        Ok(item)
    }

    /// Aborts the queue: buffered items are dropped, every waiting and
    /// future push and pop fails with `cause` (pushes give their item back).
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// use seastar_core::sync::{Cause, Queue};
    /// let q = Queue::new(1);
    /// q.try_push(1).unwrap();
    /// q.abort(Cause::msg("consumer gone"));
    /// assert_eq!(q.pop().await.unwrap_err().to_string(), "broken: consumer gone");
    /// assert!(q.is_empty());
    /// # });
    /// ```
    pub fn abort(&self, cause: impl Into<Cause>) {
        let mut woken = Vec::new();
        let dropped = {
            let st = &mut *self.state.borrow_mut();
            st.aborted = Some(cause.into());
            for list in [&mut st.pushers, &mut st.poppers] {
                while let Some(slot) = list.pop_front() {
                    woken.extend(list.get_mut(slot).waker.take());
                }
            }
            std::mem::take(&mut st.items)
        };
        drop(dropped);
        wake_all(woken);
    }

    /// Number of items queued (at most [`capacity`](Self::capacity), but
    /// one more for a while after a consumer was cancelled holding one).
    ///
    /// ```
    /// let q = seastar_core::sync::Queue::new(4);
    /// q.try_push(()).unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.state.borrow().items.len()
    }

    /// Whether no item is queued.
    ///
    /// ```
    /// assert!(seastar_core::sync::Queue::<u8>::new(1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.state.borrow().items.is_empty()
    }

    /// The most items the queue holds before pushes wait.
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::Queue::<u8>::new(3).capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.state.borrow().capacity
    }
}

/// A push refused by a [`Queue`], with the item given back.
///
/// ```
/// use seastar_core::sync::{PushError, Queue};
/// let q = Queue::new(1);
/// q.try_push("a").unwrap();
/// let err = q.try_push("b").unwrap_err();
/// assert_eq!(err.to_string(), "queue full");
/// assert_eq!(err.into_inner(), "b");
/// ```
pub enum PushError<T> {
    /// No room, and [`try_push`](Queue::try_push) does not wait.
    Full(T),
    /// The queue was [aborted](Queue::abort) with this cause.
    Aborted(T, Cause),
}

impl<T> PushError<T> {
    /// The item that was not pushed.
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::PushError::Full(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(item) | PushError::Aborted(item, _) => item,
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("queue full"),
            PushError::Aborted(_, cause) => write!(f, "queue aborted: {cause}"),
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Aborted(_, cause) => write!(f, "Aborted(.., {cause:?})"),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}
