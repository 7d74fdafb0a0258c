//! The wire format: pure encoding and decoding of the negotiation frame and
//! of frame headers, with no I/O (the connection loops in `conn` own the
//! sockets). See the crate docs for the table of fields.

use std::time::Duration;

use thiserror::Error;

/// First bytes of every negotiation frame.
pub const MAGIC: [u8; 4] = *b"SRPC";
/// The protocol version this crate speaks.
pub const VERSION: u16 = 1;
/// Size of the negotiation frame.
pub const NEGOTIATION_LEN: usize = 16;
/// Size of a frame header without the optional timeout.
pub const HEADER_LEN: usize = 20;
/// Size of the optional timeout field (microseconds, `u64`).
pub const TIMEOUT_LEN: usize = 8;
/// The default limit on a frame's payload, in bytes.
pub const DEFAULT_MAX_FRAME: u32 = 16 << 20;

/// Feature bits exchanged at negotiation; a connection uses the
/// intersection of both sides' bits.
///
/// ```
/// use seastar_rpc::frame::Features;
/// let f = Features::TIMEOUTS | Features::CANCELLATION;
/// assert!(f.contains(Features::TIMEOUTS));
/// assert!(!(f & Features::STREAMING).contains(Features::STREAMING));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Features(pub u32);

impl Features {
    /// Payloads may be lz4-compressed (flag bit 0 of a frame).
    pub const LZ4: Features = Features(1);
    /// The receiver enforces a request's timeout field.
    pub const TIMEOUTS: Features = Features(2);
    /// The client sends cancel frames for abandoned calls.
    pub const CANCELLATION: Features = Features(4);
    /// Stream frames (open, data, end, credit) are understood.
    pub const STREAMING: Features = Features(8);
    /// Every feature this build supports.
    pub fn supported() -> Features {
        let all = Features::TIMEOUTS | Features::CANCELLATION | Features::STREAMING;
        if cfg!(feature = "lz4") {
            all | Features::LZ4
        } else {
            all
        }
    }
    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Features {
    type Output = Features;
    fn bitor(self, rhs: Features) -> Features {
        Features(self.0 | rhs.0)
    }
}

impl std::ops::BitAnd for Features {
    type Output = Features;
    fn bitand(self, rhs: Features) -> Features {
        Features(self.0 & rhs.0)
    }
}

/// A malformed or unacceptable frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The negotiation frame does not start with [`MAGIC`].
    #[error("bad magic {0:02x?}: not a seastar-rpc peer")]
    BadMagic([u8; 4]),
    /// The peer speaks a version this build does not.
    #[error("unsupported protocol version {0} (this side speaks {VERSION})")]
    UnsupportedVersion(u16),
    /// A header names a frame kind that does not exist.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A header sets flag bits that do not exist.
    #[error("unknown frame flags {0:#04x}")]
    UnknownFlags(u8),
    /// A payload longer than the receiver's limit.
    #[error("frame payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced payload length.
        len: u64,
        /// The receiver's limit.
        max: u32,
    },
    /// A frame that breaks the protocol's rules (e.g. more stream items than granted).
    #[error("protocol violation: {0}")]
    Violation(String),
    /// A compressed payload that does not decompress.
    #[error("corrupt compressed payload: {0}")]
    Compression(String),
}

/// The negotiation frame: sent first by the client, answered by the server
/// with the features both sides support.
///
/// ```
/// use seastar_rpc::frame::{Features, Negotiation};
/// let n = Negotiation { features: Features::TIMEOUTS, max_frame: 1024 };
/// assert_eq!(Negotiation::decode(&n.encode()), Ok(n));
/// assert!(Negotiation::decode(b"GET / HTTP/1.1\r\n").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiation {
    /// Feature bits of the sender.
    pub features: Features,
    /// The largest payload the sender accepts.
    pub max_frame: u32,
}

impl Negotiation {
    /// The 16 bytes on the wire.
    pub fn encode(&self) -> [u8; NEGOTIATION_LEN] {
        let mut b = [0u8; NEGOTIATION_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.features.0.to_le_bytes());
        b[12..16].copy_from_slice(&self.max_frame.to_le_bytes());
        b
    }

    /// Parses 16 bytes; unknown feature bits are ignored (masked away when
    /// the two sides intersect their features).
    pub fn decode(b: &[u8; NEGOTIATION_LEN]) -> Result<Negotiation, FrameError> {
        let magic = [b[0], b[1], b[2], b[3]];
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        Ok(Negotiation {
            features: Features(u32::from_le_bytes([b[8], b[9], b[10], b[11]])),
            max_frame: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        })
    }
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A call (or, with [`flags::STREAM`], a stream opening): verb, id,
    /// optional timeout, serialized argument.
    Request = 1,
    /// The answer to request `id`: status and serialized result or error.
    Response = 2,
    /// The client gave up on request `id`; no payload.
    Cancel = 3,
    /// One item of stream `id`.
    StreamData = 4,
    /// The sender's direction of stream `id` ends, with a status.
    StreamEnd = 5,
    /// The sender may send `verb` (reused as a count) more items on stream `id`.
    StreamCredit = 6,
}

impl Kind {
    fn from_u8(v: u8) -> Result<Kind, FrameError> {
        Ok(match v {
            1 => Kind::Request,
            2 => Kind::Response,
            3 => Kind::Cancel,
            4 => Kind::StreamData,
            5 => Kind::StreamEnd,
            6 => Kind::StreamCredit,
            other => return Err(FrameError::UnknownKind(other)),
        })
    }
}

/// Header flag bits.
pub mod flags {
    /// The payload is lz4-compressed (`u32` little-endian original size, then the block).
    pub const COMPRESSED: u8 = 1;
    /// An 8-byte timeout in microseconds follows the fixed header.
    pub const TIMEOUT: u8 = 2;
    /// The request opens a stream on a streaming verb.
    pub const STREAM: u8 = 4;
    /// All defined bits.
    pub const ALL: u8 = COMPRESSED | TIMEOUT | STREAM;
}

/// Response and stream-end status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    /// Success; the payload is the serialized result.
    Ok = 0,
    /// The handler returned its error type; the payload is that error, serialized.
    Handler = 1,
    /// No handler is registered for the verb; payload: a UTF-8 message.
    UnknownVerb = 2,
    /// The request's timeout passed on the server.
    Timeout = 3,
    /// The call was cancelled.
    Cancelled = 4,
    /// The argument did not deserialize; payload: a UTF-8 message.
    BadRequest = 5,
    /// The frame was over the server's limit; the connection closes next.
    FrameTooLarge = 6,
    /// Any other server-side failure; payload: a UTF-8 message.
    Internal = 7,
}

impl Status {
    /// The status for a wire value (unknown values read as [`Status::Internal`]).
    pub fn from_u16(v: u16) -> Status {
        match v {
            0 => Status::Ok,
            1 => Status::Handler,
            2 => Status::UnknownVerb,
            3 => Status::Timeout,
            4 => Status::Cancelled,
            5 => Status::BadRequest,
            6 => Status::FrameTooLarge,
            _ => Status::Internal,
        }
    }
}

/// A frame header.
///
/// ```
/// use std::time::Duration;
/// use seastar_rpc::frame::{flags, Header, Kind, HEADER_LEN};
/// let h = Header::request(7, 42, 5, Some(Duration::from_millis(3)));
/// let mut wire = Vec::new();
/// h.encode(&mut wire);
/// assert_eq!(wire.len(), HEADER_LEN + 8);
/// let mut parsed = Header::decode(wire[..HEADER_LEN].try_into().unwrap(), 1024).unwrap();
/// assert_eq!(parsed.flags & flags::TIMEOUT, flags::TIMEOUT);
/// parsed.timeout = Some(Header::decode_timeout(wire[HEADER_LEN..].try_into().unwrap()));
/// assert_eq!(parsed, h);
/// assert_eq!(parsed.kind, Kind::Request);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the frame carries.
    pub kind: Kind,
    /// [`flags`] bits.
    pub flags: u8,
    /// [`Status`] of a response or stream end; 0 otherwise.
    pub status: u16,
    /// Verb of a request; credit count of a credit frame; 0 otherwise.
    pub verb: u32,
    /// Message id: chosen by the client per call or stream.
    pub id: u64,
    /// Payload length in bytes (as sent, i.e. compressed if flagged).
    pub len: u32,
    /// The request's timeout, if [`flags::TIMEOUT`] is set.
    pub timeout: Option<Duration>,
}

impl Header {
    /// A request header (timeout included when given).
    pub fn request(verb: u32, id: u64, len: u32, timeout: Option<Duration>) -> Header {
        Header {
            kind: Kind::Request,
            flags: if timeout.is_some() { flags::TIMEOUT } else { 0 },
            status: 0,
            verb,
            id,
            len,
            timeout,
        }
    }

    /// A header of `kind` for `id` with everything else zero.
    pub fn new(kind: Kind, id: u64) -> Header {
        Header {
            kind,
            flags: 0,
            status: 0,
            verb: 0,
            id,
            len: 0,
            timeout: None,
        }
    }

    /// Appends the header (and the timeout field if flagged) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        let timeout_flag = if self.timeout.is_some() {
            flags::TIMEOUT
        } else {
            0
        };
        out.push((self.flags & !flags::TIMEOUT) | timeout_flag);
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&self.verb.to_le_bytes());
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        if let Some(t) = self.timeout {
            let us = u64::try_from(t.as_micros()).unwrap_or(u64::MAX);
            out.extend_from_slice(&us.to_le_bytes());
        }
    }

    /// Parses the fixed 20 bytes, checking kind, flags and the payload
    /// length against `max_frame`. The timeout, if flagged, follows: read
    /// it with [`Header::decode_timeout`].
    pub fn decode(b: &[u8; HEADER_LEN], max_frame: u32) -> Result<Header, FrameError> {
        let kind = Kind::from_u8(b[0])?;
        let fl = b[1];
        if fl & !flags::ALL != 0 {
            return Err(FrameError::UnknownFlags(fl));
        }
        let len = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
        if len > max_frame {
            return Err(FrameError::TooLarge {
                len: len.into(),
                max: max_frame,
            });
        }
        Ok(Header {
            kind,
            flags: fl,
            status: u16::from_le_bytes([b[2], b[3]]),
            verb: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            id: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
            len,
            timeout: None,
        })
    }

    /// Parses the 8-byte timeout field.
    pub fn decode_timeout(b: &[u8; TIMEOUT_LEN]) -> Duration {
        Duration::from_micros(u64::from_le_bytes(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_little_endian_and_fixed() {
        let mut h = Header::new(Kind::Response, 0x0102_0304_0506_0708);
        h.status = Status::UnknownVerb as u16;
        h.verb = 0xaabb_ccdd;
        h.len = 3;
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(
            out,
            [
                2, 0, 2, 0, 0xdd, 0xcc, 0xbb, 0xaa, 8, 7, 6, 5, 4, 3, 2, 1, 3, 0, 0, 0
            ]
        );
    }

    #[test]
    fn oversized_unknown_kind_and_flags_are_rejected() {
        let mut out = Vec::new();
        let mut h = Header::new(Kind::Request, 1);
        h.len = 1025;
        h.encode(&mut out);
        let b: [u8; HEADER_LEN] = out[..].try_into().unwrap();
        assert_eq!(
            Header::decode(&b, 1024),
            Err(FrameError::TooLarge {
                len: 1025,
                max: 1024
            })
        );
        assert!(Header::decode(&b, 1025).is_ok());
        let mut bad = b;
        bad[0] = 9;
        assert_eq!(Header::decode(&bad, 4096), Err(FrameError::UnknownKind(9)));
        let mut bad = b;
        bad[1] = 0x80;
        assert_eq!(
            Header::decode(&bad, 4096),
            Err(FrameError::UnknownFlags(0x80))
        );
    }

    #[test]
    fn negotiation_rejects_garbage_and_other_versions() {
        let n = Negotiation {
            features: Features::supported(),
            max_frame: 77,
        };
        let mut b = n.encode();
        assert_eq!(&b[..4], b"SRPC");
        assert_eq!(Negotiation::decode(&b), Ok(n));
        b[4] = 2;
        assert_eq!(
            Negotiation::decode(&b),
            Err(FrameError::UnsupportedVersion(2))
        );
        assert_eq!(
            Negotiation::decode(b"PRI * HTTP/2.0\r\n"),
            Err(FrameError::BadMagic(*b"PRI "))
        );
    }

    #[test]
    fn every_byte_string_decodes_or_errors_without_panic() {
        // A cheap exhaustive-ish sweep: each header byte through all values.
        let mut base = Vec::new();
        Header::request(1, 2, 3, None).encode(&mut base);
        for i in 0..HEADER_LEN {
            for v in 0..=255u8 {
                let mut b: [u8; HEADER_LEN] = base[..].try_into().unwrap();
                b[i] = v;
                let _ = Header::decode(&b, 1 << 20);
            }
        }
    }
}
