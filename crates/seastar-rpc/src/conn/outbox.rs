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

use super::transport::Transport;

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
    pub(crate) async fn run_writer(self: Rc<Self>, io: Rc<Transport>) -> std::io::Result<()> {
        match &*io {
            Transport::Tcp(sock) => self.run_writer_tcp(sock).await,
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => self.run_writer_tls(tls).await,
        }
    }

    async fn run_writer_tcp(self: Rc<Self>, sock: &TcpStream) -> std::io::Result<()> {
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

    /// The writer over TLS: each batch is handed to the session, which
    /// encrypts it and sends it behind 64 KiB at a time (each waiting for
    /// the previous send), so the batch leaves [`unsent`](Self::unsent) as
    /// the session takes it. While idle the writer watches the last send,
    /// so its buffer is freed and a failure seen. Once closed and drained,
    /// it sends `close_notify`: the peer reads a clean end.
    #[cfg(feature = "tls")]
    async fn run_writer_tls(self: Rc<Self>, tls: &super::tls::SharedTls) -> std::io::Result<()> {
        let mut spare: Vec<u8> = Vec::new();
        loop {
            let next = poll_fn(|cx| {
                let mut b = self.buf.borrow_mut();
                if !b.is_empty() {
                    spare.clear();
                    if spare.capacity() > KEEP_CAPACITY {
                        spare = Vec::new();
                    }
                    let data = std::mem::replace(&mut *b, std::mem::take(&mut spare));
                    return Poll::Ready(Ok(Some(data)));
                }
                if self.closed.get() {
                    return Poll::Ready(Ok(None));
                }
                if b.capacity() > KEEP_CAPACITY {
                    *b = Vec::new();
                }
                drop(b);
                *self.writer.borrow_mut() = Some(cx.waker().clone());
                match tls.poll_flush(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            })
            .await;
            let data = match next {
                Ok(Some(data)) => data,
                Ok(None) => {
                    return poll_fn(|cx| tls.poll_shutdown(cx)).await;
                }
                Err(e) => {
                    self.close();
                    return Err(e);
                }
            };
            self.in_flight.set(data.len());
            let mut rest = &data[..];
            let written: std::io::Result<()> = loop {
                if rest.is_empty() {
                    break Ok(());
                }
                match poll_fn(|cx| tls.poll_write(cx, rest)).await {
                    Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        rest = &rest[n..];
                        self.in_flight.set(rest.len());
                    }
                    Err(e) => break Err(e),
                }
            };
            self.in_flight.set(0);
            self.space.take().into_iter().for_each(Waker::wake);
            spare = data;
            if let Err(e) = written {
                self.close();
                return Err(e);
            }
        }
    }
}
