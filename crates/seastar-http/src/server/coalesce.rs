//! Coalesced HTTP/1 writes: every byte hyper writes during one poll of a
//! connection task leaves in one send, and nothing hyper wrote is lost
//! when the connection ends.
//!
//! hyper's own `pipeline_flush` skips a flush while its read buffer holds
//! unread bytes, and also skips it on the way to shutting the connection
//! down: with a pipelined request behind a `Connection: close` response, or
//! bytes after a malformed request, the already-written responses (the 400
//! itself) are dropped with the connection (hyper 1.12, `Buffered::poll_flush`).
//! So hyper runs with flushing per response, and this wrapper makes the
//! flush cheap instead: [`Coalesce`] keeps written bytes in its buffer and
//! reports them flushed; the connection driver calls [`Pending::push`]
//! after each poll of the connection, which hands the buffer to the socket
//! (one send for all the responses to one read, however many), and
//! [`Pending::finish`] once the connection future is done, which sends what
//! is left before the socket closes. A buffer past the output budget
//! ([`Server::max_output_buffer`](crate::Server::max_output_buffer), 256 KiB
//! by default) is pushed from `poll_write` itself, waiting for the socket:
//! hyper then neither writes nor reads further requests, so a pipelining
//! client that never reads holds at most the budget (plus hyper's own
//! buffers and one send in flight) however many requests it sent. A large
//! write (4 KiB or more) that finds the buffer empty goes straight to the
//! socket, so large bodies are copied once less; a busy socket then holds
//! hyper back the same way.
//!
//! Between bursts of requests the connection is parked without hyper (see
//! `http1`), and without this wrapper: a burst starts with a new one,
//! given the bytes read before it (a partial request head the last burst
//! gave back, the byte that woke the connection) to hand to hyper before
//! reading the socket, and [`Coalesce::into_inner`] gives the socket back
//! when the burst parks. The wrapper also tells the driver whether
//! hyper's last read and write found the socket busy, which is how the
//! driver knows that hyper holds nothing.

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use hyper::rt::{Read, ReadBufCursor, Write};
use seastar_net::{TcpStream, UnixStream};

use super::watch::ConnWatch;

/// A write at least this large, with nothing buffered before it, goes to
/// the socket at once instead of through the buffer: one copy fewer for
/// large bodies, and such a write is worth a send of its own.
const DIRECT: usize = 4 * 1024;

/// Most capacity the buffer keeps from one push to the next: a busy
/// connection then allocates no buffer per answer (a `malloc` and a
/// `free` per request, about 150 instructions, callgrind), and one that
/// sent a large burst does not hold its buffer.
const KEEP_MAX: usize = 64 * 1024;

struct State<I> {
    io: I,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed to `io`.
    sent: usize,
    /// Whether flushes wait for the driver (else they send at once).
    coalesce: bool,
    /// Past this many buffered bytes, `poll_write` sends before accepting more.
    high_water: usize,
    /// Counts what hyper writes and when bytes move.
    watch: Rc<ConnWatch>,
    /// Bytes read from the socket before the current hyper connection
    /// existed, handed to it first.
    prefix: Vec<u8>,
    /// The last read found nothing to read (and nothing read since).
    read_blocked: bool,
    /// A read in this poll of the connection found nothing: the socket
    /// holds the task's waker, and anything that arrives now wakes the
    /// task for another poll, so later reads in this poll answer
    /// `Pending` without asking the socket (hyper reads twice per request
    /// when idle: callgrind, HTTPS keep-alive, about 300 instructions per
    /// request for the second). Cleared by [`Pending::push`], which the
    /// driver calls after every poll of the connection.
    read_waiting: bool,
    /// The last write was refused for a busy socket (hyper still holds
    /// bytes of its own).
    write_blocked: bool,
}

impl<I: Write + Unpin + 'static> State<I> {
    /// Hands buffered bytes to `io` until it is empty or `io` is busy.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.sent == 0 && !self.buf.is_empty() {
            // A plain socket takes the buffer itself and gives back one
            // it sent before (see `seastar_net`'s `poll_write_owned`): no
            // copy and no allocation per push. `I` is known when this is
            // compiled, so the type test costs nothing.
            let io: &mut dyn Any = &mut self.io;
            if let Some(s) = io.downcast_mut::<TcpStream>() {
                return s.poll_write_owned(cx, &mut self.buf);
            }
            if let Some(s) = io.downcast_mut::<UnixStream>() {
                return s.poll_write_owned(cx, &mut self.buf);
            }
        }
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

/// The I/O hyper sees; see the [module docs](self).
pub(crate) struct Coalesce<I> {
    state: Rc<RefCell<State<I>>>,
}

/// The driver's handle on the same buffer.
pub(crate) struct Pending<I> {
    state: Rc<RefCell<State<I>>>,
}

/// Wraps `io` for one burst; `prefix` holds bytes read before it, handed
/// to hyper first.
pub(crate) fn wrap<I>(
    io: I,
    coalesce: bool,
    high_water: usize,
    watch: Rc<ConnWatch>,
    prefix: Vec<u8>,
) -> (Coalesce<I>, Pending<I>) {
    let state = Rc::new(RefCell::new(State {
        io,
        buf: Vec::new(),
        sent: 0,
        coalesce,
        high_water,
        watch,
        prefix,
        read_blocked: false,
        read_waiting: false,
        write_blocked: false,
    }));
    (
        Coalesce {
            state: state.clone(),
        },
        Pending { state },
    )
}

impl<I: Write + Unpin + 'static> Pending<I> {
    /// Starts sending what hyper wrote; a busy socket wakes the task later.
    /// The buffer stays for the next answer of the burst (an idle
    /// connection is parked, which drops it with the burst), unless it
    /// grew past [`KEEP_MAX`] and no handler runs.
    pub(crate) fn push(&self, cx: &mut Context<'_>) -> io::Result<()> {
        let mut st = self.state.borrow_mut();
        // The poll of the connection is over: the next one reads afresh.
        st.read_waiting = false;
        match st.poll_push(cx) {
            Poll::Ready(r) => {
                if st.buf.capacity() > KEEP_MAX && !st.watch.handlers_running() {
                    st.buf = Vec::new();
                }
                r
            }
            Poll::Pending => Ok(()),
        }
    }

    /// Hands buffered bytes to the socket until none is left.
    pub(crate) fn poll_push(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.state.borrow_mut().poll_push(cx)
    }

    /// Whether the connection is at rest on our side: every byte hyper
    /// wrote was taken and handed to the socket, and hyper's last read
    /// found the socket empty.
    pub(crate) fn at_rest(&self) -> bool {
        let st = self.state.borrow();
        st.read_blocked && !st.write_blocked && st.buf.is_empty()
    }

    /// Appends bytes the server writes itself (a reply hyper could not give).
    pub(crate) fn append(&self, bytes: &[u8]) {
        self.state.borrow_mut().buf.extend_from_slice(bytes);
    }

    /// Sends everything left and waits for the socket to take it.
    pub(crate) async fn finish(self) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            ready!(st.poll_push(cx))?;
            Pin::new(&mut st.io).poll_flush(cx)
        })
        .await
    }

    /// Sends everything left, then shuts the socket's sending side down
    /// (what hyper does at the end of a connection that ended well).
    pub(crate) async fn shutdown(self) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            ready!(st.poll_push(cx))?;
            ready!(Pin::new(&mut st.io).poll_flush(cx))?;
            Pin::new(&mut st.io).poll_shutdown(cx)
        })
        .await
    }
}

impl<I: Read + Unpin> Read for Coalesce<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut st = self.state.borrow_mut();
        if !st.prefix.is_empty() {
            let n = st.prefix.len().min(buf.remaining());
            buf.put_slice(&st.prefix[..n]);
            st.prefix.drain(..n);
            if st.prefix.is_empty() {
                st.prefix = Vec::new();
            }
            st.read_blocked = false;
            return Poll::Ready(Ok(()));
        }
        if st.read_waiting {
            return Poll::Pending;
        }
        let Poll::Ready(r) = Pin::new(&mut st.io).poll_read(cx, buf) else {
            st.read_blocked = true;
            st.read_waiting = true;
            return Poll::Pending;
        };
        st.read_blocked = false;
        // Bytes or end of stream: either way the client did something.
        st.watch.touch();
        Poll::Ready(r)
    }
}

impl<I> Coalesce<I> {
    /// The socket and the bytes read from it that hyper has not taken,
    /// once the driver's [`Pending`] is dropped (`None` while it lives).
    /// Bytes written and not yet handed to the socket are dropped: the
    /// driver takes a burst apart only once [`Pending::poll_push`] is done.
    pub(crate) fn into_inner(self) -> Option<(I, Vec<u8>)> {
        let st = Rc::into_inner(self.state)?.into_inner();
        debug_assert!(st.buf.is_empty(), "a burst parked with bytes unsent");
        Some((st.io, st.prefix))
    }
}

impl<I: Write + Unpin + 'static> Write for Coalesce<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.state.borrow_mut();
        if st.buf.is_empty() && src.len() >= DIRECT {
            // Nothing to keep in order with: skip our copy (the socket
            // makes its own); a busy socket holds hyper back instead.
            let r = Pin::new(&mut st.io).poll_write(cx, src);
            st.write_blocked = r.is_pending();
            let n = ready!(r)?;
            st.watch.wrote(n);
            return Poll::Ready(Ok(n));
        }
        if st.buf.len() >= st.high_water {
            let r = st.poll_push(cx);
            st.write_blocked = r.is_pending();
            ready!(r)?;
        }
        st.write_blocked = false;
        st.buf.extend_from_slice(src);
        st.watch.wrote(src.len());
        Poll::Ready(Ok(src.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.state.borrow_mut();
        if st.buf.len() >= st.high_water {
            let r = st.poll_push(cx);
            st.write_blocked = r.is_pending();
            ready!(r)?;
        }
        st.write_blocked = false;
        let mut n = 0;
        for b in bufs {
            st.buf.extend_from_slice(b);
            n += b.len();
        }
        st.watch.wrote(n);
        Poll::Ready(Ok(n))
    }

    /// No: hyper then writes each response as one flat buffer (its head
    /// and a small body copied together), which costs far less per
    /// response than its queue of slices (measured with callgrind: about
    /// 600 instructions per pipelined hello request); large bodies lose
    /// nothing, as they skip our copy (see [`DIRECT`]).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.state.borrow_mut();
        if st.coalesce {
            // Sent by the driver after this poll of the connection.
            return Poll::Ready(Ok(()));
        }
        ready!(st.poll_push(cx))?;
        Pin::new(&mut st.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.state.borrow_mut();
        ready!(st.poll_push(cx))?;
        ready!(Pin::new(&mut st.io).poll_flush(cx))?;
        Pin::new(&mut st.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket whose peer never reads: every write waits.
    struct Stuck;

    impl Read for Stuck {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl Write for Stuck {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _src: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A socket with nothing to read that counts the reads asked of it.
    struct Empty(Rc<std::cell::Cell<u32>>);

    impl Read for Empty {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            self.0.set(self.0.get() + 1);
            Poll::Pending
        }
    }

    impl Write for Empty {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            src: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(src.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn read_once<I: Read + Unpin>(io: &mut Coalesce<I>, cx: &mut Context<'_>) -> Poll<usize> {
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); 64];
        let mut rb = hyper::rt::ReadBuf::uninit(&mut space);
        match Pin::new(io).poll_read(cx, rb.unfilled()) {
            Poll::Ready(r) => {
                r.unwrap();
                Poll::Ready(rb.filled().len())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    #[test]
    fn a_read_that_waits_asks_the_socket_once_per_poll_of_the_connection() {
        seastar_core::block_on(async {
            let asked = Rc::new(std::cell::Cell::new(0));
            let (mut io, pending) = wrap(
                Empty(asked.clone()),
                true,
                16 * 1024,
                Rc::new(ConnWatch::new()),
                b"GET".to_vec(),
            );
            let mut cx = Context::from_waker(std::task::Waker::noop());
            // The bytes read before the burst come first, without the socket.
            assert_eq!(read_once(&mut io, &mut cx), Poll::Ready(3));
            assert_eq!(asked.get(), 0);
            assert!(read_once(&mut io, &mut cx).is_pending());
            assert!(read_once(&mut io, &mut cx).is_pending());
            assert_eq!(
                asked.get(),
                1,
                "the second read in one poll waits without asking"
            );
            // The driver's push ends the poll: the next read asks again.
            pending.push(&mut cx).unwrap();
            assert!(read_once(&mut io, &mut cx).is_pending());
            assert_eq!(asked.get(), 2);
            assert!(
                pending.at_rest(),
                "nothing written, and the read found nothing"
            );
        });
    }

    #[test]
    fn a_peer_that_never_reads_holds_at_most_the_budget() {
        seastar_core::block_on(async {
            let watch = Rc::new(ConnWatch::new());
            let (mut io, pending) = wrap(Stuck, true, 16 * 1024, watch.clone(), Vec::new());
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let chunk = [b'x'; 1000];
            let mut accepted = 0;
            for _ in 0..1000 {
                match Pin::new(&mut io).poll_write(&mut cx, &chunk) {
                    Poll::Ready(Ok(n)) => accepted += n,
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => panic!("{e}"),
                }
                // The driver pushes after every poll; the socket takes nothing.
                pending.push(&mut cx).unwrap();
            }
            assert!(accepted >= 16 * 1024, "took only {accepted}");
            assert!(
                accepted < 16 * 1024 + 1000,
                "took {accepted}: past the budget"
            );
            assert!(Pin::new(&mut io).poll_write(&mut cx, &chunk).is_pending());
            assert_eq!(watch.written(), accepted as u64, "every byte counted");
        });
    }
}
