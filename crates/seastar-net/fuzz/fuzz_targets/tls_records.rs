//! A real client's TLS 1.3 records, delivered in pieces of any size,
//! tampered with or not, through an offloaded server session (seastar-net's
//! record layer after the handshake, `tls::fuzzing_offload::Offloaded`):
//! no panic, the bytes kept for an incomplete record stay bounded, and an
//! untampered stream reads back exactly what the client wrote.

#![no_main]

use libfuzzer_sys::fuzz_target;
use seastar_net::tls::fuzzing_offload::Offloaded;

#[path = "tls_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let c = common::configs();
    let mut pair = Offloaded::new(c.server.clone(), c.client.clone()).expect("TLS 1.3 offloaded");
    pair.run(data);
});
