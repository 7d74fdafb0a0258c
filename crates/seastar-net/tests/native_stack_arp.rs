//! The native stack's ARP on an in-memory device: announce, replies,
//! resolution with its bounded queue, retries and expiry (manual clock).

#![cfg(feature = "native")]

mod native_stack_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use native_stack_support::*;
use seastar_core::timer::ManualClock;
use seastar_net::native::{self, DropReason, UdpSocket, arp_cache::ArpTimes, state::StackOptions};

fn peer_addr(port: u16) -> SocketAddr {
    SocketAddr::from((PEER, port))
}

#[test]
fn announces_at_start_and_answers_requests_for_our_address_only() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        peer.send_frame(&arp_request(PEER_MAC, PEER, US)).unwrap();
        assert_eq!(
            next_frame(&mut peer).await,
            arp_reply(US_MAC, US, PEER_MAC, PEER)
        );
        deliver(
            &mut peer,
            &arp_request(PEER_MAC, PEER, Ipv4Addr::new(10, 0, 0, 3)),
        )
        .await;
        assert_nothing_sent(&mut peer);
        let s = native::stats().unwrap();
        assert_eq!(
            (s.arp_announces, s.arp_requests_in, s.arp_replies_out),
            (1, 2, 1)
        );
        assert_eq!(s.drops(DropReason::NotForUs), 1);
        // The request taught us the peer: a datagram goes out at once.
        let sock = UdpSocket::bind("0.0.0.0:5000".parse().unwrap()).unwrap();
        sock.send_to(b"x".to_vec(), peer_addr(9)).await.0.unwrap();
        assert_eq!(next_frame(&mut peer).await, udp_out(5000, 9, 1, b"x"));
        native::stop().await;
    });
}

#[test]
fn datagrams_wait_for_the_resolution_then_leave_in_order() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let sock = UdpSocket::bind("10.0.0.2:5000".parse().unwrap()).unwrap();
        sock.send_to(b"one".to_vec(), peer_addr(9)).await.0.unwrap();
        sock.send_to(b"two".to_vec(), peer_addr(9)).await.0.unwrap();
        assert_eq!(next_frame(&mut peer).await, arp_request(US_MAC, US, PEER));
        assert_silent(&mut peer).await;
        peer.send_frame(&arp_reply(PEER_MAC, PEER, US_MAC, US))
            .unwrap();
        assert_eq!(next_frame(&mut peer).await, udp_out(5000, 9, 1, b"one"));
        assert_eq!(next_frame(&mut peer).await, udp_out(5000, 9, 2, b"two"));
        // Off the subnet: the gateway is resolved instead.
        sock.send_to(b"far".to_vec(), "192.168.7.7:53".parse().unwrap())
            .await
            .0
            .unwrap();
        assert_eq!(
            next_frame(&mut peer).await,
            arp_request(US_MAC, US, GATEWAY)
        );
        let s = native::stats().unwrap();
        assert_eq!((s.arp_requests_out, s.arp_replies_in, s.udp_out), (2, 1, 3));
        native::stop().await;
    });
}

#[test]
fn entries_expire_and_unanswered_resolutions_retry_then_drop() {
    runtime(1, true).run(async {
        let opts = StackOptions {
            arp: ArpTimes {
                queue_max: 2,
                ..ArpTimes::default()
            },
            ..StackOptions::default()
        };
        let mut peer = start(opts).await;
        let sock = UdpSocket::bind("0.0.0.0:5000".parse().unwrap()).unwrap();
        sock.send_to(b"a".to_vec(), peer_addr(9)).await.0.unwrap();
        assert_eq!(
            next_answering_arp(&mut peer).await,
            udp_out(5000, 9, 1, b"a")
        );
        // Still valid just before the TTL (60 s) ends ...
        ManualClock::advance(Duration::from_secs(59)).await;
        sock.send_to(b"b".to_vec(), peer_addr(9)).await.0.unwrap();
        assert_eq!(next_frame(&mut peer).await, udp_out(5000, 9, 2, b"b"));
        // ... and resolved again after it.
        ManualClock::advance(Duration::from_secs(2)).await;
        sock.send_to(b"c".to_vec(), peer_addr(9)).await.0.unwrap();
        assert_eq!(next_frame(&mut peer).await, arp_request(US_MAC, US, PEER));
        // Nobody answers: a second datagram waits, a third overflows.
        sock.send_to(b"d".to_vec(), peer_addr(9)).await.0.unwrap();
        sock.send_to(b"e".to_vec(), peer_addr(9)).await.0.unwrap();
        assert_eq!(native::stats().unwrap().drops(DropReason::ArpQueueFull), 1);
        assert_silent(&mut peer).await;
        // One retry a second, then the waiting frames are dropped at 3 s.
        ManualClock::advance(Duration::from_secs(1)).await;
        assert_eq!(next_frame(&mut peer).await, arp_request(US_MAC, US, PEER));
        ManualClock::advance(Duration::from_secs(1)).await;
        assert_eq!(next_frame(&mut peer).await, arp_request(US_MAC, US, PEER));
        ManualClock::advance(Duration::from_secs(1)).await;
        assert_silent(&mut peer).await;
        let s = native::stats().unwrap();
        assert_eq!(s.drops(DropReason::ArpUnresolved), 2);
        assert_eq!(s.arp_requests_out, 4);
        // A late reply still teaches the address.
        deliver(&mut peer, &arp_reply(PEER_MAC, PEER, US_MAC, US)).await;
        sock.send_to(b"f".to_vec(), peer_addr(9)).await.0.unwrap();
        assert_eq!(next_frame(&mut peer).await, udp_out(5000, 9, 6, b"f"));
        native::stop().await;
    });
}
