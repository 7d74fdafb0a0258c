//! Receive-side scaling in software: the Toeplitz hash as NICs compute it,
//! and the rule that maps a flow to its shard.
//!
//! # Which shard owns a frame
//!
//! * A UDP datagram whose destination port is in the ephemeral range
//!   ([`EPHEMERAL`], ports the stack hands out for `bind(…:0)`) belongs to
//!   shard `port % shards`: the shard that allocated the port, so replies
//!   to a client socket come back to it.
//! * Any other UDP datagram belongs to shard
//!   `toeplitz(src ip, dst ip, src port, dst port) % shards`, with the
//!   standard Microsoft key ([`MICROSOFT_KEY`]), as a NIC with RSS would
//!   pick its queue: a server binds its well-known port on every shard.
//! * ARP and ICMP are handled by the shard that received them (learned ARP
//!   mappings are then shared with every shard).
//!
//! ```
//! use std::net::Ipv4Addr;
//! use seastar_net::native::rss;
//! // The first verification vector of Microsoft's RSS documentation.
//! let h = rss::toeplitz_v4(
//!     &rss::MICROSOFT_KEY,
//!     Ipv4Addr::new(66, 9, 149, 187),
//!     Ipv4Addr::new(161, 142, 100, 80),
//!     Some((2794, 1766)),
//! );
//! assert_eq!(h, 0x51cc_c178);
//! ```

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

/// The 40-byte key of Microsoft's RSS specification (the default of most
/// NIC drivers).
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The ephemeral ports: `port % shards` is the owner.
pub const EPHEMERAL: RangeInclusive<u16> = 49152..=65535;

/// The Toeplitz hash of `input` under `key` (the key must be at least 4
/// bytes longer than the input).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    assert!(key.len() >= input.len() + 4, "Toeplitz key too short");
    let mut result = 0u32;
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in input.iter().enumerate() {
        let next = key[i + 4];
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                result ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    result
}

/// The hash of an IPv4 packet from `src` to `dst`, with its ports when
/// given (`(src port, dst port)`), in the order NICs hash them.
pub fn toeplitz_v4(key: &[u8], src: Ipv4Addr, dst: Ipv4Addr, ports: Option<(u16, u16)>) -> u32 {
    let mut input = [0u8; 12];
    input[0..4].copy_from_slice(&src.octets());
    input[4..8].copy_from_slice(&dst.octets());
    match ports {
        Some((s, d)) => {
            input[8..10].copy_from_slice(&s.to_be_bytes());
            input[10..12].copy_from_slice(&d.to_be_bytes());
            toeplitz(key, &input)
        }
        None => toeplitz(key, &input[..8]),
    }
}

/// The shard owning a UDP datagram from `src:src_port` to
/// `dst:dst_port`, by the rule of this module.
pub fn udp_owner(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    shards: usize,
) -> usize {
    if shards <= 1 {
        return 0;
    }
    if EPHEMERAL.contains(&dst_port) {
        return usize::from(dst_port) % shards;
    }
    toeplitz_v4(&MICROSOFT_KEY, src, dst, Some((src_port, dst_port))) as usize % shards
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address and a port.
    type End = (Ipv4Addr, u16);

    /// Microsoft's "Verifying the RSS Hash Calculation" vectors for IPv4:
    /// (destination, source, IPv4-only hash, IPv4-with-TCP hash).
    const VECTORS: [(End, End, u32, u32); 5] = [
        (
            (Ipv4Addr::new(161, 142, 100, 80), 1766),
            (Ipv4Addr::new(66, 9, 149, 187), 2794),
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            (Ipv4Addr::new(65, 69, 140, 83), 4739),
            (Ipv4Addr::new(199, 92, 111, 2), 14230),
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            (Ipv4Addr::new(12, 22, 207, 184), 38024),
            (Ipv4Addr::new(24, 19, 198, 95), 12898),
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            (Ipv4Addr::new(209, 142, 163, 6), 2217),
            (Ipv4Addr::new(38, 27, 205, 30), 48228),
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            (Ipv4Addr::new(202, 188, 127, 2), 1303),
            (Ipv4Addr::new(153, 39, 163, 191), 44251),
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    #[test]
    fn microsoft_verification_vectors() {
        for ((dst, dport), (src, sport), ip_only, with_ports) in VECTORS {
            assert_eq!(
                toeplitz_v4(&MICROSOFT_KEY, src, dst, None),
                ip_only,
                "{src} -> {dst}"
            );
            assert_eq!(
                toeplitz_v4(&MICROSOFT_KEY, src, dst, Some((sport, dport))),
                with_ports,
                "{src}:{sport} -> {dst}:{dport}"
            );
        }
    }

    #[test]
    fn owner_rule() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(udp_owner(a, b, 1234, 50001, 2), 1);
        assert_eq!(udp_owner(a, b, 1234, 50002, 2), 0);
        assert_eq!(udp_owner(a, b, 1234, 50001, 1), 0);
        let h = toeplitz_v4(&MICROSOFT_KEY, a, b, Some((1234, 11211)));
        assert_eq!(udp_owner(a, b, 1234, 11211, 3), h as usize % 3);
        // Both owners occur among a few source ports.
        let owners: std::collections::HashSet<_> =
            (1000..1016).map(|p| udp_owner(a, b, p, 11211, 2)).collect();
        assert_eq!(owners.len(), 2);
    }
}
