//! Standard base64 (RFC 4648, padded) for the meta `b` key flag.
//!
//! Keys are at most 250 bytes, so both directions work on small slices and
//! never allocate: decoding writes into a caller buffer, encoding appends to
//! the reply.

use bytes::{BufMut, BytesMut};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sextet(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes padded base64 `src` into `dst`; returns the decoded length, or
/// None if `src` is not valid base64, decodes to nothing, or `dst` is short.
///
/// ```
/// use memcached::protocol::base64::decode;
/// let mut out = [0u8; 8];
/// assert_eq!(decode(b"Zm9vYg==", &mut out), Some(4));
/// assert_eq!(&out[..4], b"foob");
/// assert_eq!(decode(b"Zm9", &mut out), None);
/// ```
pub fn decode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    if src.is_empty() || src.len() % 4 != 0 {
        return None;
    }
    let mut n = 0;
    let last = src.len() / 4 - 1;
    for (i, quad) in src.chunks_exact(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut acc = 0u32;
        for &b in &quad[..4 - pad] {
            acc = (acc << 6) | sextet(b)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        let take = 3 - pad;
        dst.get_mut(n..n + take)?.copy_from_slice(&bytes[..take]);
        n += take;
    }
    Some(n)
}

/// Appends the padded base64 encoding of `src` to `out`.
///
/// ```
/// use bytes::BytesMut;
/// use memcached::protocol::base64::encode;
/// let mut out = BytesMut::new();
/// encode(b"foob", &mut out);
/// assert_eq!(&out[..], b"Zm9vYg==");
/// ```
pub fn encode(src: &[u8], out: &mut BytesMut) {
    out.reserve(src.len().div_ceil(3) * 4);
    for chunk in src.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let acc = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.put_u8(ALPHABET[((acc >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.put_u8(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0u8..=255).collect();
        for len in 0..40 {
            let mut enc = BytesMut::new();
            encode(&data[..len], &mut enc);
            let mut dec = [0u8; 64];
            if len == 0 {
                assert_eq!(decode(&enc, &mut dec), None);
            } else {
                assert_eq!(decode(&enc, &mut dec), Some(len));
                assert_eq!(&dec[..len], &data[..len]);
            }
        }
    }

    #[test]
    fn rejects_bad_padding_and_alphabet() {
        let mut out = [0u8; 16];
        assert_eq!(decode(b"Zm=v", &mut out), None);
        assert_eq!(decode(b"Zg==Zg==", &mut out), None);
        assert_eq!(decode(b"Z===", &mut out), None);
        assert_eq!(decode(b"Zm9*", &mut out), None);
    }

    #[test]
    fn short_destination_is_an_error_not_a_panic() {
        let mut out = [0u8; 2];
        assert_eq!(decode(b"Zm9v", &mut out), None);
    }
}
