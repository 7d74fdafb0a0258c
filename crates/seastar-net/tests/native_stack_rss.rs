//! Software RSS with 2 shards and 1 queue: frames owned by shard 1 are
//! handed to it by shard 0 (which has the device), and shard 1's replies
//! are handed back to shard 0 to be sent.

#![cfg(feature = "native")]

mod native_stack_support;

use std::net::SocketAddr;

use native_stack_support::*;
use seastar_core::{shard_id, smp};
use seastar_net::native::{self, UdpSocket, rss, state::StackOptions};

/// An echo on port 7 of the calling shard that appends its shard id.
async fn serve_echo(count: usize) {
    let sock = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
    seastar_core::spawn_local(async move {
        for _ in 0..count {
            let (r, mut buf) = sock.recv_from(Vec::with_capacity(64)).await;
            let (_, from) = r.unwrap();
            buf.push(shard_id() as u8);
            sock.send_to(buf, from).await.0.unwrap();
        }
    })
    .detach();
}

/// The source port and payload of a UDP frame from us to the peer.
fn parse_reply(f: &[u8]) -> (u16, u16, Vec<u8>) {
    assert_eq!(&f[0..6], &PEER_MAC);
    assert_eq!(&f[12..14], &[8, 0]);
    assert_eq!(checksum(&f[14..34]), 0, "IP checksum");
    let sport = u16::from_be_bytes([f[34], f[35]]);
    let dport = u16::from_be_bytes([f[36], f[37]]);
    let len = usize::from(u16::from_be_bytes([f[38], f[39]]));
    let id = u16::from_be_bytes([f[18], f[19]]);
    let payload = f[42..34 + len].to_vec();
    assert_eq!(f, udp_out(sport, dport, id, &payload), "well formed");
    (sport, dport, payload)
}

#[test]
fn flows_are_served_by_their_owner_with_one_queue_for_two_shards() {
    runtime(2, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let ports: Vec<u16> = (40000..40012).collect();
        let owners: Vec<usize> = ports
            .iter()
            .map(|&p| rss::udp_owner(PEER, US, p, 7, 2))
            .collect();
        let on_1 = owners.iter().filter(|&&o| o == 1).count();
        assert!(on_1 > 0 && on_1 < ports.len(), "both shards own some flows");
        let n0 = ports.len() - on_1;
        serve_echo(n0).await;
        smp::submit_to(1, move || serve_echo(on_1)).await.unwrap();

        for &p in &ports {
            peer.send_frame(&udp_in(p, 7, b"hi")).unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < ports.len() {
            let f = next_answering_arp(&mut peer).await;
            let (sport, dport, payload) = parse_reply(&f);
            assert_eq!(sport, 7);
            let i = ports
                .iter()
                .position(|&p| p == dport)
                .expect("a reply to a sender");
            assert_eq!(
                payload,
                [b'h', b'i', owners[i] as u8],
                "served by its owner"
            );
            seen.push(dport);
        }
        seen.sort_unstable();
        assert_eq!(seen, ports);

        let (s0, s1) = (stats_on(0).await, stats_on(1).await);
        assert_eq!(s0.handover_rx_out, on_1 as u64);
        assert_eq!(s1.handover_rx_in, on_1 as u64);
        assert_eq!(
            s1.handover_tx_out as usize,
            on_1 + s1.arp_requests_out as usize
        );
        assert_eq!(s0.handover_tx_in, s1.handover_tx_out);
        assert_eq!((s0.udp_in, s1.udp_in), (n0 as u64, on_1 as u64));
        assert_eq!(s0.total_drops() + s1.total_drops(), 0);
        native::stop().await;
    });
}

#[test]
fn a_client_on_the_shard_without_a_device_gets_its_replies() {
    runtime(2, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let to: SocketAddr = "10.0.0.1:9".parse().unwrap();
        let client = smp::submit_to(1, move || async move {
            let sock = UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
            let port = sock.local_addr().unwrap().port();
            sock.send_to(b"q".to_vec(), to).await.0.unwrap();
            let (r, buf) = sock.recv_from(Vec::with_capacity(16)).await;
            let (n, from) = r.unwrap();
            (port, buf[..n].to_vec(), from)
        });
        let f = next_answering_arp(&mut peer).await;
        let (sport, dport, payload) = parse_reply(&f);
        assert_eq!(
            (sport % 2, dport, payload.as_slice()),
            (1, 9, &b"q"[..]),
            "an odd port: shard 1's"
        );
        peer.send_frame(&udp_in(9, sport, b"answer")).unwrap();
        let (port, data, from) = client.await.unwrap();
        assert_eq!((port, data.as_slice(), from), (sport, &b"answer"[..], to));
        assert_eq!(stats_on(0).await.handover_rx_out, 1);
        native::stop().await;
    });
}
