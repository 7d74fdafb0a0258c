//! Payload serialization (postcard) and lz4 decompression over arbitrary
//! bytes.
//!
//! Invariants: no panic; whatever decodes re-encodes to bytes that decode
//! to the same value; `decompress` never returns more than its limit (and
//! refuses an announced size over it); what `compress` makes decompresses
//! back to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seastar_rpc::codec;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Pair(u32, i64),
    Named { name: String, delay_ms: u32, tags: Vec<Option<u16>> },
}

fn round_trip<T>(bytes: &[u8])
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = codec::decode::<T>(bytes) {
        let again = codec::encode(&v).expect("a decoded value encodes");
        let back: T = codec::decode(&again).expect("re-encoded bytes decode");
        assert_eq!(back, v);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Vec<u8>>(data);
    round_trip::<String>(data);
    round_trip::<(u32, String)>(data);
    round_trip::<Option<Vec<u64>>>(data);
    round_trip::<Shape>(data);
    for max in [0u32, 100, 4096, 1 << 20] {
        if let Ok(out) = codec::decompress(data, max) {
            assert!(out.len() <= max as usize);
        }
    }
    if let Some(c) = codec::compress(data) {
        assert!(c.len() < data.len());
        let back = codec::decompress(&c, data.len() as u32).expect("own output decompresses");
        assert_eq!(back, data);
    }
});
