//! A connection's outgoing bytes: frames are appended to one buffer and a
//! writer ([`Outbox::poll_writer`], polled by the connection's task on the
//! server, a task of its own on the client) sends whatever accumulated
//! while its previous write was in flight, so concurrent calls share writes (one `send` for many frames
//! under load, one per frame when idle). Writes go behind
//! ([`SendBehind`]): a send that takes every byte wakes nobody.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

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
    writer: Cell<Option<Waker>>,
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
        if let Some(w) = self.writer.take() {
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

    /// The writer as a task of its own (the client's): see
    /// [`poll_writer`](Self::poll_writer).
    pub(crate) async fn run_writer(&self, io: &Transport) -> std::io::Result<()> {
        let mut w = Writer::default();
        poll_fn(|cx| self.poll_writer(&mut w, io, cx)).await
    }

    /// Drives the writer `w` of this outbox over `io`: sends until closed
    /// and drained (then `Ready(Ok)`; over TLS after `close_notify`), or a
    /// write fails (then the outbox closes, so senders stop waiting, and
    /// the error is returned). Not to be polled again once ready.
    ///
    /// Each batch is sent behind: the writer's task waits for new frames
    /// meanwhile, and the send's completion wakes it only when it did not
    /// take every byte (so an answer costs one wake, not two), unless
    /// someone waits for space or the batch was large (its completion
    /// frees memory); the next batch, or the end, waits for it. When
    /// nothing is left to send, buffers larger than [`KEEP_CAPACITY`] are
    /// freed. A server connection polls this from its own task (no task
    /// of its own for the writer: an idle connection is one task); the
    /// client runs it as a task ([`run_writer`](Self::run_writer)).
    pub(crate) fn poll_writer(
        &self,
        w: &mut Writer,
        io: &Transport,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let r = match io {
            Transport::Tcp(sock) => self.poll_writer_tcp(w, sock, cx),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => self.poll_writer_tls(w, tls, cx),
        };
        if let Poll::Ready(Err(_)) = &r {
            self.close();
        }
        r
    }

    /// Registers the writer's waker (a push or a close wakes it).
    fn park_writer(&self, cx: &Context<'_>) {
        let w = match self.writer.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.writer.set(Some(w));
    }

    /// Takes the buffered frames for sending, leaving the spare buffer
    /// in their place; `None` if nothing is buffered.
    fn take_batch(&self, spare: &mut Vec<u8>) -> Option<Vec<u8>> {
        let mut b = self.buf.borrow_mut();
        if b.is_empty() {
            return None;
        }
        spare.clear();
        if spare.capacity() > KEEP_CAPACITY {
            *spare = Vec::new();
        }
        let data = std::mem::replace(&mut *b, std::mem::take(spare));
        self.in_flight.set(data.len());
        Some(data)
    }

    /// Nothing in flight or buffered: hold no large buffer.
    fn shrink_idle(&self, spare: &mut Vec<u8>) {
        if spare.capacity() > KEEP_CAPACITY {
            *spare = Vec::new();
        }
        let mut b = self.buf.borrow_mut();
        if b.capacity() > KEEP_CAPACITY {
            *b = Vec::new();
        }
    }

    fn poll_writer_tcp(
        &self,
        w: &mut Writer,
        sock: &TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if let Sending::Tcp(s) = &mut w.sending {
                let needed = !self.buf.borrow().is_empty()
                    || self.closed.get()
                    || !self.space.borrow().is_empty()
                    || self.in_flight.get() > QUIET_MAX;
                let polled = if needed { s.poll(cx) } else { s.poll_quiet(cx) };
                match polled {
                    Poll::Ready((Ok(_), data)) => {
                        w.sending = Sending::None;
                        self.in_flight.set(0);
                        w.spare = data;
                        self.space.take().into_iter().for_each(Waker::wake);
                    }
                    Poll::Ready((Err(e), _)) => {
                        w.sending = Sending::None;
                        self.in_flight.set(0);
                        return Poll::Ready(Err(e));
                    }
                    // Woken by its completion.
                    Poll::Pending if needed => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            if let Some(data) = self.take_batch(&mut w.spare) {
                w.sending = Sending::Tcp(sock.send_behind(data));
                continue;
            }
            if self.closed.get() {
                return Poll::Ready(Ok(()));
            }
            if let Sending::None = w.sending {
                self.shrink_idle(&mut w.spare);
            }
            self.park_writer(cx);
            return Poll::Pending;
        }
    }

    /// The writer over TLS: each batch is handed to the session, which
    /// encrypts it and sends it behind 64 KiB at a time (each waiting for
    /// the previous send), so the batch leaves [`unsent`](Self::unsent) as
    /// the session takes it. While idle the writer watches the last send,
    /// so its buffer is freed and a failure seen. Once closed and drained,
    /// it sends `close_notify`: the peer reads a clean end.
    #[cfg(feature = "tls")]
    fn poll_writer_tls(
        &self,
        w: &mut Writer,
        tls: &super::tls::SharedTls,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if let Sending::Tls(data, pos) = &mut w.sending {
                while *pos < data.len() {
                    match tls.poll_write(cx, &data[*pos..]) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(0)) => {
                            self.in_flight.set(0);
                            return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                        }
                        Poll::Ready(Ok(n)) => {
                            *pos += n;
                            self.in_flight.set(data.len() - *pos);
                        }
                        Poll::Ready(Err(e)) => {
                            self.in_flight.set(0);
                            return Poll::Ready(Err(e));
                        }
                    }
                }
                self.in_flight.set(0);
                self.space.take().into_iter().for_each(Waker::wake);
                if let Sending::Tls(data, _) = std::mem::take(&mut w.sending) {
                    w.spare = data;
                }
            }
            if let Some(data) = self.take_batch(&mut w.spare) {
                w.sending = Sending::Tls(data, 0);
                continue;
            }
            if self.closed.get() {
                return tls.poll_shutdown(cx);
            }
            self.shrink_idle(&mut w.spare);
            self.park_writer(cx);
            return match tls.poll_flush(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            };
        }
    }
}

/// A writer's own state, owned by the task that polls it
/// ([`Outbox::poll_writer`]).
#[derive(Default)]
pub(crate) struct Writer {
    /// The buffer of the last batch sent, reused for the next one.
    spare: Vec<u8>,
    /// The batch being sent.
    sending: Sending,
}

/// The batch a writer is sending.
#[derive(Default)]
enum Sending {
    #[default]
    None,
    /// Sent behind on plain TCP.
    Tcp(SendBehind<Vec<u8>>),
    /// Being handed to the TLS session: the batch and how much of it was.
    #[cfg(feature = "tls")]
    Tls(Vec<u8>, usize),
}
