//! A connection's receive side: socket reads into a buffer that grows only
//! as bytes arrive, and frames decoded from it by
//! [`FrameDecoder`](crate::decode::FrameDecoder).
//!
//! Memory follows what the peer actually sent, never what it announced: a
//! read's room is what the frame in progress still lacks, at least
//! [`IDLE_READ`](crate::decode::IDLE_READ) and at most
//! [`MAX_READ`](crate::decode::MAX_READ) ([`read_room`]), so a header
//! declaring 16 MiB followed by a trickle holds the trickle plus one read's
//! room. When every received byte has been consumed the buffer is
//! released, and the read that waits for the next frame is a pooled one
//! ([`TcpStream::read_pooled`]): it holds no buffer while it waits, and its
//! bytes are copied into a buffer of their size. An idle connection holds
//! no receive buffer at all. A read that fills its room (a burst) is
//! followed by large direct reads until one comes back short.

use std::cell::Cell;
use std::io;
use std::ops::Deref;
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;

use crate::decode::{DecodeError, Decoded, Frame, FrameDecoder, read_room};
use crate::error::RpcError;
use crate::frame::{NEGOTIATION_LEN, Negotiation};

use super::ReadError;
use super::transport::Transport;

/// The receive side of a connection, reading from the transport `S`
/// points to (the client's `Rc`; the server's connection task owns its
/// transport and lends it).
pub(crate) struct Reader<S = Rc<Transport>> {
    sock: S,
    buf: BytesMut,
    eof: bool,
    /// The last read filled its room: read large until one comes back short.
    burst: bool,
}

impl<S: Deref<Target = Transport>> Reader<S> {
    pub(crate) fn new(sock: S) -> Reader<S> {
        Reader {
            sock,
            buf: BytesMut::new(),
            eof: false,
            burst: false,
        }
    }

    /// Records a read of `n` bytes into a room of `room`; a read that
    /// brought bytes sets `last_rx`.
    fn got(&mut self, n: usize, room: usize, last_rx: &Cell<Instant>) -> usize {
        if n == 0 {
            self.eof = true;
        } else {
            last_rx.set(seastar_core::timer::lowres_now());
        }
        self.burst = n >= room;
        n
    }

    /// Reads into the buffer, which holds part of a frame (or a burst is
    /// being read); `need` is the total the buffer should reach. Returns
    /// the count, 0 at end of stream.
    ///
    /// The read's future is boxed: it is the larger one, and the wait for
    /// a next frame (an idle connection's, made in
    /// [`read_frame`](Self::read_frame) itself) should not be sized by it.
    /// It runs once per read, not per frame, and only when a frame spans
    /// reads or a burst is being read.
    async fn fill_more(&mut self, need: usize, last_rx: &Cell<Instant>) -> io::Result<usize> {
        let room = read_room(self.buf.len(), need, self.burst);
        if self.buf.capacity() - self.buf.len() < room {
            self.buf.reserve(room);
        }
        let spare = self.buf.split_off(self.buf.len());
        let (r, spare) = Box::pin(read_into(&self.sock, spare)).await;
        self.buf.unsplit(spare);
        Ok(self.got(r?, room, last_rx))
    }

    /// Reads once; `need` is the total the buffer should reach. Returns
    /// the count, 0 at end of stream.
    async fn fill(&mut self, need: usize, last_rx: &Cell<Instant>) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        if !self.buf.is_empty() || self.burst {
            return self.fill_more(need, last_rx).await;
        }
        self.buf = match &*self.sock {
            Transport::Tcp(s) => BytesMut::from(&s.read_pooled().await?[..]),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.read_fresh().await?,
        };
        let n = self.buf.len();
        Ok(self.got(n, seastar_core::io::pool::BUF_SIZE, last_rx))
    }

    /// Frees the buffer once everything in it was consumed (frames handed
    /// out keep their own part of it alive only as long as they live).
    fn release_if_drained(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Reads the negotiation frame.
    pub(crate) async fn read_negotiation(&mut self) -> Result<Negotiation, RpcError> {
        let rx = Cell::new(seastar_core::timer::lowres_now());
        while self.buf.len() < NEGOTIATION_LEN {
            if self.fill(NEGOTIATION_LEN, &rx).await? == 0 {
                return Err(RpcError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        let b = self.buf.split_to(NEGOTIATION_LEN);
        self.release_if_drained();
        Negotiation::decode(b[..].try_into().expect("16 bytes")).map_err(RpcError::Negotiation)
    }

    /// Reads the next frame; `Ok(None)` at a clean end of stream between
    /// frames. Each read that brings bytes sets `last_rx` (the shard's
    /// loop time).
    pub(crate) async fn read_frame(
        &mut self,
        decoder: &FrameDecoder,
        last_rx: &Cell<Instant>,
    ) -> Result<Option<Frame>, ReadError> {
        // Frames already buffered are parsed without waiting: yield when
        // the task quota is spent so a busy connection cannot stall the shard.
        if seastar_core::need_preempt() {
            seastar_core::yield_now().await;
        }
        loop {
            // The decode result is not held across the read's await (it
            // would take room in the future).
            let need = match decoder.decode(&mut self.buf) {
                Ok(Decoded::Frame(f)) => {
                    self.release_if_drained();
                    return Ok(Some(f));
                }
                Ok(Decoded::NeedMore(need)) => need,
                Err(DecodeError::Header(bad)) => return Err(ReadError::Header(bad)),
                Err(DecodeError::Payload(e)) => return Err(ReadError::Protocol(e)),
            };
            // The wait for a next frame is made here, not in `fill`: each
            // async layer adds its own copy of its arguments to the
            // future, and a waiting server connection's task holds this
            // one (an idle connection's cost is its task).
            let n = if self.eof {
                Ok(0)
            } else if !self.buf.is_empty() || self.burst {
                self.fill_more(need, last_rx).await
            } else {
                self.buf = match &*self.sock {
                    Transport::Tcp(s) => s.read_pooled().await.map(|b| BytesMut::from(&b[..])),
                    #[cfg(feature = "tls")]
                    Transport::Tls(t) => t.read_fresh().await,
                }
                .map_err(ReadError::Io)?;
                let n = self.buf.len();
                Ok(self.got(n, seastar_core::io::pool::BUF_SIZE, last_rx))
            }
            .map_err(ReadError::Io)?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

/// Reads into `spare`'s capacity (from its start); `Ok(0)` at end of stream.
async fn read_into(sock: &Transport, spare: BytesMut) -> (io::Result<usize>, BytesMut) {
    match sock {
        Transport::Tcp(s) => s.read(spare).await,
        #[cfg(feature = "tls")]
        Transport::Tls(t) => t.read(spare).await,
    }
}
