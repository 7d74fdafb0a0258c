//! A multiplicative hasher for the stack's small keys (ports, IPv4
//! addresses): a few instructions per lookup where the standard SipHash
//! took about a hundred on every datagram. The keys come from bounded
//! sets (bound ports, on-link neighbours), so flooding one bucket chain
//! is not a concern.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes words by multiply-and-rotate (the Fx hash of rustc).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WordHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl WordHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(4);
        for c in &mut chunks {
            self.add(u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A map keyed by small words.
pub(crate) type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn spreads_ports_and_addresses() {
        let mut ports: WordMap<u16, u16> = WordMap::default();
        for p in 0..=u16::MAX {
            ports.insert(p, p);
        }
        assert_eq!(ports.len(), 65536);
        assert!((0..=u16::MAX).all(|p| ports.get(&p) == Some(&p)));
        let mut ips: WordMap<Ipv4Addr, u32> = WordMap::default();
        for i in 0..4096u32 {
            ips.insert(Ipv4Addr::from(0x0a00_0000 | i), i);
        }
        assert!((0..4096u32).all(|i| ips.get(&Ipv4Addr::from(0x0a00_0000 | i)) == Some(&i)));
        // Distinct words give distinct hashes.
        let h = |w: u32| {
            let mut s = WordHasher::default();
            s.write_u32(w);
            s.finish()
        };
        let mut seen: Vec<u64> = (0..4096).map(h).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 4096);
    }
}
