//! The native stack's counters are seastar-core metrics on every shard.

#![cfg(all(feature = "native", feature = "metrics"))]

mod native_stack_support;

use native_stack_support::*;
use seastar_core::metrics::{self, Value};
use seastar_net::native::{self, UdpSocket, state::StackOptions};

fn value(s: &metrics::ShardSnapshot, name: &str, label: Option<(&str, &str)>) -> u64 {
    let found: Vec<_> = s
        .samples
        .iter()
        .filter(|x| {
            x.name == name
                && label.is_none_or(|(k, v)| x.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {label:?} once on shard {}", s.shard);
    match found[0].value {
        Value::Counter(v) => v,
        ref v => panic!("{name} is {v:?}"),
    }
}

#[test]
fn counters_are_exported_on_every_shard() {
    runtime(2, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let _sock = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        deliver(&mut peer, &[0u8; 20]).await; // not for us
        deliver(&mut peer, &arp_request(PEER_MAC, PEER, US)).await;
        let snap = metrics::gather().await.unwrap();
        assert_eq!(snap.shards.len(), 2);
        let s0 = &snap.shards[0];
        let local = native::stats().unwrap();
        assert_eq!(
            value(s0, "seastar_net_native_frames_received_total", None),
            local.frames_in
        );
        assert_eq!(local.frames_in, 2);
        assert_eq!(
            value(s0, "seastar_net_native_frames_sent_total", None),
            2,
            "announce, reply"
        );
        assert_eq!(value(s0, "seastar_net_native_bytes_sent_total", None), 120);
        assert_eq!(
            value(
                s0,
                "seastar_net_native_drops_total",
                Some(("reason", "not_for_us"))
            ),
            1
        );
        assert_eq!(
            value(
                s0,
                "seastar_net_native_drops_total",
                Some(("reason", "fragment"))
            ),
            0
        );
        assert_eq!(
            value(
                s0,
                "seastar_net_native_arp_total",
                Some(("event", "reply_out"))
            ),
            1
        );
        assert_eq!(
            value(
                s0,
                "seastar_net_native_arp_total",
                Some(("event", "announce"))
            ),
            1
        );
        let s1 = &snap.shards[1];
        assert_eq!(
            value(s1, "seastar_net_native_frames_received_total", None),
            0
        );
        assert_eq!(
            value(
                s1,
                "seastar_net_native_rss_handovers_total",
                Some(("direction", "rx_in"))
            ),
            0
        );
        native::stop().await;
    });
}
