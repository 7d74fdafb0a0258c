//! The fuzz targets' invariants on random mutations of real requests, so
//! `cargo test` exercises them without nightly. The seed is printed and can
//! be replayed with `MEMCACHED_TEST_SEED=<n>`.

mod common;

use common::Harness;
use memcached::protocol::{Limits, ProtocolError, parse};

const REQUESTS: &[&[u8]] = &[
    b"set k 0 0 5\r\nhello\r\n",
    b"get k a b\r\n",
    b"gats 10 k\r\n",
    b"cas k 1 2 3 4 noreply\r\nabc\r\n",
    b"append k 0 0 1\r\nx\r\n",
    b"incr k 5\r\n",
    b"decr k 1 noreply\r\n",
    b"delete k 0 noreply\r\n",
    b"touch k 10\r\n",
    b"flush_all 10 noreply\r\n",
    b"stats items\r\n",
    b"mg k v c t k s f h l O123 T10 N5 R3 E9\r\n",
    b"ms k 3 T10 F5 c MA I C1 k\r\nabc\r\n",
    b"md k I T30 x q C3 E4\r\n",
    b"ma k N0 J10 D5 MD v t c\r\n",
    b"mn\r\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutated(rng: &mut Rng) -> Vec<u8> {
    let mut input = Vec::new();
    for _ in 0..rng.below(6) + 1 {
        input.extend_from_slice(REQUESTS[rng.below(REQUESTS.len())]);
    }
    for _ in 0..rng.below(4) {
        let at = rng.below(input.len());
        match rng.below(3) {
            0 => input[at] = rng.next() as u8,
            1 => input.insert(at, b"0123456789 \r\n"[rng.below(13)]),
            _ => {
                input.remove(at);
            }
        }
    }
    input
}

#[test]
fn random_mutations_never_break_parser_or_store_invariants() {
    let seed = std::env::var("MEMCACHED_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    println!("seed {seed}");
    let mut rng = Rng(seed.max(1));
    let limits = Limits {
        max_line: 128,
        max_get_line: 256,
        max_item_size: 200,
    };
    for _ in 0..3000 {
        let input = mutated(&mut rng);
        let mut rest = &input[..];
        while let Ok(Some((_, used)))
        | Err(ProtocolError::Rejected(memcached::protocol::Rejection {
            consumed: used,
            ..
        })) = parse(rest, &limits)
        {
            assert!(used > 0 && used <= rest.len(), "seed {seed}");
            rest = &rest[used..];
        }
        let mut s = Harness::with(1024, limits);
        let split = rng.below(input.len() + 1);
        s.send(&input[..split]);
        if !s.closed {
            s.now += rng.below(20) as u32;
            s.send(&input[split..]);
        }
        assert!(s.handler.store().mem_used() <= 1024, "seed {seed}");
    }
}
