//! Arbitrary bytes as a server's TLS records, answering the ClientHello of
//! the client side of seastar-net's TLS stream (its receive path,
//! `tls::fuzzing::Session`): no panic, and the plaintext buffered stays
//! bounded.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "tls_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::run(common::client(), data);
});
