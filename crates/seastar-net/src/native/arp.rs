//! ARP for IPv4 over Ethernet (RFC 826): parsing and building.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use seastar_net::native::arp::{self, ArpPacket, Op};
//! use seastar_net::native::ethernet::Mac;
//! let mut buf = [0u8; arp::LEN];
//! let req = ArpPacket {
//!     op: Op::Request,
//!     sender_mac: Mac([2, 0, 0, 0, 0, 1]),
//!     sender_ip: Ipv4Addr::new(10, 0, 0, 1),
//!     target_mac: Mac::ZERO,
//!     target_ip: Ipv4Addr::new(10, 0, 0, 2),
//! };
//! req.write(&mut buf);
//! assert_eq!(ArpPacket::parse(&buf).unwrap(), req);
//! ```

use std::net::Ipv4Addr;

use super::ethernet::Mac;

/// Length of an ARP packet for IPv4 over Ethernet.
pub const LEN: usize = 28;

/// ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Who has `target_ip`?
    Request,
    /// `sender_ip` is at `sender_mac`.
    Reply,
}

/// Why an ARP packet was not parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArpError {
    /// Shorter than [`LEN`].
    #[error("ARP packet truncated")]
    Truncated,
    /// Not Ethernet hardware (1) with IPv4 protocol addresses (0x0800,
    /// lengths 6 and 4).
    #[error("ARP for another hardware or protocol")]
    Unsupported,
    /// An operation other than request (1) or reply (2).
    #[error("ARP operation {0}")]
    BadOp(u16),
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    /// Request or reply.
    pub op: Op,
    /// Sender hardware address.
    pub sender_mac: Mac,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_mac: Mac,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// Parses the payload of an ARP frame (trailing padding ignored).
    pub fn parse(p: &[u8]) -> Result<ArpPacket, ArpError> {
        let Some(p) = p.first_chunk::<LEN>() else {
            return Err(ArpError::Truncated);
        };
        let be16 = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
        if be16(0) != 1 || be16(2) != 0x0800 || p[4] != 6 || p[5] != 4 {
            return Err(ArpError::Unsupported);
        }
        let op = match be16(6) {
            1 => Op::Request,
            2 => Op::Reply,
            n => return Err(ArpError::BadOp(n)),
        };
        let mac = |i: usize| Mac(p[i..i + 6].try_into().expect("6 bytes"));
        let ip = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
        Ok(ArpPacket {
            op,
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// Writes the packet into the first [`LEN`] bytes of `buf`.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than [`LEN`].
    pub fn write(&self, buf: &mut [u8]) {
        let b = &mut buf[..LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes());
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        let op: u16 = match self.op {
            Op::Request => 1,
            Op::Reply => 2,
        };
        b[6..8].copy_from_slice(&op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac.0);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac.0);
        b[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request from 10.0.0.1 (02:..:01) for 10.0.0.2, as tcpdump shows it.
    const REQUEST: [u8; LEN] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, hlen, plen, op
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // target
    ];

    #[test]
    fn parses_and_builds_byte_for_byte() {
        let p = ArpPacket::parse(&REQUEST).unwrap();
        assert_eq!(p.op, Op::Request);
        assert_eq!(p.sender_mac, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.sender_ip, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.target_mac, Mac::ZERO);
        assert_eq!(p.target_ip, Ipv4Addr::new(10, 0, 0, 2));
        let mut out = [0xeeu8; LEN];
        p.write(&mut out);
        assert_eq!(out, REQUEST);
        let mut reply = REQUEST;
        reply[7] = 2;
        assert_eq!(ArpPacket::parse(&reply).unwrap().op, Op::Reply);
        let mut padded = REQUEST.to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(ArpPacket::parse(&padded).unwrap(), p);
    }

    #[test]
    fn malformed_packets_are_rejected_with_their_reason() {
        for n in 0..LEN {
            assert_eq!(ArpPacket::parse(&REQUEST[..n]), Err(ArpError::Truncated));
        }
        for (i, v) in [(1, 6), (2, 0x86), (4, 8), (5, 16)] {
            let mut p = REQUEST;
            p[i] = v;
            assert_eq!(ArpPacket::parse(&p), Err(ArpError::Unsupported), "byte {i}");
        }
        for op in [0u8, 3, 4] {
            let mut p = REQUEST;
            p[7] = op;
            assert_eq!(ArpPacket::parse(&p), Err(ArpError::BadOp(op.into())));
        }
    }
}
