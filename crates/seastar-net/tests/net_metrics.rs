//! seastar-net's connection and byte counters, per shard and exported.
#![cfg(feature = "metrics")]

use seastar_core::metrics::{self, Value};
use seastar_core::{Runtime, smp};
use seastar_net::{ListenOptions, TcpListener, TcpStream, stats};

/// The sum over shards of metric `name`, checking it appears once per shard.
fn total(snap: &metrics::Snapshot, name: &str) -> f64 {
    snap.shards
        .iter()
        .map(|s| {
            let found: Vec<_> = s.samples.iter().filter(|x| x.name == name).collect();
            assert_eq!(found.len(), 1, "{name} once on shard {}", s.shard);
            match found[0].value {
                Value::Counter(v) => v as f64,
                Value::Gauge(v) | Value::FloatCounter(v) => v,
                Value::Histogram(_) => panic!("{name} is a histogram"),
            }
        })
        .sum()
}

#[test]
fn connections_and_bytes_are_counted_and_exported_per_shard() {
    let (snap, local) = Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .pin(false)
        .build()
        .unwrap()
        .run(async {
            let addr = smp::invoke_on_all(|| async {
                let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
                    .await
                    .unwrap();
                let addr = l.local_addr().unwrap();
                seastar_core::spawn_local(async move {
                    // The kernel's SO_REUSEPORT hash picks the shard of
                    // each connection, so what to keep open is decided by
                    // the message, not by the order of arrival on a shard.
                    let mut held = Vec::new();
                    while let Ok((c, _)) = l.accept().await {
                        let (n, buf) = c.read(vec![0; 64]).await;
                        let n = n.unwrap();
                        c.write_all(buf[..n].to_vec()).await.0.unwrap();
                        // Keep `hello`'s connection open, close `world!!`'s.
                        if &buf[..n] == b"hello" {
                            held.push(c);
                        }
                    }
                })
                .detach();
                addr
            })
            .await
            .unwrap()[0];
            let mut clients = Vec::new();
            for msg in [&b"hello"[..], &b"world!!"[..]] {
                let c = TcpStream::connect(addr).await.unwrap();
                c.write_all(msg.to_vec()).await.0.unwrap();
                let (n, _) = c.read(vec![0; 64]).await;
                assert_eq!(n.unwrap(), msg.len());
                clients.push(c);
            }
            // The server closes the second connection after echoing.
            let (n, _) = clients[1].read(vec![0; 64]).await;
            assert_eq!(n.unwrap(), 0);
            (metrics::gather().await.unwrap(), stats::local())
        });
    assert_eq!(snap.shards.len(), 2);
    assert_eq!(total(&snap, "seastar_net_connections_accepted_total"), 2.0);
    assert_eq!(total(&snap, "seastar_net_connections_open"), 1.0);
    assert_eq!(total(&snap, "seastar_net_connections_refused_total"), 0.0);
    // Both directions: 12 bytes by the clients, 12 echoed.
    assert_eq!(total(&snap, "seastar_net_bytes_received_total"), 24.0);
    assert_eq!(total(&snap, "seastar_net_bytes_sent_total"), 24.0);
    // Shard 0 ran the clients: at least their 12 bytes each way.
    assert!(
        local.bytes_sent >= 12 && local.bytes_received >= 12,
        "{local:?}"
    );
}
