//! IPv4 headers (RFC 791): checks on receive, building on send.
//!
//! Only 20-byte headers are accepted: packets with options and fragments
//! are refused (the stack counts and drops them).
//!
//! ```
//! use std::net::Ipv4Addr;
//! use seastar_net::native::ipv4::{self, Header, Protocol};
//! let mut buf = [0u8; 24];
//! let h = Header {
//!     src: Ipv4Addr::new(10, 0, 0, 1),
//!     dst: Ipv4Addr::new(10, 0, 0, 2),
//!     protocol: Protocol::UDP,
//!     ttl: 64,
//!     id: 7,
//! };
//! h.write(&mut buf, 4);
//! let (parsed, payload) = Header::parse(&buf).unwrap();
//! assert_eq!(parsed, h);
//! assert_eq!(payload.len(), 4);
//! ```

use std::net::Ipv4Addr;

use super::checksum::checksum;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// The TTL of the packets we send.
pub const DEFAULT_TTL: u8 = 64;

/// The protocol field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    /// ICMP.
    pub const ICMP: Protocol = Protocol(1);
    /// TCP.
    pub const TCP: Protocol = Protocol(6);
    /// UDP.
    pub const UDP: Protocol = Protocol(17);
}

/// Why an IPv4 packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ipv4Error {
    /// Shorter than its header.
    #[error("IPv4 header truncated")]
    Truncated,
    /// A version other than 4.
    #[error("IP version {0}")]
    Version(u8),
    /// Header length below 5 words, or a total length below the header's
    /// or beyond the frame.
    #[error("bad IPv4 length")]
    BadLength,
    /// The header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    Checksum,
    /// A header with options (not supported: dropped).
    #[error("IPv4 options")]
    Options,
    /// A fragment (more-fragments set or a nonzero offset: dropped).
    #[error("IPv4 fragment")]
    Fragment,
    /// A time-to-live of zero.
    #[error("IPv4 TTL zero")]
    Ttl,
}

/// The fields of an IPv4 header the stack uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: Protocol,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub id: u16,
}

impl Header {
    /// Checks the header at the start of `p` and returns it with its
    /// payload (cut at the total length: link-layer padding removed).
    pub fn parse(p: &[u8]) -> Result<(Header, &[u8]), Ipv4Error> {
        let Some(h) = p.first_chunk::<HEADER_LEN>() else {
            return Err(Ipv4Error::Truncated);
        };
        if h[0] >> 4 != 4 {
            return Err(Ipv4Error::Version(h[0] >> 4));
        }
        let ihl = usize::from(h[0] & 0x0f) * 4;
        if ihl < HEADER_LEN {
            return Err(Ipv4Error::BadLength);
        }
        if p.len() < ihl {
            return Err(Ipv4Error::Truncated);
        }
        let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if total < ihl || total > p.len() {
            return Err(Ipv4Error::BadLength);
        }
        if checksum(&p[..ihl]) != 0 {
            return Err(Ipv4Error::Checksum);
        }
        if ihl != HEADER_LEN {
            return Err(Ipv4Error::Options);
        }
        let frag = u16::from_be_bytes([h[6], h[7]]);
        if frag & 0x3fff != 0 {
            return Err(Ipv4Error::Fragment);
        }
        if h[8] == 0 {
            return Err(Ipv4Error::Ttl);
        }
        let header = Header {
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            protocol: Protocol(h[9]),
            ttl: h[8],
            id: u16::from_be_bytes([h[4], h[5]]),
        };
        Ok((header, &p[HEADER_LEN..total]))
    }

    /// Writes this header (no options, don't-fragment set, checksum
    /// computed) for a payload of `payload_len` bytes into the first
    /// [`HEADER_LEN`] bytes of `buf`.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than a header or the packet longer than 65535.
    pub fn write(&self, buf: &mut [u8], payload_len: usize) {
        let total = u16::try_from(HEADER_LEN + payload_len).expect("IPv4 packet too long");
        let b = &mut buf[..HEADER_LEN];
        b[0] = 0x45;
        b[1] = 0;
        b[2..4].copy_from_slice(&total.to_be_bytes());
        b[4..6].copy_from_slice(&self.id.to_be_bytes());
        b[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
        b[8] = self.ttl;
        b[9] = self.protocol.0;
        b[10..12].copy_from_slice(&[0, 0]);
        b[12..16].copy_from_slice(&self.src.octets());
        b[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum(b);
        b[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP packet 192.168.0.1 -> 192.168.0.199 with 4 payload bytes (header
    /// checksum 0xb8bc).
    const PACKET: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0xbc, 192, 168, 0, 1,
        192, 168, 0, 199, 1, 2, 3, 4,
    ];

    fn fix_checksum(p: &mut [u8]) {
        let ihl = usize::from(p[0] & 0xf) * 4;
        p[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&p[..ihl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn parses_and_builds_byte_for_byte() {
        let mut padded = PACKET.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let (h, payload) = Header::parse(&padded).unwrap();
        assert_eq!(h.src, Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(h.dst, Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(h.protocol, Protocol::UDP);
        assert_eq!((h.ttl, h.id), (64, 0));
        assert_eq!(payload, &[1, 2, 3, 4]);
        let mut out = [0u8; 24];
        h.write(&mut out, 4);
        out[20..].copy_from_slice(payload);
        assert_eq!(out, PACKET);
    }

    #[test]
    fn malformed_headers_are_rejected_with_their_reason() {
        for n in 0..HEADER_LEN {
            assert_eq!(Header::parse(&PACKET[..n]), Err(Ipv4Error::Truncated));
        }
        let case = |f: &dyn Fn(&mut Vec<u8>), fix: bool| {
            let mut p = PACKET.to_vec();
            f(&mut p);
            if fix {
                fix_checksum(&mut p);
            }
            Header::parse(&p).map(|_| ())
        };
        assert_eq!(case(&|p| p[0] = 0x65, true), Err(Ipv4Error::Version(6)));
        assert_eq!(case(&|p| p[0] = 0x44, false), Err(Ipv4Error::BadLength));
        assert_eq!(case(&|p| p[0] = 0x47, false), Err(Ipv4Error::Truncated));
        assert_eq!(case(&|p| p[3] = 25, true), Err(Ipv4Error::BadLength));
        assert_eq!(case(&|p| p[3] = 19, true), Err(Ipv4Error::BadLength));
        assert_eq!(case(&|p| p[11] ^= 1, false), Err(Ipv4Error::Checksum));
        assert_eq!(case(&|p| p[15] = 2, false), Err(Ipv4Error::Checksum));
        assert_eq!(case(&|p| p[6] = 0x20, true), Err(Ipv4Error::Fragment));
        assert_eq!(case(&|p| p[7] = 1, true), Err(Ipv4Error::Fragment));
        assert_eq!(case(&|p| p[8] = 0, true), Err(Ipv4Error::Ttl));
        // A header with one word of options (a no-op and an end of list).
        let with_options = |p: &mut Vec<u8>| {
            p[0] = 0x46;
            p[3] = 28;
            p.splice(20..20, [1, 1, 1, 0]);
        };
        assert_eq!(case(&with_options, true), Err(Ipv4Error::Options));
        assert_eq!(case(&|p| p[9] = 6, true), Ok(()));
    }
}
