//! Payload serialization and compression.
//!
//! Payloads are serialized with [postcard](https://docs.rs/postcard): a
//! serde format with varint integers and no field names or type tags, so a
//! 64-byte `Vec<u8>` costs 65 bytes; its wire format is specified and
//! stable (1.0), it needs no schema or derive of its own (plain
//! `#[derive(Serialize, Deserialize)]`), and it compiles small. bincode 2
//! was the other candidate: comparable speed, but its serde support is a
//! secondary path next to its own derive traits, and its default
//! fixed-width integers make small messages larger.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::RpcError;
use crate::frame::FrameError;

/// Serializes `value` with postcard.
///
/// ```
/// let bytes = seastar_rpc::codec::encode(&(7u32, "hi")).unwrap();
/// assert_eq!(bytes, [7, 2, b'h', b'i']);
/// let back: (u32, String) = seastar_rpc::codec::decode(&bytes).unwrap();
/// assert_eq!(back, (7, "hi".to_string()));
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, RpcError> {
    postcard::to_stdvec(value).map_err(|e| RpcError::Codec(e.to_string()))
}

/// Deserializes a postcard payload (trailing bytes are an error).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RpcError> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(RpcError::Codec(format!("{} trailing bytes", rest.len()))),
        Err(e) => Err(RpcError::Codec(e.to_string())),
    }
}

/// Payloads shorter than this are never compressed.
pub const COMPRESS_MIN: usize = 256;

/// lz4-compresses `payload` when that makes it smaller: `Some(size
/// prefix + block)`, or `None` to send it as is.
#[cfg(feature = "lz4")]
pub fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() < COMPRESS_MIN {
        return None;
    }
    let c = lz4_flex::block::compress_prepend_size(payload);
    (c.len() < payload.len()).then_some(c)
}

/// Without the `lz4` feature nothing is compressed.
#[cfg(not(feature = "lz4"))]
pub fn compress(_payload: &[u8]) -> Option<Vec<u8>> {
    None
}

/// Decompresses a payload flagged compressed, refusing one whose stated
/// size exceeds `max` before allocating anything.
pub fn decompress(payload: &[u8], max: u32) -> Result<Vec<u8>, FrameError> {
    let Some(size) = payload.get(..4) else {
        return Err(FrameError::Compression("no size prefix".into()));
    };
    let size = u32::from_le_bytes(size.try_into().expect("4 bytes"));
    if size > max {
        return Err(FrameError::TooLarge {
            len: size.into(),
            max,
        });
    }
    decompress_block(&payload[4..], size as usize)
}

#[cfg(feature = "lz4")]
fn decompress_block(block: &[u8], size: usize) -> Result<Vec<u8>, FrameError> {
    let out = lz4_flex::block::decompress(block, size)
        .map_err(|e| FrameError::Compression(e.to_string()))?;
    if out.len() != size {
        return Err(FrameError::Compression(format!(
            "decompressed to {} bytes, {size} announced",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(not(feature = "lz4"))]
fn decompress_block(_block: &[u8], _size: usize) -> Result<Vec<u8>, FrameError> {
    Err(FrameError::Compression(
        "compressed payload, but lz4 was not negotiated".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_and_truncation_are_codec_errors() {
        let mut b = encode(&5u8).unwrap();
        b.push(0);
        assert!(matches!(decode::<u8>(&b), Err(RpcError::Codec(_))));
        assert!(matches!(
            decode::<String>(&[10, b'a']),
            Err(RpcError::Codec(_))
        ));
    }

    #[test]
    fn decompress_refuses_sizes_over_the_limit_before_allocating() {
        let mut p = u32::MAX.to_le_bytes().to_vec();
        p.extend_from_slice(&[0; 8]);
        assert!(matches!(
            decompress(&p, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(decompress(&[1, 2], 10).is_err());
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn compression_round_trips_and_skips_small_or_incompressible_payloads() {
        let big = vec![b'a'; 10_000];
        let c = compress(&big).expect("compressible");
        assert!(c.len() < 200);
        assert_eq!(decompress(&c, 10_000).unwrap(), big);
        assert!(matches!(
            decompress(&c, 9_999),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(compress(&big[..100]).is_none());
        let mut garbage = c.clone();
        garbage.truncate(c.len() - 3);
        assert!(decompress(&garbage, 10_000).is_err());
    }
}
