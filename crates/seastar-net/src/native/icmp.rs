//! ICMP echo (RFC 792): requests parsed, replies built.
//!
//! ```
//! use seastar_net::native::icmp;
//! let request = [8, 0, 0xf7, 0xfd, 0, 1, 0, 1]; // id 1, seq 1, no data
//! let echo = icmp::Echo::parse(&request).unwrap();
//! let mut reply = [0u8; 8];
//! echo.write_reply(&mut reply);
//! assert_eq!(reply, [0, 0, 0xff, 0xfd, 0, 1, 0, 1]);
//! ```

use super::checksum::checksum;

/// Length of an ICMP echo header.
pub const HEADER_LEN: usize = 8;

/// Echo request type.
pub const ECHO_REQUEST: u8 = 8;
/// Echo reply type.
pub const ECHO_REPLY: u8 = 0;
/// Destination unreachable type.
pub const DEST_UNREACHABLE: u8 = 3;
/// Port unreachable code (of [`DEST_UNREACHABLE`]).
pub const PORT_UNREACHABLE: u8 = 3;

/// Why an ICMP message was not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IcmpError {
    /// Shorter than an echo header.
    #[error("ICMP message truncated")]
    Truncated,
    /// The checksum does not verify.
    #[error("bad ICMP checksum")]
    Checksum,
    /// A message other than an echo request (ignored).
    #[error("ICMP type {0} code {1} ignored")]
    NotEchoRequest(u8, u8),
}

/// An echo request: a view of the received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo<'a> {
    /// The whole message (header and data).
    pub message: &'a [u8],
}

impl<'a> Echo<'a> {
    /// Checks an ICMP message (the IPv4 payload) and returns it when it is
    /// an echo request.
    pub fn parse(message: &'a [u8]) -> Result<Echo<'a>, IcmpError> {
        if message.len() < HEADER_LEN {
            return Err(IcmpError::Truncated);
        }
        if checksum(message) != 0 {
            return Err(IcmpError::Checksum);
        }
        if message[0] != ECHO_REQUEST || message[1] != 0 {
            return Err(IcmpError::NotEchoRequest(message[0], message[1]));
        }
        Ok(Echo { message })
    }

    /// Length of the reply (that of the request).
    pub fn len(&self) -> usize {
        self.message.len()
    }

    /// Never true: a request has at least a header.
    pub fn is_empty(&self) -> bool {
        self.message.is_empty()
    }

    /// Writes the echo reply into the first [`len`](Self::len) bytes of
    /// `buf`: same identifier, sequence number and data.
    pub fn write_reply(&self, buf: &mut [u8]) {
        let b = &mut buf[..self.message.len()];
        b.copy_from_slice(self.message);
        b[0] = ECHO_REPLY;
        b[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

/// Writes a destination-unreachable message of `code` quoting
/// `original` (the offending IPv4 header and the first 8 bytes of its
/// payload) into `buf`; returns its length (`8 + original.len()`).
pub fn write_unreachable(buf: &mut [u8], code: u8, original: &[u8]) -> usize {
    let len = HEADER_LEN + original.len();
    let b = &mut buf[..len];
    b[..HEADER_LEN].copy_from_slice(&[DEST_UNREACHABLE, code, 0, 0, 0, 0, 0, 0]);
    b[HEADER_LEN..].copy_from_slice(original);
    let c = checksum(b);
    b[2..4].copy_from_slice(&c.to_be_bytes());
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo request: id 0x1234, seq 1, data "abcd".
    const REQUEST: [u8; 12] = [
        8, 0, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn echo_request_gets_its_reply_byte_for_byte() {
        let e = Echo::parse(&REQUEST).unwrap();
        assert_eq!(e.len(), 12);
        let mut out = [0u8; 12];
        e.write_reply(&mut out);
        assert_eq!(
            out,
            [
                0, 0, 0x29, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd'
            ]
        );
        assert_eq!(checksum(&out), 0);
    }

    #[test]
    fn malformed_and_other_messages_are_refused() {
        for n in 0..HEADER_LEN {
            assert_eq!(Echo::parse(&REQUEST[..n]), Err(IcmpError::Truncated));
        }
        let mut bad = REQUEST;
        bad[9] ^= 0xff;
        assert_eq!(Echo::parse(&bad), Err(IcmpError::Checksum));
        let mut reply = [0u8; 12];
        Echo::parse(&REQUEST).unwrap().write_reply(&mut reply);
        assert_eq!(Echo::parse(&reply), Err(IcmpError::NotEchoRequest(0, 0)));
    }

    #[test]
    fn port_unreachable_quotes_the_original() {
        let original = [0x45u8; 28];
        let mut out = [0u8; 36];
        assert_eq!(write_unreachable(&mut out, PORT_UNREACHABLE, &original), 36);
        assert_eq!(&out[..2], &[3, 3]);
        assert_eq!(&out[4..8], &[0; 4]);
        assert_eq!(&out[8..], &original);
        assert_eq!(checksum(&out), 0);
    }
}
