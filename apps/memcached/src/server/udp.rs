//! The UDP side (`-U`): memcached's frame header, and each shard's loop.
//!
//! # Frames
//!
//! Every datagram, both ways, starts with an 8-byte header of four
//! big-endian `u16`s: request id, sequence number, datagram count, and a
//! reserved zero. A request must fit in one datagram (count 1; memcached
//! drops any other request silently, and so do we); the text after the
//! header is processed like one TCP read. The replies are split into
//! datagrams of at most [`MAX_DATAGRAM`] bytes, header included (so at most
//! [`MAX_PAYLOAD`] reply bytes each), numbered `0..count`, each carrying
//! the request's id and the total count. That is memcached's
//! `UDP_MAX_PAYLOAD_SIZE` of 1400, which its `add_iov` counts with the
//! header; clients read replies into 1400-byte buffers. A request without
//! any reply (`noreply`) gets no datagram.
//!
//! # Reply cap
//!
//! A datagram may name many keys, and the reply is built before it is
//! sent: it is capped *while* it is built. Execution stops once the reply
//! reaches the cap (`--udp-reply-max`, default [`MAX_REPLY`]; the value
//! that crossed it included: at most the cap plus one item); it then ends
//! with
//! `SERVER_ERROR out of memory writing get response` (memcached's line
//! when a reply cannot be built) instead of the rest, and the datagram's
//! remaining keys and requests are not executed.
//!
//! ```
//! use memcached::server::udp::{FrameHeader, frames};
//! let reply = vec![b'x'; 3000];
//! let datagrams = frames(7, &reply);
//! assert_eq!(datagrams.len(), 3);
//! let h = FrameHeader::parse(&datagrams[2]).unwrap();
//! assert_eq!((h.request_id, h.sequence, h.count), (7, 2, 3));
//! assert_eq!(datagrams[0].len(), 1400);
//! assert_eq!(datagrams[2].len() - 8, 3000 - 2 * 1392);
//! ```
//!
//! # Sockets
//!
//! Each shard binds its own socket on the `-U` port with `SO_REUSEPORT`
//! (seastar-net's `UdpSocket::bind` does not set it, so the socket is made
//! here with `socket2` and handed over with `UdpSocket::from_std`); the
//! kernel spreads datagrams over the shards by source address, and keys
//! are routed to their owners exactly as for TCP.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::protocol::Out;
use bytes::{BufMut, Bytes, BytesMut};
use futures::future::{Either, select};
use seastar_core::shard_id;
use seastar_core::smp::Sharded;
use seastar_net::{BufResult, UdpSocket};

use super::routing::Session;
use super::shard::{Settings, ShardState};
use super::{Config, ServeError};

/// Bytes of the frame header.
pub const HEADER_LEN: usize = 8;

/// Largest reply datagram, header included (memcached's
/// `UDP_MAX_PAYLOAD_SIZE`).
pub const MAX_DATAGRAM: usize = 1400;

/// Most reply bytes per datagram, after the header.
pub const MAX_PAYLOAD: usize = MAX_DATAGRAM - HEADER_LEN;

/// Default reply bytes after which a datagram's execution stops (see the
/// module doc): 1 MiB, about 750 datagrams.
pub const MAX_REPLY: usize = 1 << 20;

/// The line ending a reply cut at [`MAX_REPLY`].
pub const CUT_LINE: &[u8] = b"SERVER_ERROR out of memory writing get response\r\n";

/// Largest request datagram read (memcached's `UDP_READ_BUFFER_SIZE`).
const READ_SIZE: usize = 64 * 1024;

/// The 8-byte header of a memcached UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Chosen by the client, echoed in every reply datagram.
    pub request_id: u16,
    /// This datagram's index within the message.
    pub sequence: u16,
    /// Datagrams in the message.
    pub count: u16,
}

impl FrameHeader {
    /// The header at the front of `datagram`; `None` if it is too short.
    pub fn parse(datagram: &[u8]) -> Option<FrameHeader> {
        let h = datagram.get(..HEADER_LEN)?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(FrameHeader {
            request_id: word(0),
            sequence: word(2),
            count: word(4),
        })
    }

    /// The header's wire form (reserved bytes zero).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..2].copy_from_slice(&self.request_id.to_be_bytes());
        b[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        b[4..6].copy_from_slice(&self.count.to_be_bytes());
        b
    }
}

/// Splits `reply` into framed datagrams (none for an empty reply). A reply
/// too long to number with a `u16` is replaced by a `SERVER_ERROR`.
pub fn frames(request_id: u16, reply: &[u8]) -> Vec<Bytes> {
    const TOO_LONG: &[u8] = b"SERVER_ERROR reply too long for UDP\r\n";
    let reply = if reply.len().div_ceil(MAX_PAYLOAD) > usize::from(u16::MAX) {
        TOO_LONG
    } else {
        reply
    };
    let count = reply.len().div_ceil(MAX_PAYLOAD);
    let mut all = BytesMut::with_capacity(reply.len() + count * HEADER_LEN);
    for (i, chunk) in reply.chunks(MAX_PAYLOAD).enumerate() {
        let h = FrameHeader {
            request_id,
            sequence: i as u16,
            count: count as u16,
        };
        all.put_slice(&h.encode());
        all.put_slice(chunk);
    }
    let all = all.freeze();
    let mut start = 0;
    reply
        .chunks(MAX_PAYLOAD)
        .map(|chunk| {
            let end = start + HEADER_LEN + chunk.len();
            let d = all.slice(start..end);
            start = end;
            d
        })
        .collect()
}

/// A UDP socket on `addr` that shares its port with the other shards'.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// A shard's UDP socket: the kernel's, or the native stack's
/// (`--network-stack native`, see `server::native`).
#[derive(Debug)]
pub(crate) enum Socket {
    /// A kernel socket (`SO_REUSEPORT` on every shard).
    Kernel(UdpSocket),
    /// A socket of the native stack, bound on every shard.
    Native(seastar_net::native::UdpSocket),
}

impl From<UdpSocket> for Socket {
    fn from(s: UdpSocket) -> Self {
        Socket::Kernel(s)
    }
}

impl Socket {
    /// The next datagram, in `buf` or (native) in the buffer returned,
    /// whose first `n` bytes it is.
    async fn recv_from(&self, buf: Vec<u8>) -> BufResult<(usize, SocketAddr), Vec<u8>> {
        match self {
            Socket::Kernel(s) => s.recv_from(buf).await,
            // The queued datagram's own buffer: no copy out of the queue.
            Socket::Native(s) => {
                let (peer, d) = s.recv_from_owned(buf).await;
                (Ok((d.len(), peer)), d)
            }
        }
    }

    /// Sends `header` and `body` as one datagram: on the native stack
    /// straight into the frame; on a kernel socket from `scratch`, a
    /// buffer handed to the send and back.
    async fn send_two(
        &self,
        header: &[u8],
        body: &[u8],
        scratch: &mut Vec<u8>,
        peer: SocketAddr,
    ) -> io::Result<usize> {
        match self {
            Socket::Kernel(s) => {
                let mut d = std::mem::take(scratch);
                d.clear();
                d.extend_from_slice(header);
                d.extend_from_slice(body);
                let (r, b) = s.send_to(d, peer).await;
                *scratch = b;
                r
            }
            Socket::Native(s) => s.send_vectored_to(&[header, body], peer),
        }
    }

    async fn send_to<B: seastar_core::io::IoBuf>(
        &self,
        d: B,
        peer: SocketAddr,
    ) -> BufResult<usize, B> {
        match self {
            Socket::Kernel(s) => s.send_to(d, peer).await,
            Socket::Native(s) => s.send_to(d, peer).await,
        }
    }
}

/// Serves datagrams until a stop is requested.
pub(crate) async fn serve_udp(st: Rc<ShardState>, service: Sharded<ShardState>, sock: Socket) {
    let mut session = Session::new(st.clone(), service, st.udp_reply_max);
    let mut buf = Vec::with_capacity(READ_SIZE);
    let mut out = Out::new();
    let mut single: Vec<u8> = Vec::with_capacity(MAX_DATAGRAM);
    let mut stop = std::pin::pin!(seastar_core::stop_signal());
    loop {
        let recv = std::pin::pin!(sock.recv_from(buf));
        let (r, b) = match select(recv, stop.as_mut()).await {
            Either::Left((res, _)) => res,
            // The read in flight is abandoned: we are stopping.
            Either::Right(((), _)) => return,
        };
        buf = b;
        let (n, peer) = match r {
            Ok(v) => v,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                tracing::error!(shard = shard_id(), error = %e, "UDP receive failed; no longer serving UDP");
                return;
            }
        };
        let mut written = 0;
        let id = execute(&mut session, &buf[..n], &mut out).await;
        if let Some(id) = id.filter(|_| !out.is_empty()) {
            if out.is_flat() && out.len() <= MAX_PAYLOAD {
                // One datagram (every get of a small value), without an
                // allocation (see `Socket::send_two`).
                written = HEADER_LEN + out.len();
                let r = sock
                    .send_two(&single_header(id), &out[..], &mut single, peer)
                    .await;
                if let Err(e) = r {
                    tracing::debug!(shard = shard_id(), %peer, error = %e, "UDP send failed");
                }
            } else {
                let reply = out.to_vec();
                for d in frames(id, &reply) {
                    written += d.len();
                    let (r, _) = sock.send_to(d, peer).await;
                    if let Err(e) = r {
                        tracing::debug!(shard = shard_id(), %peer, error = %e, "UDP send failed");
                        break;
                    }
                }
            }
        }
        out.clear();
        let mut hd = st.handler.borrow_mut();
        let s = hd.store_mut().stats_mut();
        s.bytes_read += n as u64;
        s.bytes_written += written as u64;
    }
}

/// The header of a reply that fits one datagram.
fn single_header(request_id: u16) -> [u8; HEADER_LEN] {
    FrameHeader {
        request_id,
        sequence: 0,
        count: 1,
    }
    .encode()
}

/// The reply datagrams to one request datagram (none for an ignored one):
/// the body executed with the session's budget as the cap, the cut line
/// added if it was reached. `out` is scratch, left empty.
async fn answer(session: &mut Session, datagram: &[u8], out: &mut Out) -> Vec<Bytes> {
    let Some(id) = execute(session, datagram, out).await else {
        return Vec::new();
    };
    let reply = out.to_vec();
    out.clear();
    frames(id, &reply)
}

/// Executes one request datagram into `out` (cleared first): the body
/// with the session's budget as the cap, the cut line added if it was
/// reached. Returns the request id, or `None` for a datagram memcached
/// ignores (`out` then empty).
async fn execute(session: &mut Session, datagram: &[u8], out: &mut Out) -> Option<u16> {
    out.clear();
    let h = FrameHeader::parse(datagram)?;
    if datagram.len() == HEADER_LEN || h.count != 1 {
        // memcached ignores empty and multi-datagram requests.
        return None;
    }
    session.reset();
    let body = &datagram[HEADER_LEN..];
    let mut pos = 0;
    loop {
        let outcome = session.process(&body[pos..], out).await;
        pos += outcome.consumed;
        if !outcome.more {
            break;
        }
        // A stop for the forwarded-ops bound, not the cap: carry on.
        if out.len() >= session.budget() {
            out.extend_from_slice(CUT_LINE);
            break;
        }
    }
    Some(h.request_id)
}

/// The UDP request path without a socket, on a one-shard store of its
/// own: what a server answers to each datagram. For fuzzing and tests;
/// call it on a runtime with one shard.
///
/// ```
/// use memcached::server::{Config, udp::Responder};
/// seastar_core::block_on(async {
///     let mut r = Responder::start(Config::default()).await.unwrap();
///     let d = r.answer(b"\x00\x05\x00\x00\x00\x01\x00\x00mn\r\n").await;
///     assert_eq!(&d[0][..], b"\x00\x05\x00\x00\x00\x01\x00\x00MN\r\n");
///     r.stop().await;
/// });
/// ```
pub struct Responder {
    service: Sharded<ShardState>,
    session: Session,
    out: Out,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder over an empty store built from `config` (its memory,
    /// item size and UDP reply cap).
    pub async fn start(config: Config) -> Result<Responder, ServeError> {
        let settings = Settings {
            config,
            start: seastar_core::timer::now(),
            epoch: 0,
            shards: seastar_core::shard_count(),
        };
        let service = Sharded::start(move |_| ShardState::new(&settings)).await?;
        let st = service.local();
        let session = Session::new(st.clone(), service.clone(), st.udp_reply_max);
        Ok(Responder {
            service,
            session,
            out: Out::new(),
        })
    }

    /// The datagrams answering `datagram`.
    pub async fn answer(&mut self, datagram: &[u8]) -> Vec<Bytes> {
        answer(&mut self.session, datagram, &mut self.out).await
    }

    /// Stops the store.
    pub async fn stop(self) {
        drop(self.session);
        let _ = self.service.stop().await;
    }
}

fn transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        Interrupted | WouldBlock | ConnectionRefused | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = FrameHeader {
            request_id: 0x1234,
            sequence: 2,
            count: 5,
        };
        assert_eq!(h.encode(), [0x12, 0x34, 0, 2, 0, 5, 0, 0]);
        assert_eq!(FrameHeader::parse(&h.encode()), Some(h));
        assert_eq!(FrameHeader::parse(&[0; 7]), None);
    }

    #[test]
    fn replies_split_at_max_payload() {
        assert!(frames(1, b"").is_empty());
        let one = frames(9, b"END\r\n");
        assert_eq!(&one[0][..], b"\x00\x09\x00\x00\x00\x01\x00\x00END\r\n");
        let exact = frames(1, &[b'a'; MAX_PAYLOAD]);
        assert_eq!(exact.len(), 1);
        let body: Vec<u8> = (0..MAX_PAYLOAD * 2 + 1).map(|i| i as u8).collect();
        let d = frames(3, &body);
        assert_eq!(d.len(), 3);
        let mut joined = Vec::new();
        for (i, x) in d.iter().enumerate() {
            let h = FrameHeader::parse(x).unwrap();
            assert_eq!((h.request_id, h.sequence, h.count), (3, i as u16, 3));
            joined.extend_from_slice(&x[HEADER_LEN..]);
        }
        assert_eq!(joined, body);
    }
}
