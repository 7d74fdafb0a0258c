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
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;

use crate::decode::{DecodeError, Decoded, Frame, FrameDecoder, read_room};
use crate::error::RpcError;
use crate::frame::{NEGOTIATION_LEN, Negotiation};

use super::ReadError;
use super::transport::Transport;

/// The receive side of a connection.
pub(crate) struct Reader {
    sock: Rc<Transport>,
    buf: BytesMut,
    eof: bool,
    /// The last read filled its room: read large until one comes back short.
    burst: bool,
}

impl Reader {
    pub(crate) fn new(sock: Rc<Transport>) -> Reader {
        Reader {
            sock,
            buf: BytesMut::new(),
            eof: false,
            burst: false,
        }
    }

    /// Reads once; `need` is the total the buffer should reach. Returns
    /// the count, 0 at end of stream; a read that brought bytes sets
    /// `last_rx`.
    ///
    /// The transport's calls are made here, not through async methods of
    /// [`Transport`]: each async layer adds its own copy of its arguments
    /// to the future, and a waiting server connection's task holds this
    /// one (an idle connection's cost is its task). The read into a
    /// partial frame's buffer is boxed: its future is the larger, and the
    /// wait for a next frame (an idle connection's) should not be sized
    /// by it; it runs once per read, not per frame, and only when a frame
    /// spans reads or a burst is being read.
    async fn fill(&mut self, need: usize, last_rx: &Cell<Instant>) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        let (n, room) = if self.buf.is_empty() && !self.burst {
            // Waiting for the next frame: hold no buffer meanwhile.
            self.buf = match &*self.sock {
                Transport::Tcp(s) => BytesMut::from(&s.read_pooled().await?[..]),
                #[cfg(feature = "tls")]
                Transport::Tls(t) => t.read_fresh().await?,
            };
            (self.buf.len(), seastar_core::io::pool::BUF_SIZE)
        } else {
            let room = read_room(self.buf.len(), need, self.burst);
            if self.buf.capacity() - self.buf.len() < room {
                self.buf.reserve(room);
            }
            let spare = self.buf.split_off(self.buf.len());
            let (r, spare) = Box::pin(read_into(&self.sock, spare)).await;
            self.buf.unsplit(spare);
            (r?, room)
        };
        if n == 0 {
            self.eof = true;
        } else {
            last_rx.set(seastar_core::timer::lowres_now());
        }
        self.burst = n >= room;
        Ok(n)
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
            if self.fill(need, last_rx).await.map_err(ReadError::Io)? == 0 {
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
