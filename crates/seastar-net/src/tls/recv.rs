//! The receive side of a [`TlsStream`](super::TlsStream): received TLS
//! bytes from the socket's pooled receives (`Recv`), and `feed`, which
//! hands one receive to rustls and processes the records it completes
//! (free of I/O, so the fuzz targets drive it as the stream does).

use std::io;
use std::task::{Context, Poll, ready};

use rustls::Connection;
use seastar_core::io::{PooledBuf, PooledRecvStream};

use crate::TcpStream;

/// The stream's receive side: pooled receives, straight from the socket
/// (the plain socket's poll-style state is not used, except to drain what
/// it held when the session started).
#[derive(Debug, Default)]
pub(super) struct Recv {
    /// Received TLS bytes not yet fed are `buf[pos..]`.
    buf: Option<PooledBuf>,
    pos: usize,
    /// The socket's receives, from the first one on: one multishot
    /// receive on io_uring (callgrind, httpd HTTPS keep-alive: 15514 ->
    /// 15045 Ir/request against a single-shot receive per request).
    recvs: Option<PooledRecvStream>,
    /// The socket's poll-style state still holds received bytes or a
    /// receive: they come first, through it.
    via_poll: bool,
}

impl Recv {
    /// The receive side of a session over `tcp`: it first drains what the
    /// socket's poll-style state holds, if anything.
    pub(super) fn new(tcp: &mut TcpStream) -> Recv {
        Recv {
            via_poll: tcp.poll_parts().0.has_read_state(),
            ..Recv::default()
        }
    }

    /// The received TLS bytes not yet fed, receiving if there are none;
    /// empty at end of stream. Follow with [`consume`](Self::consume).
    pub(super) fn poll_fill<'a>(
        &'a mut self,
        tcp: &'a mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&'a [u8]>> {
        if self.via_poll {
            let (pio, fd) = tcp.poll_parts();
            return pio.poll_fill(fd, cx);
        }
        if self.buf.is_none() {
            let fd = tcp.fd();
            let recvs = self.recvs.get_or_insert_with(|| PooledRecvStream::new(fd));
            let buf = ready!(recvs.poll_next(cx))?;
            tcp.sock.meter().received(buf.len());
            self.pos = 0;
            self.buf = Some(buf);
        }
        let b = self.buf.as_deref().unwrap_or_default();
        Poll::Ready(Ok(&b[self.pos..]))
    }

    /// Marks `n` bytes from [`poll_fill`](Self::poll_fill) as fed.
    pub(super) fn consume(&mut self, tcp: &mut TcpStream, n: usize) {
        if self.via_poll {
            let pio = tcp.poll_parts().0;
            pio.consume(n);
            self.via_poll = pio.has_read_state();
            return;
        }
        let len = self.buf.as_ref().map_or(0, |b| b.len());
        self.pos = (self.pos + n).min(len);
        if self.pos == len {
            // All fed: the buffer goes back to the shard now.
            self.buf = None;
        }
    }
}

/// What [`feed`] did with one receive's TLS bytes.
#[derive(Debug)]
pub(crate) struct Fed {
    /// Bytes rustls took (the rest stays in the receive buffer).
    pub(crate) consumed: usize,
    /// The stream ended: the receive was empty, or rustls takes nothing
    /// more (after the peer's `close_notify`).
    pub(crate) eof: bool,
    /// `process_new_packets`' verdict: the plaintext bytes now waiting to
    /// be read, or the error that ends the session.
    pub(crate) processed: Result<usize, rustls::Error>,
    /// The peer's `close_notify` has been processed (now or before).
    pub(crate) peer_closed: bool,
}

/// Feeds one receive (`data`, empty at end of stream) to rustls and
/// processes the records it completes: the receive path of [`TlsStream`](super::TlsStream),
/// free of I/O so it can be fuzzed (`fuzzing`). The caller feeds only once
/// the plaintext decrypted before has been read, which bounds the plaintext
/// buffered per connection to what one receive decrypts. An `Err` is
/// rustls refusing the bytes outright (its buffers are full).
///
/// Once our `close_notify` is queued (`closed`), nothing reaches rustls
/// any more: the bytes are taken and dropped (the peer's last records and
/// its own `close_notify`). rustls 0.23 may not process a record after its
/// `close_notify`: a bad one would queue a fatal alert, which its
/// `debug_assert!(!self.sent_fatal_alert)` turns into a panic in debug
/// builds (rustls issue 959; both TLS fuzz targets found it at once).
pub(crate) fn feed(conn: &mut Connection, data: &[u8], closed: bool) -> io::Result<Fed> {
    if closed {
        return Ok(Fed {
            consumed: data.len(),
            eof: data.is_empty(),
            processed: Ok(0),
            peer_closed: false,
        });
    }
    let mut eof = false;
    let consumed = if data.is_empty() {
        eof = true;
        conn.read_tls(&mut &[][..])?
    } else {
        let mut rd = data;
        let n = conn.read_tls(&mut rd)?;
        if n == 0 {
            // rustls takes nothing after the peer's close_notify: what
            // follows is ignored, and rustls is told the stream ended so
            // that no read waits for more (no loop on the same bytes).
            eof = true;
            conn.read_tls(&mut &[][..])?;
        }
        n
    };
    let mut peer_closed = false;
    let processed = conn.process_new_packets().map(|state| {
        peer_closed = state.peer_has_closed();
        state.plaintext_bytes_to_read()
    });
    Ok(Fed {
        consumed,
        eof,
        processed,
        peer_closed,
    })
}
