//! The frame decoder: pure parsing of received bytes into frames, with no
//! I/O (the connection's reader in `conn` owns the socket and feeds it).
//!
//! The decoder never trusts a length it has not received: it says how many
//! bytes it still [`needs`](FrameDecoder::needs) to finish the frame at the
//! front of the buffer, and the reader grows its buffer as those bytes
//! arrive (a header announcing 16 MiB followed by a trickle pins only the
//! trickle). A header is checked (kind, flags, length against the limit)
//! as soon as its 20 bytes are in, before any of its payload is waited for,
//! and a compressed payload's announced original size is checked against
//! the limit before anything is decompressed.
//!
//! ```
//! use bytes::BytesMut;
//! use seastar_rpc::decode::{Decoded, FrameDecoder};
//! use seastar_rpc::frame::{Header, Kind};
//!
//! let mut wire = Vec::new();
//! let mut h = Header::new(Kind::Response, 9);
//! h.len = 3;
//! h.encode(&mut wire);
//! wire.extend_from_slice(b"abc");
//! let dec = FrameDecoder::new(1024, false);
//! let mut buf = BytesMut::from(&wire[..5]);
//! assert_eq!(dec.decode(&mut buf), Ok(Decoded::NeedMore(20))); // the header first
//! buf.extend_from_slice(&wire[5..21]);
//! assert_eq!(dec.decode(&mut buf), Ok(Decoded::NeedMore(23))); // then its payload
//! buf.extend_from_slice(&wire[21..]);
//! let Ok(Decoded::Frame(f)) = dec.decode(&mut buf) else { panic!() };
//! assert_eq!((f.header.id, &f.payload[..]), (9, &b"abc"[..]));
//! assert!(buf.is_empty());
//! ```

use bytes::{Bytes, BytesMut};

use crate::codec;
use crate::frame::{FrameError, HEADER_LEN, Header, TIMEOUT_LEN, flags};

/// One frame as read: header and (decompressed) payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header (its `len` is the length as sent, compressed if flagged).
    pub header: Header,
    /// The payload, decompressed.
    pub payload: Bytes,
}

/// A header that failed to decode, with what could still be read from it
/// (the server answers an oversized request by its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHeader {
    /// The kind byte as received.
    pub kind: u8,
    /// The message id as received.
    pub id: u64,
    /// What is wrong with it.
    pub error: FrameError,
}

/// Why a frame could not be decoded: the connection cannot continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The header itself is unacceptable (unknown kind or flags, too long).
    Header(BadHeader),
    /// The header was fine, the payload is not (bad compression).
    Payload(FrameError),
}

impl From<DecodeError> for FrameError {
    fn from(e: DecodeError) -> FrameError {
        match e {
            DecodeError::Header(h) => h.error,
            DecodeError::Payload(e) => e,
        }
    }
}

/// What [`FrameDecoder::decode`] found at the front of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame, removed from the buffer.
    Frame(Frame),
    /// The frame is not complete: the buffer must hold this many bytes in
    /// all before it is (nothing was removed).
    NeedMore(usize),
}

/// Decodes frames against the receiver's limits.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    /// The largest payload accepted (as sent, and decompressed).
    pub max_frame: u32,
    /// Whether lz4 was negotiated (a compressed frame is an error otherwise).
    pub lz4: bool,
}

impl FrameDecoder {
    /// A decoder for payloads of at most `max_frame` bytes.
    pub fn new(max_frame: u32, lz4: bool) -> FrameDecoder {
        FrameDecoder { max_frame, lz4 }
    }

    /// How many bytes the buffer must hold for the frame at its front to
    /// be complete, as far as can be told from what is there (at least
    /// one byte more than `buf` holds when it is incomplete). Errors when
    /// the header is unacceptable.
    pub fn needs(&self, buf: &[u8]) -> Result<usize, DecodeError> {
        let Some(raw) = buf.get(..HEADER_LEN) else {
            return Ok(HEADER_LEN);
        };
        let raw: &[u8; HEADER_LEN] = raw.try_into().expect("20 bytes");
        let header = Header::decode(raw, self.max_frame).map_err(|error| {
            DecodeError::Header(BadHeader {
                kind: raw[0],
                id: u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes")),
                error,
            })
        })?;
        let timeout = if header.flags & flags::TIMEOUT != 0 {
            TIMEOUT_LEN
        } else {
            0
        };
        Ok(HEADER_LEN + timeout + header.len as usize)
    }

    /// Removes and returns the frame at the front of `buf`, or says how
    /// many bytes it needs. An error leaves `buf` as it was.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Decoded, DecodeError> {
        let need = self.needs(buf)?;
        if buf.len() < need {
            return Ok(Decoded::NeedMore(need));
        }
        let raw: &[u8; HEADER_LEN] = buf[..HEADER_LEN].try_into().expect("20 bytes");
        let mut header = Header::decode(raw, self.max_frame).expect("checked by needs");
        let mut start = HEADER_LEN;
        if header.flags & flags::TIMEOUT != 0 {
            let t = buf[HEADER_LEN..HEADER_LEN + TIMEOUT_LEN]
                .try_into()
                .expect("8 bytes");
            header.timeout = Some(Header::decode_timeout(t));
            start += TIMEOUT_LEN;
        }
        let mut payload = None;
        if header.flags & flags::COMPRESSED != 0 {
            if !self.lz4 {
                return Err(DecodeError::Payload(FrameError::Compression(
                    "compressed frame, but lz4 was not negotiated".into(),
                )));
            }
            let d = codec::decompress(&buf[start..need], self.max_frame)
                .map_err(DecodeError::Payload)?;
            payload = Some(Bytes::from(d));
        }
        let mut frame = buf.split_to(need);
        let payload = payload.unwrap_or_else(|| {
            let _ = frame.split_to(start);
            frame.freeze()
        });
        Ok(Decoded::Frame(Frame { header, payload }))
    }
}

/// Room of the read that waits on an idle connection.
pub const IDLE_READ: usize = 1024;
/// Largest room of one read.
pub const MAX_READ: usize = 64 * 1024;

/// The room a receiver gives its next read, holding `buffered` bytes when
/// the frame in progress needs `need` in all: what the frame still lacks,
/// at least [`IDLE_READ`] ([`MAX_READ`] during a `burst`, when the last
/// read filled its room) and at most [`MAX_READ`]. Never the announced
/// length itself: memory follows the bytes that arrive.
///
/// ```
/// use seastar_rpc::decode::{read_room, IDLE_READ, MAX_READ};
/// assert_eq!(read_room(0, 20, false), IDLE_READ);
/// assert_eq!(read_room(20, 16 << 20, false), MAX_READ);
/// assert_eq!(read_room(20, 3000, false), 2980);
/// assert_eq!(read_room(0, 20, true), MAX_READ);
/// ```
pub fn read_room(buffered: usize, need: usize, burst: bool) -> usize {
    let missing = need.saturating_sub(buffered).min(MAX_READ);
    let floor = if burst { MAX_READ } else { IDLE_READ };
    floor.max(missing)
}

/// The decoder's invariants, checked over a byte stream cut into reads
/// (shared by the unit tests and the fuzz targets in `fuzz/`).
#[doc(hidden)]
pub mod invariants {
    use super::*;

    /// Feeds `data` to a receiver that reads as the connection's reader
    /// does (room from [`read_room`], reads cut at the sizes `cuts` gives),
    /// decoding frames as they complete, and panics if an invariant fails:
    /// no panic inside the decoder; a frame's payload is at most
    /// `max_frame`; `NeedMore(n)` asks for more than is buffered; an error
    /// leaves the buffer untouched; and the buffer's capacity stays within
    /// twice what it holds plus one read's room, whatever length a header
    /// announced. Returns the frames decoded.
    pub fn feed(data: &[u8], cuts: &[u8], max_frame: u32, lz4: bool) -> Vec<Frame> {
        let dec = FrameDecoder::new(max_frame, lz4);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let (mut pos, mut cut, mut burst) = (0, 0, false);
        let mut need = HEADER_LEN;
        while pos < data.len() {
            let room = read_room(buf.len(), need, burst);
            if buf.capacity() - buf.len() < room {
                buf.reserve(room);
            }
            let want = cuts
                .get(cut)
                .map_or(room, |&c| (c as usize * 97 + 1).min(room));
            cut += 1;
            let n = want.min(data.len() - pos);
            buf.extend_from_slice(&data[pos..pos + n]);
            pos += n;
            burst = n >= room;
            assert!(
                buf.capacity() <= 2 * (buf.len() + MAX_READ),
                "capacity {} for {} bytes buffered",
                buf.capacity(),
                buf.len()
            );
            loop {
                let before = buf.clone();
                match dec.decode(&mut buf) {
                    Ok(Decoded::Frame(f)) => {
                        assert!(f.payload.len() <= max_frame as usize);
                        assert!(f.header.len <= max_frame);
                        frames.push(f);
                        if buf.is_empty() {
                            buf = BytesMut::new();
                        }
                    }
                    Ok(Decoded::NeedMore(n)) => {
                        assert!(n > buf.len(), "NeedMore({n}) with {} buffered", buf.len());
                        need = n;
                        break;
                    }
                    Err(_) => {
                        assert_eq!(buf, before, "an error consumed bytes");
                        return frames;
                    }
                }
            }
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Kind;
    use std::time::Duration;

    fn wire(h: Header, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        h.encode(&mut v);
        v.extend_from_slice(payload);
        v
    }

    /// A deterministic stand-in for the fuzzer on stable: random streams
    /// built from valid and corrupted frames, cut into random reads.
    #[test]
    fn invariants_hold_on_random_streams() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let mut data = Vec::new();
            for _ in 0..(next() % 6) {
                let len = (next() % 3000) as usize;
                let mut h = Header::request(next() as u32, next(), len as u32, None);
                if next() % 3 == 0 {
                    h.timeout = Some(Duration::from_micros(next() % 1000));
                }
                let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if next() % 4 == 0 {
                    if let Some(c) = codec::compress(&payload) {
                        h.flags |= flags::COMPRESSED;
                        h.len = c.len() as u32;
                        h.encode(&mut data);
                        data.extend_from_slice(&c);
                        continue;
                    }
                }
                h.encode(&mut data);
                data.extend_from_slice(&payload);
            }
            // Corrupt a byte now and then, or announce a huge length.
            if !data.is_empty() && next() % 3 == 0 {
                let i = (next() as usize) % data.len();
                data[i] = next() as u8;
            }
            if next() % 5 == 0 {
                let mut h = Header::new(Kind::Request, 1);
                h.len = 16 << 20;
                h.encode(&mut data);
                data.extend_from_slice(&[0; 100]);
            }
            let cuts: Vec<u8> = (0..(next() % 50)).map(|_| next() as u8).collect();
            let max = [1024, 4096, 16 << 20][(next() % 3) as usize];
            invariants::feed(&data, &cuts, max, next() % 2 == 0);
        }
    }

    #[test]
    fn a_header_announcing_16_mib_holds_only_what_arrived() {
        let mut w = Vec::new();
        let mut h = Header::new(Kind::Request, 1);
        h.len = 16 << 20;
        h.encode(&mut w);
        w.extend_from_slice(&[7; 5000]);
        // One byte per read: the buffer never grows toward 16 MiB.
        let frames = invariants::feed(&w, &[0; 6000], 16 << 20, false);
        assert!(frames.is_empty());
        assert_eq!(read_room(5020, 16 << 20, false), MAX_READ);
    }

    #[test]
    fn a_frame_fed_byte_by_byte_needs_exactly_its_length() {
        let h = Header::request(3, 77, 4, Some(Duration::from_micros(1500)));
        let w = wire(h, b"data");
        let dec = FrameDecoder::new(100, false);
        let mut buf = BytesMut::new();
        for (i, b) in w.iter().enumerate() {
            let expect = if i < HEADER_LEN { HEADER_LEN } else { w.len() };
            assert_eq!(dec.decode(&mut buf), Ok(Decoded::NeedMore(expect)));
            buf.extend_from_slice(&[*b]);
        }
        let Ok(Decoded::Frame(f)) = dec.decode(&mut buf) else {
            panic!("complete")
        };
        assert_eq!(f.header, h);
        assert_eq!(&f.payload[..], b"data");
        assert!(buf.is_empty());
    }

    #[test]
    fn an_oversized_header_is_refused_before_its_payload_arrives() {
        let mut h = Header::new(Kind::Request, 5);
        h.len = 16 << 20;
        let w = wire(h, b"");
        let dec = FrameDecoder::new(1 << 20, true);
        let mut buf = BytesMut::from(&w[..]);
        let Err(DecodeError::Header(bad)) = dec.decode(&mut buf) else {
            panic!("refused")
        };
        assert_eq!((bad.kind, bad.id), (Kind::Request as u8, 5));
        assert_eq!(
            bad.error,
            FrameError::TooLarge {
                len: 16 << 20,
                max: 1 << 20
            }
        );
        assert_eq!(
            buf.len(),
            HEADER_LEN,
            "an error leaves the buffer as it was"
        );
    }

    #[test]
    fn compressed_frames_need_lz4_and_respect_the_limit() {
        let mut h = Header::new(Kind::Response, 1);
        h.flags = flags::COMPRESSED;
        // Claims 1 MiB decompressed.
        let mut p = (1u32 << 20).to_le_bytes().to_vec();
        p.extend_from_slice(&[0x10, b'a']);
        h.len = p.len() as u32;
        let w = wire(h, &p);
        let mut buf = BytesMut::from(&w[..]);
        assert!(matches!(
            FrameDecoder::new(1024, false).decode(&mut buf),
            Err(DecodeError::Payload(FrameError::Compression(_)))
        ));
        assert!(matches!(
            FrameDecoder::new(1024, true).decode(&mut buf),
            Err(DecodeError::Payload(FrameError::TooLarge { .. }))
        ));
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn two_frames_in_one_buffer_decode_in_order() {
        let big = vec![b'z'; 4000];
        let c = codec::compress(&big).unwrap();
        let mut h1 = Header::new(Kind::Response, 1);
        h1.flags = flags::COMPRESSED;
        h1.len = c.len() as u32;
        let mut h2 = Header::new(Kind::Cancel, 2);
        h2.len = 0;
        let mut w = wire(h1, &c);
        w.extend(wire(h2, b""));
        let dec = FrameDecoder::new(4000, true);
        let mut buf = BytesMut::from(&w[..]);
        let Ok(Decoded::Frame(a)) = dec.decode(&mut buf) else {
            panic!()
        };
        assert_eq!(a.payload, big);
        let Ok(Decoded::Frame(b)) = dec.decode(&mut buf) else {
            panic!()
        };
        assert_eq!((b.header.kind, b.header.id), (Kind::Cancel, 2));
        assert!(buf.is_empty());
        let mut again = BytesMut::from(&w[..]);
        assert!(matches!(
            FrameDecoder::new(3999, true).decode(&mut again),
            Err(DecodeError::Payload(FrameError::TooLarge {
                len: 4000,
                max: 3999
            }))
        ));
    }
}
