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
    /// When bytes last arrived (shared with the idle watch).
    last_rx: Rc<Cell<Instant>>,
}

impl Reader {
    pub(crate) fn new(sock: Rc<Transport>) -> Reader {
        Reader {
            sock,
            buf: BytesMut::new(),
            eof: false,
            burst: false,
            last_rx: Rc::new(Cell::new(seastar_core::timer::now())),
        }
    }

    /// When bytes last arrived.
    pub(crate) fn last_rx(&self) -> Rc<Cell<Instant>> {
        self.last_rx.clone()
    }

    /// Reads once; `need` is the total the buffer should reach. Returns
    /// the count, 0 at end of stream.
    async fn fill(&mut self, need: usize) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        if self.buf.is_empty() && !self.burst {
            // Waiting for the next frame: hold no buffer meanwhile.
            let got = self.sock.read_fresh().await?;
            let n = got.len();
            if n == 0 {
                self.eof = true;
            } else {
                self.last_rx.set(seastar_core::timer::now());
                self.buf = got;
            }
            self.burst = n >= seastar_core::io::pool::BUF_SIZE;
            return Ok(n);
        }
        let room = read_room(self.buf.len(), need, self.burst);
        if self.buf.capacity() - self.buf.len() < room {
            self.buf.reserve(room);
        }
        let spare = self.buf.split_off(self.buf.len());
        let (r, spare) = self.sock.read(spare).await;
        self.buf.unsplit(spare);
        let n = r?;
        if n == 0 {
            self.eof = true;
        } else {
            self.last_rx.set(seastar_core::timer::now());
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
        while self.buf.len() < NEGOTIATION_LEN {
            if self.fill(NEGOTIATION_LEN).await? == 0 {
                return Err(RpcError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        let b = self.buf.split_to(NEGOTIATION_LEN);
        self.release_if_drained();
        Negotiation::decode(b[..].try_into().expect("16 bytes")).map_err(RpcError::Negotiation)
    }

    /// Reads the next frame; `Ok(None)` at a clean end of stream between
    /// frames.
    pub(crate) async fn read_frame(
        &mut self,
        decoder: &FrameDecoder,
    ) -> Result<Option<Frame>, ReadError> {
        // Frames already buffered are parsed without waiting: yield when
        // the task quota is spent so a busy connection cannot stall the shard.
        if seastar_core::need_preempt() {
            seastar_core::yield_now().await;
        }
        loop {
            match decoder.decode(&mut self.buf) {
                Ok(Decoded::Frame(f)) => {
                    self.release_if_drained();
                    return Ok(Some(f));
                }
                Ok(Decoded::NeedMore(need)) => {
                    if self.fill(need).await.map_err(ReadError::Io)? == 0 {
                        if self.buf.is_empty() {
                            return Ok(None);
                        }
                        return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                Err(DecodeError::Header(bad)) => return Err(ReadError::Header(bad)),
                Err(DecodeError::Payload(e)) => return Err(ReadError::Protocol(e)),
            }
        }
    }
}
