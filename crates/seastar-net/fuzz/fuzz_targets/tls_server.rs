//! Arbitrary bytes as a client's TLS records, through the server side of
//! seastar-net's TLS stream (its receive path, `tls::fuzzing::Session`):
//! no panic, and the plaintext buffered stays bounded.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "tls_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::run(common::server(), data);
});
