//! The Internet checksum (RFC 1071), summed incrementally.
//!
//! ```
//! use seastar_net::native::checksum::Checksum;
//! // The example header of RFC 1071 section 3, split across two adds.
//! let mut c = Checksum::new();
//! c.add(&[0x00, 0x01, 0xf2]);
//! c.add(&[0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
//! assert_eq!(c.finish(), !0xddf2);
//! ```

/// A running one's-complement sum over a byte stream.
///
/// Bytes may be added in pieces of any length: an odd piece's last byte
/// pairs with the next piece's first, as if the pieces were one buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    sum: u64,
    odd: Option<u8>,
}

impl Checksum {
    /// An empty sum.
    pub fn new() -> Checksum {
        Checksum::default()
    }

    /// Adds `data` to the sum.
    pub fn add(&mut self, mut data: &[u8]) {
        if let Some(hi) = self.odd.take() {
            match data.split_first() {
                Some((&lo, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([hi, lo]));
                    data = rest;
                }
                None => {
                    self.odd = Some(hi);
                    return;
                }
            }
        }
        let even = data.len() & !1;
        self.sum += u64::from(sum(&data[..even]));
        if even < data.len() {
            self.odd = Some(data[even]);
        }
    }

    /// Adds one 16-bit word (which must fall on an even offset).
    pub fn add_u16(&mut self, w: u16) {
        self.sum += u64::from(w);
    }

    /// Adds a 32-bit value as two words (an IPv4 address).
    pub fn add_u32(&mut self, w: u32) {
        self.sum += u64::from(w >> 16) + u64::from(w & 0xffff);
    }

    /// The folded one's-complement sum, not complemented (a partial sum
    /// to add to another with [`add_u32`](Self::add_u32)).
    pub fn sum(&self) -> u16 {
        !self.finish()
    }

    /// The folded one's-complement sum, complemented: the value to store in
    /// a header (0 when the data, checksum field included, verifies).
    pub fn finish(&self) -> u16 {
        let mut sum = self.sum;
        if let Some(hi) = self.odd {
            sum += u64::from(u16::from_be_bytes([hi, 0]));
        }
        !fold(sum)
    }
}

/// The folded one's-complement sum of `data` as big-endian 16-bit words
/// (an odd last byte is the high byte of a word whose low byte is zero),
/// not complemented: a partial sum, e.g. of a payload, to add to a
/// [`Checksum`] with [`Checksum::add_u16`].
///
/// Eight bytes at a time as one native-endian 64-bit word, its carries
/// added back in (a one's-complement sum modulo 2^64 - 1, which 0xffff
/// divides: folding it gives the sum of the 16-bit words); the tail as
/// one 4-, 2- and 1-byte word each, all at even offsets. The sum does not
/// depend on byte order (RFC 1071 2(B)): the folded native-order sum,
/// byte-swapped on a little-endian machine, is the big-endian one.
pub fn sum(data: &[u8]) -> u16 {
    let mut quads = data.chunks_exact(8);
    let mut wide = 0u64;
    for q in &mut quads {
        let w = u64::from_ne_bytes(*q.first_chunk::<8>().expect("8 bytes"));
        let (s, carry) = wide.overflowing_add(w);
        wide = s + u64::from(carry);
    }
    // At most 7 bytes left: their words sum below 2^34, which cannot
    // overflow `tail`.
    let mut rest = quads.remainder();
    let mut tail = 0u64;
    if let Some((w, r)) = rest.split_first_chunk::<4>() {
        tail += u64::from(u32::from_ne_bytes(*w));
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<2>() {
        tail += u64::from(u16::from_ne_bytes(*w));
        rest = r;
    }
    if let [b] = rest {
        tail += u64::from(u16::from_ne_bytes([*b, 0]));
    }
    let (s, carry) = wide.overflowing_add(tail);
    u16::from_be(fold(s + u64::from(carry)))
}

/// A sum of 16-bit words (or of wider words, their carries added back)
/// folded to 16 bits with end-around carries: 2^16 is 1 modulo 0xffff, so
/// each fold keeps the one's-complement value. Not complemented.
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum of `data` in one go.
pub fn checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add(data);
    c.finish()
}

/// The checksum after one 16-bit word of the covered data changed from
/// `old` to `new` (RFC 1624, equation 3), without summing the data again.
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    /// RFC 1071 word by word, as the reference.
    fn naive(data: &[u8]) -> u16 {
        let mut sum = 0u64;
        for c in data.chunks(2) {
            sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn matches_the_word_by_word_sum_at_every_length() {
        let mut x = 0x2545_f491_u32;
        let data: Vec<u8> = (0..1600)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for len in 0..data.len() {
            assert_eq!(checksum(&data[..len]), naive(&data[..len]), "length {len}");
        }
        assert_eq!(checksum(&[0xff; 1500]), naive(&[0xff; 1500]));
    }

    #[test]
    fn the_partial_sum_is_the_complement_of_the_checksum() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            let d = &data[..len];
            let want = !naive(d);
            // Zero and 0xffff are the same one's-complement number.
            assert!(
                sum(d) == want || sum(d) == !want && want == 0,
                "length {len}"
            );
        }
        assert_eq!(sum(&[0xff; 64]), 0xffff);
    }

    #[test]
    fn pieces_of_any_parity_sum_as_one_buffer() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let whole = checksum(&data);
        for split in [0, 1, 2, 3, 500, 999, 1000, 1001] {
            for split2 in [split, (split + 7).min(1001)] {
                let mut c = Checksum::new();
                c.add(&data[..split]);
                c.add(&data[split..split2]);
                c.add(&data[split2..]);
                assert_eq!(c.finish(), whole, "split at {split}/{split2}");
            }
        }
    }

    #[test]
    fn data_with_its_checksum_verifies_to_zero() {
        let mut data = vec![
            0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn incremental_update_matches_a_full_sum() {
        let mut data = [
            0x45u8, 0x00, 0x00, 0x1c, 0xbe, 0xef, 0x40, 0x00, 64, 17, 0, 0, 192, 168, 1, 1, 192,
            168, 1, 2,
        ];
        let before = checksum(&data);
        for new in [0u16, 1, 0x0800, 0xffff, 0x1234] {
            let old = u16::from_be_bytes([data[8], data[9]]);
            let mut d = data;
            d[8..10].copy_from_slice(&new.to_be_bytes());
            assert_eq!(
                update(before, old, new),
                checksum(&d),
                "{old:#x} -> {new:#x}"
            );
        }
        data[0] = 0;
        assert_ne!(checksum(&data), before);
    }

    #[test]
    fn add_u32_is_two_words() {
        let mut a = Checksum::new();
        a.add_u32(0xc0a8_0102);
        assert_eq!(a.finish(), checksum(&[0xc0, 0xa8, 0x01, 0x02]));
    }
}
