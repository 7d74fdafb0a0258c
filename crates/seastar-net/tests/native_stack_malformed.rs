//! Every class of malformed frame is counted under its reason and
//! dropped, without a reply and without disturbing the next good frame.

#![cfg(feature = "native")]

mod native_stack_support;

use native_stack_support::*;
use seastar_net::native::{self, DropReason, UdpSocket, state::StackOptions};

/// Recomputes the IPv4 header checksum of `frame` (header at 14).
fn fix_ip(frame: &mut [u8]) {
    let ihl = usize::from(frame[14] & 0xf) * 4;
    frame[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&frame[14..14 + ihl]);
    frame[24..26].copy_from_slice(&c.to_be_bytes());
}

fn good() -> Vec<u8> {
    udp_in(5555, 7, b"payload")
}

fn edit(f: impl FnOnce(&mut Vec<u8>), fix: bool) -> Vec<u8> {
    let mut frame = good();
    f(&mut frame);
    if fix {
        fix_ip(&mut frame);
    }
    frame
}

fn cases() -> Vec<(&'static str, Vec<u8>, DropReason)> {
    let echo = icmp(8, 0, &[0, 1, 0, 1]);
    let mut bad_echo = ipv4_frame(US_MAC, PEER_MAC, PEER, US, 1, 1, &echo);
    bad_echo[14 + 20 + 5] ^= 0xff;
    let echo_reply = ipv4_frame(US_MAC, PEER_MAC, PEER, US, 1, 1, &icmp(0, 0, &[0, 1, 0, 1]));
    let short_icmp = ipv4_frame(US_MAC, PEER_MAC, PEER, US, 1, 1, &[8, 0, 0xf7, 0xff]);
    let mut arp_bad_hw = arp_request(PEER_MAC, PEER, US);
    arp_bad_hw[15] = 6;
    let mut arp_bad_op = arp_request(PEER_MAC, PEER, US);
    arp_bad_op[21] = 3;
    let mut arp_short = arp_request(PEER_MAC, PEER, US);
    arp_short.truncate(14 + 20);
    let mut ip_short = good();
    ip_short.truncate(14 + 12);
    let mut options = good();
    options[14] = 0x46;
    options[17] += 4;
    options.splice(34..34, [1, 1, 1, 0]);
    fix_ip(&mut options);
    vec![
        ("runt", vec![0xff; 13], DropReason::TooShort),
        (
            "IPv6 ethertype",
            edit(|f| f[12..14].copy_from_slice(&[0x86, 0xdd]), false),
            DropReason::BadEthertype,
        ),
        (
            "another MAC",
            edit(|f| f[5] = 0x99, false),
            DropReason::NotForUs,
        ),
        (
            "multicast MAC",
            edit(|f| f[0..6].copy_from_slice(&[1, 0, 0x5e, 0, 0, 1]), false),
            DropReason::NotForUs,
        ),
        ("IP truncated", ip_short, DropReason::TooShort),
        (
            "IP version 6",
            edit(|f| f[14] = 0x65, true),
            DropReason::BadIpHeader,
        ),
        (
            "IHL 4",
            edit(|f| f[14] = 0x44, true),
            DropReason::BadIpHeader,
        ),
        (
            "total length beyond frame",
            edit(|f| f[17] = 200, true),
            DropReason::BadIpHeader,
        ),
        (
            "total length below header",
            edit(|f| f[17] = 19, true),
            DropReason::BadIpHeader,
        ),
        (
            "IP checksum",
            edit(|f| f[25] ^= 1, false),
            DropReason::BadChecksum,
        ),
        ("IP options", options, DropReason::IpOptions),
        (
            "more fragments",
            edit(|f| f[20] = 0x20, true),
            DropReason::Fragment,
        ),
        (
            "fragment offset",
            edit(|f| f[21] = 8, true),
            DropReason::Fragment,
        ),
        ("TTL 0", edit(|f| f[22] = 0, true), DropReason::BadIpHeader),
        (
            "another IP",
            edit(|f| f[33] = 3, true),
            DropReason::NotForUs,
        ),
        (
            "TCP",
            edit(|f| f[23] = 6, true),
            DropReason::UnsupportedProtocol,
        ),
        (
            "UDP truncated",
            edit(|f| f[17] = 24, true),
            DropReason::TooShort,
        ),
        (
            "UDP length 7",
            edit(|f| f[39] = 7, false),
            DropReason::BadUdpLength,
        ),
        (
            "UDP length beyond packet",
            edit(|f| f[39] = 200, false),
            DropReason::BadUdpLength,
        ),
        (
            "UDP checksum",
            edit(|f| f[45] ^= 1, false),
            DropReason::BadChecksum,
        ),
        ("ICMP checksum", bad_echo, DropReason::BadChecksum),
        ("ICMP truncated", short_icmp, DropReason::TooShort),
        ("ICMP echo reply", echo_reply, DropReason::IcmpIgnored),
        ("ARP truncated", arp_short, DropReason::TooShort),
        ("ARP hardware type", arp_bad_hw, DropReason::BadArp),
        ("ARP op 3", arp_bad_op, DropReason::BadArp),
    ]
}

#[test]
fn every_malformed_class_is_counted_and_dropped() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let sock = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        for (name, frame, reason) in cases() {
            let before = native::stats().unwrap();
            deliver(&mut peer, &frame).await;
            assert_nothing_sent(&mut peer);
            let after = native::stats().unwrap();
            assert_eq!(
                after.drops(reason) - before.drops(reason),
                1,
                "{name}: {reason:?}"
            );
            assert_eq!(
                after.total_drops() - before.total_drops(),
                1,
                "{name}: one drop only"
            );
            assert_eq!(after.frames_in - before.frames_in, 1, "{name}");
            assert_eq!(sock.queued(), 0, "{name}: nothing delivered");
        }
        peer.send_frame(&good()).unwrap();
        let (r, buf) = sock.recv_from(Vec::with_capacity(64)).await;
        assert_eq!(&buf[..r.unwrap().0], b"payload");
        native::stop().await;
    });
}
