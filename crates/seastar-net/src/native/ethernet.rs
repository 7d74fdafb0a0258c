//! Ethernet II frames: parsing in place and header building.
//!
//! ```
//! use seastar_net::native::ethernet::{self, EtherType, Mac};
//! let mut frame = [0u8; 60];
//! ethernet::write_header(&mut frame, Mac::BROADCAST, Mac([2, 0, 0, 0, 0, 1]), EtherType::ARP);
//! let f = ethernet::Frame::parse(&frame).unwrap();
//! assert_eq!(f.dst, Mac::BROADCAST);
//! assert_eq!(f.ethertype, EtherType::ARP);
//! assert_eq!(f.payload.len(), 46);
//! ```

use std::fmt;

/// Length of an Ethernet II header (no VLAN tag).
pub const HEADER_LEN: usize = 14;

/// The shortest frame on the wire without its FCS: shorter frames are
/// padded with zeros when sent.
pub const MIN_FRAME: usize = 60;

/// A hardware (MAC) address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    /// `00:00:00:00:00:00` (the unknown target of an ARP request).
    pub const ZERO: Mac = Mac([0; 6]);

    /// Whether the group bit is set (broadcast or multicast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// The type field of an Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP.
    pub const ARP: EtherType = EtherType(0x0806);
}

/// Why a frame was not parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EthernetError {
    /// Shorter than an Ethernet header.
    #[error("frame shorter than an Ethernet header")]
    Truncated,
}

/// A parsed Ethernet frame: a view into the received bytes.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Destination address.
    pub dst: Mac,
    /// Source address.
    pub src: Mac,
    /// Type of the payload.
    pub ethertype: EtherType,
    /// Everything after the header (padding included).
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Parses the header of `frame`.
    pub fn parse(frame: &'a [u8]) -> Result<Frame<'a>, EthernetError> {
        let Some((h, payload)) = frame.split_first_chunk::<HEADER_LEN>() else {
            return Err(EthernetError::Truncated);
        };
        Ok(Frame {
            dst: Mac(h[0..6].try_into().expect("6 bytes")),
            src: Mac(h[6..12].try_into().expect("6 bytes")),
            ethertype: EtherType(u16::from_be_bytes([h[12], h[13]])),
            payload,
        })
    }
}

/// Writes an Ethernet header at the start of `buf` (at least
/// [`HEADER_LEN`] bytes) and returns the rest, for the payload.
///
/// # Panics
///
/// When `buf` is shorter than a header.
pub fn write_header(buf: &mut [u8], dst: Mac, src: Mac, ethertype: EtherType) -> &mut [u8] {
    let (h, rest) = buf.split_at_mut(HEADER_LEN);
    h[0..6].copy_from_slice(&dst.0);
    h[6..12].copy_from_slice(&src.0);
    h[12..14].copy_from_slice(&ethertype.0.to_be_bytes());
    rest
}

/// The length to transmit for `payload_len` bytes after the header: the
/// frame padded up to [`MIN_FRAME`].
pub fn frame_len(payload_len: usize) -> usize {
    (HEADER_LEN + payload_len).max(MIN_FRAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_frame_byte_for_byte() {
        let bytes = [
            0x02, 0, 0, 0, 0, 2, // dst
            0x02, 0, 0, 0, 0, 1, // src
            0x08, 0x00, // IPv4
            0xaa, 0xbb,
        ];
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!(f.dst, Mac([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.src, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype, EtherType::IPV4);
        assert_eq!(f.payload, &[0xaa, 0xbb]);
        let mut out = [0u8; 16];
        write_header(&mut out, f.dst, f.src, f.ethertype)[..2].copy_from_slice(f.payload);
        assert_eq!(out, bytes);
    }

    #[test]
    fn truncated_headers_are_rejected() {
        let bytes = [0u8; HEADER_LEN];
        for n in 0..HEADER_LEN {
            assert_eq!(
                Frame::parse(&bytes[..n]).unwrap_err(),
                EthernetError::Truncated
            );
        }
        assert!(Frame::parse(&bytes).unwrap().payload.is_empty());
    }

    #[test]
    fn macs_print_and_classify() {
        assert_eq!(
            Mac([2, 0xab, 0, 0, 0, 0x10]).to_string(),
            "02:ab:00:00:00:10"
        );
        assert!(Mac::BROADCAST.is_multicast());
        assert!(Mac([1, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!Mac([2, 0, 0, 0, 0, 1]).is_multicast());
        assert_eq!(frame_len(28), 60);
        assert_eq!(frame_len(1500), 1514);
    }
}
