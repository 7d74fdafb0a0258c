//! A connection's outgoing bytes: frames are appended to one buffer and a
//! writer task sends whatever accumulated while its previous write was in
//! flight, so concurrent calls share writes (one `send` for many frames
//! under load, one per frame when idle). Writes go behind
//! ([`SendBehind`]): a send that takes every byte wakes nobody.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use seastar_net::{SendBehind, TcpStream};

use crate::frame::Header;

/// Above this many unsent bytes, [`Outbox::ready`] makes stream senders wait.
pub(crate) const HIGH_WATER: usize = 1 << 20;

/// A drained outbox keeps write buffers up to this capacity; larger ones
/// are freed, so a connection that once sent a large reply does not pin
/// it while idle.
const KEEP_CAPACITY: usize = 1024;

/// A send of at most this many bytes completes without waking the writer
/// (see [`Outbox::run_writer`]); a larger one wakes it so that its buffer
/// is freed as soon as the kernel took it.
const QUIET_MAX: usize = 1024;

#[derive(Default)]
pub(crate) struct Outbox {
    buf: RefCell<Vec<u8>>,
    /// Bytes handed to the send in progress and not yet confirmed sent.
    in_flight: Cell<usize>,
    writer: RefCell<Option<Waker>>,
    space: RefCell<Vec<Waker>>,
    closed: Cell<bool>,
}

impl Outbox {
    /// Appends one frame (header, then payload) and wakes the writer.
    /// After [`close`](Self::close) the frame is dropped.
    pub(crate) fn push(&self, header: &Header, payload: &[u8]) {
        if self.closed.get() {
            return;
        }
        let mut b = self.buf.borrow_mut();
        header.encode(&mut b);
        b.extend_from_slice(payload);
        drop(b);
        self.wake_writer();
    }

    fn wake_writer(&self) {
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    /// Bytes accepted and not yet taken by the kernel: buffered plus the
    /// send in progress.
    pub(crate) fn unsent(&self) -> usize {
        self.buf.borrow().len() + self.in_flight.get()
    }

    /// Waits until the unsent bytes are under [`HIGH_WATER`]; false once closed.
    pub(crate) async fn ready(&self) -> bool {
        self.within(HIGH_WATER - 1).await
    }

    /// Waits until at most `budget` bytes are unsent; false once closed.
    pub(crate) async fn within(&self, budget: usize) -> bool {
        poll_fn(|cx| {
            if self.closed.get() {
                Poll::Ready(false)
            } else if self.unsent() <= budget {
                Poll::Ready(true)
            } else {
                self.space.borrow_mut().push(cx.waker().clone());
                // The writer may be polling its send quietly: make it
                // watch the completion, which frees the space.
                self.wake_writer();
                Poll::Pending
            }
        })
        .await
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// No more frames: the writer sends what is buffered, then ends.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.wake_writer();
        self.space.take().into_iter().for_each(Waker::wake);
    }

    /// The writer task: sends until closed and drained, or a write fails
    /// (then the outbox closes, so senders stop waiting). Each batch is
    /// sent behind: the task waits for new frames meanwhile, and the send's
    /// completion wakes it only when it did not take every byte (so an
    /// answer costs one wake of the writer, not two), unless someone waits
    /// for space or the batch was large (its completion frees memory); the
    /// next batch, or the end, waits for it. When nothing is left to send,
    /// buffers larger than [`KEEP_CAPACITY`] are freed.
    pub(crate) async fn run_writer(self: Rc<Self>, sock: Rc<TcpStream>) -> std::io::Result<()> {
        let mut spare: Vec<u8> = Vec::new();
        let mut sending: Option<SendBehind<Vec<u8>>> = None;
        loop {
            let next = poll_fn(|cx| {
                let needed = !self.buf.borrow().is_empty()
                    || self.closed.get()
                    || !self.space.borrow().is_empty()
                    || self.in_flight.get() > QUIET_MAX;
                if let Some(s) = sending.as_mut() {
                    let polled = if needed { s.poll(cx) } else { s.poll_quiet(cx) };
                    match polled {
                        Poll::Ready((Ok(_), data)) => {
                            sending = None;
                            self.in_flight.set(0);
                            spare = data;
                            self.space.take().into_iter().for_each(Waker::wake);
                        }
                        Poll::Ready((Err(e), _)) => {
                            sending = None;
                            self.in_flight.set(0);
                            return Poll::Ready(Err(e));
                        }
                        // Woken by its completion.
                        Poll::Pending if needed => return Poll::Pending,
                        Poll::Pending => {}
                    }
                }
                let mut b = self.buf.borrow_mut();
                if !b.is_empty() {
                    spare.clear();
                    if spare.capacity() > KEEP_CAPACITY {
                        spare = Vec::new();
                    }
                    return Poll::Ready(Ok(Some(std::mem::replace(
                        &mut *b,
                        std::mem::take(&mut spare),
                    ))));
                }
                if self.closed.get() {
                    return Poll::Ready(Ok(None));
                }
                if sending.is_none() {
                    // Idle: hold no large buffer.
                    if spare.capacity() > KEEP_CAPACITY {
                        spare = Vec::new();
                    }
                    if b.capacity() > KEEP_CAPACITY {
                        *b = Vec::new();
                    }
                }
                *self.writer.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            match next {
                Ok(Some(data)) => {
                    self.in_flight.set(data.len());
                    sending = Some(sock.send_behind(data));
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.close();
                    return Err(e);
                }
            }
        }
    }
}
