//! The crossbeam anchor of the cross-shard benchmarks, shared by
//! `benches/smp.rs` and `examples/submit_throughput.rs` (included by path):
//! a client thread (the caller) and a server thread exchanging `u64`s
//! through two bounded crossbeam channels, what a user would otherwise
//! write between two threads.

use std::time::{Duration, Instant};

/// Times `n` round trips, `in_flight` at a time, over channels holding
/// `capacity` each; the server thread runs `place_server` first (to pin
/// itself), the caller is placed by the caller.
pub fn round_trips(
    n: u64,
    in_flight: u64,
    capacity: usize,
    place_server: impl FnOnce() + Send + 'static,
) -> Duration {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(capacity);
    let (rep_tx, rep_rx) = crossbeam_channel::bounded::<u64>(capacity);
    let server = std::thread::spawn(move || {
        place_server();
        for i in req_rx {
            rep_tx.send(i).unwrap();
        }
    });
    let t = Instant::now();
    let mut left = n;
    while left > 0 {
        let batch = left.min(in_flight);
        for i in 0..batch {
            req_tx.send(i).unwrap();
        }
        for _ in 0..batch {
            std::hint::black_box(rep_rx.recv().unwrap());
        }
        left -= batch;
    }
    let elapsed = t.elapsed();
    drop(req_tx);
    server.join().unwrap();
    elapsed
}
