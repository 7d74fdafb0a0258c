//! [`TlsStream`]: one rustls session over a [`TcpStream`], driven by the
//! stream's own reads and writes on its shard.
//!
//! Received TLS bytes come from the socket's pooled receives (no buffer is
//! held while the connection waits): on io_uring one multishot receive
//! armed for the session's life (no submission per receive; see
//! [`PooledRecvStream`]), elsewhere one receive after another. They are
//! fed to rustls with `read_tls`
//! only once the plaintext it decrypted before has been read, so the
//! plaintext buffered per connection stays within a few records whatever
//! the peer sends. Encrypted output is collected with `write_tls` into a
//! shard buffer and sent behind (one send in flight at a time; a write
//! waits for the previous send), like the plain socket's poll-style writes.
//!
//! A TLS failure (garbage, a truncated or forged record, an unsupported
//! version, a bad certificate) queues rustls' alert, which goes out before
//! the error is reported; every later read or write fails with the same
//! error, and dropping the stream closes the connection.
//!
//! A server session that negotiated TLS 1.3, with record offload on
//! ([`TlsServerConfig::record_offload`](super::TlsServerConfig::record_offload),
//! the default), leaves rustls once its handshake is done and rustls holds
//! nothing for it (no plaintext to read, no record to send, no partial
//! record: checked when a read finds no plaintext): its records are then
//! sealed and opened by `Records` with the keys rustls negotiated, without
//! rustls' copies and allocations per record (see `records`).
//!
//! After our `close_notify` ([`TlsStream::shutdown`]) the session is
//! closed for good: rustls processes no further record (see `feed`);
//! reads return the plaintext decrypted before, then drop what the peer
//! still sends until it closes the connection, which reads as a clean end.

use std::future::poll_fn;
use std::io::{self, BufRead, Write};
use std::net::Shutdown;
use std::task::{Context, Poll, ready};

use rustls::crypto::cipher::OutboundChunks;
use rustls::pki_types::CertificateDer;
use rustls::{AlertDescription, Connection, HandshakeKind, ProtocolVersion, SupportedCipherSuite};
use seastar_core::io::pool;

use super::TlsError;
use super::records::{Boundary, Records, alert_for};
use super::recv::{Recv, feed};
use crate::{BufResult, SendBehind, TcpStream};

/// Most plaintext bytes encrypted by one poll-style write.
const WRITE_MAX: usize = 64 * 1024;

/// A TLS session over a TCP connection, from
/// [`TlsAcceptor::accept`](super::TlsAcceptor::accept) or
/// [`TlsConnector::connect`](super::TlsConnector::connect), with its
/// handshake done.
///
/// The owned-buffer-style calls ([`read`](Self::read),
/// [`write_all`](Self::write_all), [`shutdown`](Self::shutdown)) mirror
/// [`TcpStream`]'s; the poll-style ones ([`poll_read`](Self::poll_read),
/// [`poll_write`](Self::poll_write), ...) back the `hyper::rt` (feature
/// `hyper`) and `futures::io` (feature `futures-io`) traits. The calls take
/// `&mut self`: one session has one reader and one writer state.
///
/// A peer that closes without a TLS `close_notify` makes reads fail with
/// `io::ErrorKind::UnexpectedEof` (a possible truncation: the application
/// protocol decides whether it matters); a clean close reads as `Ok(0)`.
/// After [`shutdown`](Self::shutdown) nothing more is decrypted: reads
/// return what was decrypted before, then `Ok(0)` once the peer closes.
pub struct TlsStream {
    // Field order is drop order: the send and the receive in flight, the
    // session, the socket.
    sending: Option<SendBehind<Vec<u8>>>,
    recv: Recv,
    session: Session,
    tcp: TcpStream,
    /// The session may move to [`Records`] (a server whose configuration
    /// allows it), and the bytes fed to rustls so far.
    offload: bool,
    fed: Boundary,
    /// The error of a send behind, for the next write, flush or shutdown.
    werr: Option<io::Error>,
    /// The TLS failure that ended the session (its alert is queued or sent).
    fatal: Option<rustls::Error>,
    /// The socket's read side reached end of stream.
    eof: bool,
    /// Plaintext bytes rustls holds for reading (`process_new_packets`'
    /// count, less what was consumed since): a read with none skips
    /// straight to receiving.
    plain: usize,
    /// The peer's `close_notify` was processed.
    peer_closed: bool,
    /// `close_notify` was queued.
    closed: bool,
    /// A write or flush waits for the send in flight: a read must not
    /// downgrade that send's wake to a quiet one (the waiter would sleep
    /// through its completion, e.g. a writer task sharing the session with
    /// a reader task, or a flush polled before a read).
    send_waited: bool,
}

/// Who runs the session's records.
// The rustls session stays inline, as before the offload: boxing it would
// cost every connection an allocation.
#[allow(clippy::large_enum_variant)]
enum Session {
    /// rustls: the handshake, then every session that does not move.
    Rustls(Connection),
    /// [`Records`], after the handshake (a server, TLS 1.3).
    Records(Box<Records>),
    /// Only while moving to [`Records`]; left so (with `fatal` set) if
    /// rustls refused to hand the keys out.
    Moved,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (server, handshaking) = match &self.session {
            Session::Rustls(c) => (matches!(c, Connection::Server(_)), c.is_handshaking()),
            _ => (true, false),
        };
        f.debug_struct("TlsStream")
            .field("tcp", &self.tcp)
            .field("server", &server)
            .field("handshaking", &handshaking)
            .field("offloaded", &matches!(self.session, Session::Records(_)))
            .field("alpn", &self.alpn_protocol())
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// A session over `tcp`; `offload`: it may move to [`Records`] after
    /// the handshake (see the module docs).
    pub(crate) fn new(mut tcp: TcpStream, conn: Connection, offload: bool) -> TlsStream {
        let recv = Recv::new(&mut tcp);
        TlsStream {
            sending: None,
            recv,
            offload: offload && matches!(conn, Connection::Server(_)),
            session: Session::Rustls(conn),
            tcp,
            fed: Boundary::default(),
            werr: None,
            fatal: None,
            eof: false,
            plain: 0,
            peer_closed: false,
            closed: false,
            send_waited: false,
        }
    }

    /// Drives the handshake to its end: sends what rustls queued, reads
    /// what it needs. On a TLS failure the alert goes out first.
    pub(crate) fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TlsError>> {
        loop {
            if let Some(e) = &self.fatal {
                let e = e.clone();
                // A failure to send the alert changes nothing: report the cause.
                let _ = ready!(self.poll_flush_tls(cx));
                return Poll::Ready(Err(TlsError::Handshake(e)));
            }
            ready!(self.poll_flush_tls(cx))?;
            if !matches!(&self.session, Session::Rustls(c) if c.is_handshaking()) {
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Err(TlsError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ))));
            }
            match ready!(self.poll_recv_tls(cx)) {
                Ok(()) => {}
                Err(_) if self.fatal.is_some() => {} // reported at the top
                Err(e) => return Poll::Ready(Err(TlsError::Io(e))),
            }
        }
    }

    /// Polls the send in flight, if any: quietly (its completion wakes the
    /// task only if a short send must continue), or waiting for it.
    fn poll_send(&mut self, cx: &mut Context<'_>, wait: bool) -> Poll<()> {
        let Some(op) = self.sending.as_mut() else {
            return Poll::Ready(());
        };
        let wait = wait || self.send_waited;
        let polled = if wait { op.poll(cx) } else { op.poll_quiet(cx) };
        self.send_waited = wait && polled.is_pending();
        let (res, buf) = ready!(polled);
        self.sending = None;
        pool::give(buf);
        if let Err(e) = res {
            self.werr = Some(e);
        }
        Poll::Ready(())
    }

    /// Starts sending the TLS bytes rustls queued, unless a send is in flight.
    fn start_send(&mut self, cx: &mut Context<'_>) {
        let Session::Rustls(conn) = &mut self.session else {
            return; // Records hands its records to `send_records`
        };
        if self.sending.is_some() || !conn.wants_write() {
            return;
        }
        let mut buf = pool::take();
        while conn.wants_write() {
            // Writing into a Vec does not fail.
            if let Err(e) = conn.write_tls(&mut buf) {
                self.werr = Some(e);
                break;
            }
        }
        if buf.is_empty() {
            pool::give(buf);
            return;
        }
        self.sending = Some(self.tcp.send_behind(buf));
        // Sent already on epoll; on io_uring, registers a quiet wake.
        let _ = self.poll_send(cx, false);
    }

    /// Completes once every TLS byte rustls queued is sent.
    fn poll_flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send(cx, true));
            if let Some(e) = self.werr.take() {
                return Poll::Ready(Err(e));
            }
            if !matches!(&self.session, Session::Rustls(c) if c.wants_write()) {
                return Poll::Ready(Ok(()));
            }
            self.start_send(cx);
        }
    }

    /// Receives TLS bytes and processes them (at end of stream, tells
    /// rustls so and sets `eof`); sends what rustls answers (an alert, a
    /// key update, session tickets).
    fn poll_recv_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = &self.fatal {
            return Poll::Ready(Err(tls_io_error(e.clone())));
        }
        // Collects a finished send, or continues a short one.
        let _ = self.poll_send(cx, false);
        let Session::Rustls(conn) = &mut self.session else {
            return Poll::Ready(Err(io::Error::other("TLS session moved out of rustls")));
        };
        let data = ready!(self.recv.poll_fill(&mut self.tcp, cx))?;
        let fed = feed(conn, data, self.closed)?;
        if self.offload {
            self.fed.fed(&data[..fed.consumed]);
        }
        self.eof |= fed.eof;
        self.recv.consume(&mut self.tcp, fed.consumed);
        self.peer_closed |= fed.peer_closed;
        match fed.processed {
            Ok(plain) => {
                if !self.closed {
                    // (Once closed, nothing is processed: the count stands.)
                    self.plain = plain;
                }
                self.start_send(cx);
                Poll::Ready(Ok(()))
            }
            Err(e) => {
                tracing::debug!(shard = seastar_core::shard_id(), error = %e, "TLS session failed");
                self.fatal = Some(e.clone());
                // The alert rustls queued goes out.
                self.start_send(cx);
                Poll::Ready(Err(tls_io_error(e)))
            }
        }
    }

    /// The plaintext received and not yet read, receiving more if there is
    /// none; empty at a clean end of stream (the peer's `close_notify`).
    /// Follow with [`consume`](Self::consume).
    pub fn poll_fill_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if !matches!(self.session, Session::Rustls(_)) {
            return self.poll_fill_records(cx);
        }
        loop {
            if self.plain > 0 {
                break;
            }
            if !(self.peer_closed || self.eof || self.fatal.is_some()) {
                if self.offload && self.move_to_records() {
                    return self.poll_fill_records(cx);
                }
                // Nothing to read and nothing to report: receive (rustls'
                // reader would only say `WouldBlock`).
                ready!(self.poll_recv_tls(cx))?;
                continue;
            }
            let Session::Rustls(conn) = &mut self.session else {
                unreachable!("only a read moves the session, and it returns")
            };
            // The end of the session, clean or not, as rustls reports it
            // (after a failure, the plaintext decrypted before it first).
            match conn.reader().into_first_chunk() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.closed && self.eof {
                // After our close_notify nothing more is decrypted (see
                // `feed`): the peer's closing the connection is the end.
                return Poll::Ready(Ok(&[]));
            }
            ready!(self.poll_recv_tls(cx))?;
        }
        let Session::Rustls(conn) = &mut self.session else {
            unreachable!("only a read moves the session, and it returns")
        };
        Poll::Ready(conn.reader().into_first_chunk())
    }

    /// Moves the session to [`Records`] if it may and rustls holds nothing
    /// for it; whether it is there now. Called when a read finds no
    /// plaintext.
    fn move_to_records(&mut self) -> bool {
        let Session::Rustls(conn) = &self.session else {
            return false;
        };
        if conn.is_handshaking() {
            return false;
        }
        if conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
            self.offload = false;
            return false;
        }
        if conn.wants_write() || self.plain != 0 || self.closed || !self.fed.at_boundary() {
            return false;
        }
        let Session::Rustls(Connection::Server(conn)) =
            std::mem::replace(&mut self.session, Session::Moved)
        else {
            unreachable!("offload is for servers")
        };
        match Records::from_server(conn) {
            Ok(r) => {
                self.session = Session::Records(Box::new(r));
                true
            }
            Err(e) => {
                // The checks above leave rustls no reason to refuse.
                tracing::debug!(error = %e, "TLS record offload refused");
                self.fatal = Some(e);
                true
            }
        }
    }

    /// [`poll_fill_buf`](Self::poll_fill_buf) once the session moved.
    fn poll_fill_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        // Collects a finished send, or continues a short one.
        let _ = self.poll_send(cx, false);
        loop {
            if self.fatal.is_some() {
                // The alert, if one is on its way, goes out first.
                ready!(self.poll_send(cx, true));
                let e = self
                    .fatal
                    .clone()
                    .unwrap_or(rustls::Error::HandshakeNotComplete);
                return Poll::Ready(Err(tls_io_error(e)));
            }
            let Session::Records(r) = &mut self.session else {
                unreachable!("set with fatal")
            };
            if !r.plaintext().is_empty() {
                break;
            }
            if self.closed && self.eof {
                // After our close_notify the peer's closing is the end.
                return Poll::Ready(Ok(&[]));
            }
            if r.peer_closed() && !self.closed {
                return Poll::Ready(Ok(&[]));
            }
            let record = if !(self.closed || r.peer_closed()) && r.next_from_carry() {
                true
            } else {
                let data = ready!(self.recv.poll_fill(&mut self.tcp, cx))?;
                let Session::Records(r) = &mut self.session else {
                    unreachable!("set with fatal")
                };
                if data.is_empty() {
                    self.eof = true;
                    if self.closed || r.peer_closed() {
                        continue;
                    }
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed connection without sending TLS close_notify",
                    )));
                }
                if self.closed || r.peer_closed() {
                    // Nothing after our or the peer's close_notify is opened.
                    let n = data.len();
                    self.recv.consume(&mut self.tcp, n);
                    continue;
                }
                let taken = r.take(data);
                self.recv.consume(&mut self.tcp, taken.consumed);
                taken.record
            };
            if !record {
                continue;
            }
            let Session::Records(r) = &mut self.session else {
                unreachable!("set with fatal")
            };
            if let Err(e) = r.open() {
                tracing::debug!(shard = seastar_core::shard_id(), error = %e, "TLS session failed");
                let mut alert = Vec::new();
                if r.seal_alert(alert_for(&e), &mut alert).is_ok() && self.sending.is_none() {
                    self.sending = Some(self.tcp.send_behind(alert));
                }
                // Reported at the top of the loop, once the alert is sent.
                self.fatal = Some(e);
            }
        }
        let Session::Records(r) = &self.session else {
            unreachable!("checked in the loop")
        };
        Poll::Ready(Ok(r.plaintext()))
    }

    /// Seals `payload` (at most [`WRITE_MAX`] bytes) and sends it behind;
    /// the session has moved and no send is in flight.
    fn send_records(
        &mut self,
        cx: &mut Context<'_>,
        payload: OutboundChunks<'_>,
    ) -> io::Result<()> {
        let Session::Records(r) = &mut self.session else {
            return Err(io::Error::other("TLS session not offloaded"));
        };
        let mut buf = pool::take();
        if let Err(e) = r.seal(payload, &mut buf) {
            pool::give(buf);
            self.fatal = Some(e.clone());
            return Err(tls_io_error(e));
        }
        if buf.is_empty() {
            pool::give(buf);
            return Ok(()); // an empty write sends nothing
        }
        self.sending = Some(self.tcp.send_behind(buf));
        // Sent already on epoll; on io_uring, registers a quiet wake.
        let _ = self.poll_send(cx, false);
        Ok(())
    }

    /// Marks `n` bytes from [`poll_fill_buf`](Self::poll_fill_buf) as read.
    pub fn consume(&mut self, n: usize) {
        match &mut self.session {
            Session::Rustls(conn) => {
                self.plain = self.plain.saturating_sub(n);
                conn.reader().consume(n);
            }
            Session::Records(r) => r.consume(n),
            Session::Moved => {}
        }
    }

    /// Poll-style read: copies received plaintext into `dst`; `Ok(0)` is a
    /// clean end of stream.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let data = ready!(self.poll_fill_buf(cx))?;
        let n = data.len().min(dst.len());
        dst[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    /// Waits for the send in flight and for what rustls still has queued,
    /// so that a write starts on an empty pipe; reports a failed send.
    fn poll_ready_to_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = &self.fatal {
            return Poll::Ready(Err(tls_io_error(e.clone())));
        }
        if self.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        self.poll_flush_tls(cx)
    }

    /// Poll-style write: encrypts up to 64 KiB of `src`, reports them
    /// written and sends them behind; a failed send is reported by the next
    /// poll call. [`poll_flush`](Self::poll_flush) waits for the send.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_ready_to_write(cx))?;
        let src = &src[..src.len().min(WRITE_MAX)];
        let conn = match &mut self.session {
            Session::Rustls(conn) => conn,
            _ => {
                self.send_records(cx, src.into())?;
                return Poll::Ready(Ok(src.len()));
            }
        };
        let n = conn.writer().write(src)?;
        self.start_send(cx);
        Poll::Ready(Ok(n))
    }

    /// Poll-style gather write (see [`poll_write`](Self::poll_write)).
    pub fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_ready_to_write(cx))?;
        let conn = match &mut self.session {
            Session::Rustls(conn) => conn,
            _ => return self.poll_write_records(cx, bufs),
        };
        let mut writer = conn.writer();
        if bufs.len() > 1 && bufs.iter().map(|b| b.len()).sum::<usize>() <= WRITE_MAX {
            // One record for the lot (a head and its body), not one or
            // more per slice.
            let n = writer.write_vectored(bufs)?;
            self.start_send(cx);
            return Poll::Ready(Ok(n));
        }
        let mut total = 0;
        for b in bufs {
            let room = WRITE_MAX - total;
            if room == 0 {
                break;
            }
            let want = b.len().min(room);
            let n = writer.write(&b[..want])?;
            total += n;
            if n < want {
                break; // rustls' buffer limit
            }
        }
        self.start_send(cx);
        Poll::Ready(Ok(total))
    }

    /// [`poll_write_vectored`](Self::poll_write_vectored) once the session
    /// moved: up to [`WRITE_MAX`] bytes of the first 16 slices, in records
    /// that span slices (a head and its body make one record).
    fn poll_write_records(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        const SLICES: usize = 16;
        let mut slices: [&[u8]; SLICES] = [&[]; SLICES];
        let mut n = 0;
        let mut total = 0;
        for b in bufs.iter().filter(|b| !b.is_empty()).take(SLICES) {
            let want = b.len().min(WRITE_MAX - total);
            slices[n] = &b[..want];
            n += 1;
            total += want;
            if total == WRITE_MAX {
                break;
            }
        }
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        self.send_records(cx, OutboundChunks::new(&slices[..n]))?;
        Poll::Ready(Ok(total))
    }

    /// Completes when every byte accepted by the writes is sent.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_tls(cx)
    }

    /// Sends `close_notify` (once), flushes, then shuts the socket's write
    /// side down. Reads return what was decrypted before, then drop what
    /// the peer still sends and read `Ok(0)` once it closes the connection.
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closed && self.fatal.is_none() {
            match &mut self.session {
                Session::Rustls(conn) => {
                    self.closed = true;
                    conn.send_close_notify();
                }
                Session::Records(_) => {
                    // One send in flight at a time: the alert goes after it.
                    ready!(self.poll_flush_tls(cx))?;
                    self.closed = true;
                    let Session::Records(r) = &mut self.session else {
                        unreachable!("matched above")
                    };
                    let mut alert = Vec::new();
                    if let Err(e) = r.seal_alert(AlertDescription::CloseNotify, &mut alert) {
                        return Poll::Ready(Err(tls_io_error(e)));
                    }
                    self.sending = Some(self.tcp.send_behind(alert));
                }
                Session::Moved => {}
            }
        }
        ready!(self.poll_flush_tls(cx))?;
        match self.tcp.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Reads plaintext into `buf`, from its start, up to its capacity (its
    /// length becomes the count); `Ok(0)` is a clean end of stream (the
    /// peer's `close_notify`), a close without it is an `UnexpectedEof`
    /// error, a TLS failure an `InvalidData` one (a [`rustls::Error`] inside).
    pub async fn read(&mut self, mut buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
        buf.clear();
        let cap = buf.capacity();
        if cap == 0 {
            return (Ok(0), buf);
        }
        let res = poll_fn(|cx| {
            let data = ready!(self.poll_fill_buf(cx))?;
            let n = data.len().min(cap);
            buf.extend_from_slice(&data[..n]);
            self.consume(n);
            Poll::Ready(Ok(n))
        })
        .await;
        (res, buf)
    }

    /// Reads plaintext into `dst` (a borrow is fine here: the kernel never
    /// writes into it, rustls' buffer is copied); as [`read`](Self::read).
    pub async fn read_into(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, dst)).await
    }

    /// Encrypts and sends all of `buf`, and waits until it is sent.
    pub async fn write_all<B: AsRef<[u8]>>(&mut self, buf: B) -> BufResult<(), B> {
        let res = async {
            let mut rest = buf.as_ref();
            while !rest.is_empty() {
                let n = poll_fn(|cx| self.poll_write(cx, rest)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                rest = &rest[n..];
            }
            poll_fn(|cx| self.poll_flush(cx)).await
        }
        .await;
        (res, buf)
    }

    /// Waits until every byte written is sent.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Ends the session cleanly: sends `close_notify`, waits for it to be
    /// sent and shuts the socket's write side down (the peer reads a clean
    /// end of stream). Nothing received after it is decrypted: reads return
    /// the plaintext decrypted before, then drop the peer's last bytes (its
    /// own `close_notify`) and read `Ok(0)` once the peer closes the
    /// connection. (TLS 1.3's half-close, data after our `close_notify`,
    /// is not delivered: rustls 0.23 cannot process records safely then.)
    pub async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_shutdown(cx)).await
    }

    /// The ALPN protocol agreed on, if any (e.g. `b"h2"`).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.session {
            Session::Rustls(conn) => conn.alpn_protocol(),
            Session::Records(r) => r.facts.alpn.as_deref(),
            Session::Moved => None,
        }
    }

    /// On the server side, the name the client asked for (SNI), if it sent
    /// one; on the client side, `None`.
    pub fn server_name(&self) -> Option<&str> {
        match &self.session {
            Session::Rustls(Connection::Server(c)) => c.server_name(),
            Session::Records(r) => r.facts.server_name.as_deref(),
            _ => None,
        }
    }

    /// The certificate chain the peer presented (leaf first): the server's
    /// on a client, a client's on a server with mutual TLS.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match &self.session {
            Session::Rustls(conn) => conn.peer_certificates(),
            Session::Records(r) => r.facts.peer_certificates.as_deref(),
            Session::Moved => None,
        }
    }

    /// Whether the session was resumed (a ticket or session id) rather
    /// than set up by a full handshake.
    pub fn is_resumed(&self) -> bool {
        match &self.session {
            Session::Rustls(conn) => conn.handshake_kind() == Some(HandshakeKind::Resumed),
            Session::Records(r) => r.facts.resumed,
            Session::Moved => false,
        }
    }

    /// Whether the session's records run outside rustls now (record
    /// offload: a TLS 1.3 server session after its handshake, once a read
    /// found rustls holding nothing; see
    /// [`TlsServerConfig::record_offload`](super::TlsServerConfig::record_offload)).
    pub fn is_record_offloaded(&self) -> bool {
        matches!(self.session, Session::Records(_))
    }

    /// The TLS version agreed on.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        match &self.session {
            Session::Rustls(conn) => conn.protocol_version(),
            Session::Records(_) => Some(ProtocolVersion::TLSv1_3),
            Session::Moved => None,
        }
    }

    /// The cipher suite agreed on.
    pub fn negotiated_cipher_suite(&self) -> Option<SupportedCipherSuite> {
        match &self.session {
            Session::Rustls(conn) => conn.negotiated_cipher_suite(),
            Session::Records(r) => Some(r.facts.suite),
            Session::Moved => None,
        }
    }

    /// The TCP connection underneath (for its addresses and options; its
    /// bytes are the session's ciphertext: do not read or write them).
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// The rustls session, e.g. to export keying material.
    ///
    /// `None` once a server session's records run outside rustls (record
    /// offload, see the module docs): the facts above are kept, the rest
    /// of the rustls session is gone.
    pub fn session(&self) -> Option<&Connection> {
        match &self.session {
            Session::Rustls(conn) => Some(conn),
            _ => None,
        }
    }
}
