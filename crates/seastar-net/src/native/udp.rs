//! UDP headers (RFC 768): checks on receive, building on send.
//!
//! The checksum covers the IPv4 pseudo-header. A received checksum of zero
//! means "not computed" and is accepted; we always compute ours.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use seastar_net::native::udp;
//! let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let mut dgram = [0u8; 10];
//! dgram[8..].copy_from_slice(b"hi");
//! udp::write_header(&mut dgram, a, b, 1000, 2000);
//! let (h, payload) = udp::Header::parse(&dgram, a, b).unwrap();
//! assert_eq!((h.src_port, h.dst_port, payload), (1000, 2000, &b"hi"[..]));
//! ```

use std::net::Ipv4Addr;

use super::checksum::Checksum;

/// Length of a UDP header.
pub const HEADER_LEN: usize = 8;

/// Why a UDP datagram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UdpError {
    /// Shorter than its header.
    #[error("UDP header truncated")]
    Truncated,
    /// A length field below 8 or beyond the IP payload.
    #[error("bad UDP length")]
    BadLength,
    /// The checksum does not verify.
    #[error("bad UDP checksum")]
    Checksum,
}

/// The ports of a UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, len: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_u32(src.to_bits());
    c.add_u32(dst.to_bits());
    c.add_u16(17);
    c.add_u16(len);
    c
}

impl Header {
    /// Checks the datagram `p` (the IPv4 payload) sent from `src` to
    /// `dst`, and returns its ports and payload (cut at its length field).
    pub fn parse(p: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(Header, &[u8]), UdpError> {
        let Some(h) = p.first_chunk::<HEADER_LEN>() else {
            return Err(UdpError::Truncated);
        };
        let len = u16::from_be_bytes([h[4], h[5]]);
        if usize::from(len) < HEADER_LEN || usize::from(len) > p.len() {
            return Err(UdpError::BadLength);
        }
        let p = &p[..usize::from(len)];
        if u16::from_be_bytes([h[6], h[7]]) != 0 {
            let mut c = pseudo_sum(src, dst, len);
            c.add(p);
            if c.finish() != 0 {
                return Err(UdpError::Checksum);
            }
        }
        let header = Header {
            src_port: u16::from_be_bytes([h[0], h[1]]),
            dst_port: u16::from_be_bytes([h[2], h[3]]),
        };
        Ok((header, &p[HEADER_LEN..]))
    }
}

/// Writes the header of the datagram in `dgram` (its payload already in
/// place after the first [`HEADER_LEN`] bytes; the datagram is all of
/// `dgram`), checksum included.
///
/// # Panics
///
/// When `dgram` is shorter than a header or longer than 65535 bytes.
pub fn write_header(dgram: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) {
    let len = u16::try_from(dgram.len()).expect("UDP datagram too long");
    dgram[0..2].copy_from_slice(&src_port.to_be_bytes());
    dgram[2..4].copy_from_slice(&dst_port.to_be_bytes());
    dgram[4..6].copy_from_slice(&len.to_be_bytes());
    dgram[6..8].copy_from_slice(&[0, 0]);
    let mut c = pseudo_sum(src, dst, len);
    c.add(dgram);
    let sum = match c.finish() {
        0 => 0xffff,
        s => s,
    };
    dgram[6..8].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 199);

    /// 192.168.0.1:1087 -> 192.168.0.199:13 with "abc" (checksum from
    /// Python's reference sum over the pseudo-header).
    fn datagram() -> Vec<u8> {
        let mut d = vec![
            0x04, 0x3f, 0x00, 0x0d, 0x00, 0x0b, 0x00, 0x00, b'a', b'b', b'c',
        ];
        write_header(&mut d, SRC, DST, 1087, 13);
        d
    }

    #[test]
    fn parses_and_builds_byte_for_byte() {
        let d = datagram();
        assert_eq!(
            d,
            [
                0x04, 0x3f, 0x00, 0x0d, 0x00, 0x0b, 0xb5, 0x10, b'a', b'b', b'c'
            ]
        );
        let mut padded = d.clone();
        padded.push(0);
        let (h, payload) = Header::parse(&padded, SRC, DST).unwrap();
        assert_eq!((h.src_port, h.dst_port), (1087, 13));
        assert_eq!(payload, b"abc");
    }

    #[test]
    fn zero_checksum_is_accepted_and_never_sent() {
        let mut d = datagram();
        d[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(Header::parse(&d, SRC, DST).unwrap().1, b"abc");
        // A payload whose sum makes the checksum 0 is sent as 0xffff.
        let mut d = vec![0u8; 10];
        write_header(&mut d, SRC, DST, 1, 2);
        // Adding the checksum itself as a payload word makes the sum 0xffff.
        let c = u16::from_be_bytes([d[6], d[7]]);
        let mut e = vec![0u8; 10];
        e[8..10].copy_from_slice(&c.to_be_bytes());
        write_header(&mut e, SRC, DST, 1, 2);
        assert_eq!(&e[6..8], &[0xff, 0xff]);
        assert!(Header::parse(&e, SRC, DST).is_ok());
    }

    #[test]
    fn malformed_datagrams_are_rejected_with_their_reason() {
        let d = datagram();
        for n in 0..HEADER_LEN {
            assert_eq!(Header::parse(&d[..n], SRC, DST), Err(UdpError::Truncated));
        }
        assert_eq!(Header::parse(&d[..10], SRC, DST), Err(UdpError::BadLength));
        let mut short = d.clone();
        short[5] = 7;
        assert_eq!(Header::parse(&short, SRC, DST), Err(UdpError::BadLength));
        let mut bad = d.clone();
        bad[10] ^= 1;
        assert_eq!(Header::parse(&bad, SRC, DST), Err(UdpError::Checksum));
        // The pseudo-header counts: the same bytes to another address fail.
        assert_eq!(
            Header::parse(&d, SRC, Ipv4Addr::new(192, 168, 0, 198)),
            Err(UdpError::Checksum)
        );
    }
}
