//! The native frame decoder (lz4 negotiated or not) over arbitrary bytes
//! cut into arbitrary reads, as the connection's reader feeds it.
//!
//! Input: byte 0 picks the limit and whether lz4 was negotiated, byte 1 is
//! how many cut sizes follow, then the cut sizes, then the stream.
//! Invariants (panics in `seastar_rpc::decode::invariants::feed`): no
//! panic; payloads within the limit; `NeedMore` asks for more than is
//! buffered; an error consumes nothing; the receive buffer's capacity
//! stays within twice what it holds plus one read's room, whatever length
//! a header announces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seastar_rpc::decode::invariants::feed;

fuzz_target!(|data: &[u8]| {
    let [mode, ncuts, rest @ ..] = data else {
        return;
    };
    let max_frame = [64, 1024, 65_536, 16 << 20][(mode & 3) as usize];
    let lz4 = mode & 4 != 0;
    let ncuts = (*ncuts as usize).min(rest.len());
    let (cuts, stream) = rest.split_at(ncuts);
    for f in feed(stream, cuts, max_frame, lz4) {
        assert!(f.payload.len() <= max_frame as usize);
    }
});
