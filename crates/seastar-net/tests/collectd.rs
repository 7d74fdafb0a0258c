//! The collectd client against a decoder written from collectd's network
//! protocol description (https://collectd.org/wiki/index.php/Binary_protocol),
//! independent of the encoder.
#![cfg(feature = "collectd")]

use std::collections::BTreeMap;
use std::time::Duration;

use seastar_core::metrics::facade::{counter, gauge, histogram};
use seastar_core::timer::ManualClock;
use seastar_core::{Runtime, shard_id, smp, yield_now};
use seastar_net::UdpSocket;
use seastar_net::collectd::{Client, Config};

/// One decoded part.
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Host(String),
    Time(u64),
    TimeHr(u64),
    Plugin(String),
    PluginInstance(String),
    Type(String),
    TypeInstance(String),
    Values(Vec<Val>),
    Interval(u64),
    IntervalHr(u64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Val {
    Counter(u64),
    Gauge(f64),
    Derive(i64),
    Absolute(u64),
}

/// Splits a packet into parts, checking every length and terminator.
fn decode_parts(p: &[u8]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        assert!(rest.len() >= 4, "truncated part header");
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        assert!(
            len >= 4 && len <= rest.len(),
            "part length {len} out of bounds"
        );
        let body = &rest[4..len];
        let string = || {
            assert_eq!(body.last(), Some(&0), "string part not NUL-terminated");
            let s = &body[..body.len() - 1];
            assert!(!s.contains(&0), "NUL inside a string");
            assert!(s.len() <= 63, "string longer than 63 bytes");
            String::from_utf8(s.to_vec()).unwrap()
        };
        let number = || {
            assert_eq!(len, 12, "numeric part of length {len}");
            u64::from_be_bytes(body.try_into().unwrap())
        };
        parts.push(match kind {
            0 => Part::Host(string()),
            1 => Part::Time(number()),
            2 => Part::Plugin(string()),
            3 => Part::PluginInstance(string()),
            4 => Part::Type(string()),
            5 => Part::TypeInstance(string()),
            6 => {
                let n = usize::from(u16::from_be_bytes([body[0], body[1]]));
                assert_eq!(len, 4 + 2 + 9 * n, "values part length");
                let types = &body[2..2 + n];
                let data = &body[2 + n..];
                Part::Values(
                    (0..n)
                        .map(|i| {
                            let b: [u8; 8] = data[8 * i..8 * i + 8].try_into().unwrap();
                            match types[i] {
                                0 => Val::Counter(u64::from_be_bytes(b)),
                                1 => Val::Gauge(f64::from_le_bytes(b)),
                                2 => Val::Derive(i64::from_be_bytes(b)),
                                3 => Val::Absolute(u64::from_be_bytes(b)),
                                t => panic!("unknown data source type {t}"),
                            }
                        })
                        .collect(),
                )
            }
            7 => Part::Interval(number()),
            8 => Part::TimeHr(number()),
            9 => Part::IntervalHr(number()),
            k => panic!("unknown part type {k:#06x}"),
        });
        rest = &rest[len..];
    }
    parts
}

/// A value list with its (sticky) identifier, as a collectd server sees it.
#[derive(Clone, Debug, PartialEq)]
struct ValueList {
    host: String,
    time_hr: u64,
    interval_hr: u64,
    plugin: String,
    plugin_instance: String,
    type_: String,
    type_instance: String,
    values: Vec<Val>,
}

/// Applies the parts of one packet in order; the state starts empty in
/// every packet, so every value list must be fully identified within it.
fn value_lists(packet: &[u8]) -> Vec<ValueList> {
    let mut out = Vec::new();
    let mut cur: BTreeMap<&str, String> = BTreeMap::new();
    let (mut time, mut interval) = (None, None);
    for part in decode_parts(packet) {
        match part {
            Part::Host(s) => drop(cur.insert("host", s)),
            Part::Plugin(s) => drop(cur.insert("plugin", s)),
            Part::PluginInstance(s) => drop(cur.insert("plugin_instance", s)),
            Part::Type(s) => drop(cur.insert("type", s)),
            Part::TypeInstance(s) => drop(cur.insert("type_instance", s)),
            Part::TimeHr(t) => time = Some(t),
            Part::IntervalHr(t) => interval = Some(t),
            Part::Time(_) | Part::Interval(_) => panic!("low-resolution parts not expected"),
            Part::Values(values) => {
                let get = |k: &str| cur.get(k).cloned().unwrap_or_else(|| panic!("{k} missing"));
                out.push(ValueList {
                    host: get("host"),
                    time_hr: time.expect("time missing"),
                    interval_hr: interval.expect("interval missing"),
                    plugin: get("plugin"),
                    plugin_instance: get("plugin_instance"),
                    type_: get("type"),
                    type_instance: get("type_instance"),
                    values,
                });
            }
        }
    }
    out
}

fn runtime() -> Runtime {
    Runtime::builder()
        .shards(2)
        .manual_clock()
        .handle_signals(false)
        .pin(false)
        .build()
        .unwrap()
}

/// Waits until the client has finished `n` pushes, then reads that push's
/// packets (already in the receiver's socket buffer).
async fn read_push(client: &Client, rx: &UdpSocket, n: u64) -> Vec<Vec<u8>> {
    client.pushed(n).await;
    let mut packets = Vec::new();
    for _ in 0..client.stats().last_packets {
        let (r, buf) = rx.recv_from(Vec::with_capacity(65536)).await;
        let (len, _) = r.unwrap();
        assert_eq!(len, buf.len());
        packets.push(buf);
    }
    packets
}

fn config(rx: &UdpSocket) -> Config {
    Config {
        address: rx.local_addr().unwrap(),
        interval: Duration::from_secs(10),
        host: "testhost".into(),
        plugin: "testapp".into(),
        max_packet: 1452,
    }
}

#[test]
fn pushes_every_interval_with_every_shard_once() {
    let (first, second, pushes_before) = runtime().run(async {
        smp::invoke_on_all(|| async {
            let me = shard_id() as u64;
            counter!("t_hits_total", "path" => "/a/b").increment(me + 1);
            gauge!("t_temperature").set(20.5 + me as f64);
            histogram!("t_latency_seconds").record(0.02);
        })
        .await
        .unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = Client::start(config(&rx)).unwrap();
        ManualClock::advance(Duration::from_secs(9)).await;
        for _ in 0..50 {
            yield_now().await;
        }
        let pushes_before = client.stats().pushes;
        ManualClock::advance(Duration::from_secs(1)).await;
        let first = read_push(&client, &rx, 1).await;
        ManualClock::advance(Duration::from_secs(10)).await;
        let second = read_push(&client, &rx, 2).await;
        assert_eq!(client.stats().errors, 0);
        client.stop();
        (first, second, pushes_before)
    });
    assert_eq!(pushes_before, 0, "nothing before the first interval");
    let lists = |packets: &[Vec<u8>]| -> Vec<ValueList> {
        packets
            .iter()
            .flat_map(|p| {
                assert!(p.len() <= 1452);
                value_lists(p)
            })
            .collect()
    };
    let (a, b) = (lists(&first), lists(&second));
    for l in a.iter().chain(&b) {
        assert_eq!(l.host, "testhost");
        assert_eq!(l.plugin, "testapp");
        assert_eq!(l.interval_hr, 10 << 30);
        assert!(["0", "1"].contains(&l.plugin_instance.as_str()));
        assert!(
            ["derive", "gauge"].contains(&l.type_.as_str()),
            "{}",
            l.type_
        );
        assert_eq!(l.values.len(), 1);
    }
    // Pushes exactly one interval apart on the runtime's clock.
    assert_eq!(b[0].time_hr - a[0].time_hr, 10 << 30);
    let find = |ls: &[ValueList], shard: &str, ti: &str| -> Vec<Val> {
        ls.iter()
            .filter(|l| l.plugin_instance == shard && l.type_instance == ti)
            .flat_map(|l| l.values.clone())
            .collect()
    };
    for (shard, hits, temp) in [("0", 1, 20.5), ("1", 2, 21.5)] {
        assert_eq!(
            find(&a, shard, "t_hits_total;path=_a_b"),
            vec![Val::Derive(hits)]
        );
        assert_eq!(find(&a, shard, "t_temperature"), vec![Val::Gauge(temp)]);
        assert_eq!(
            find(&a, shard, "t_latency_seconds_bucket;le=0.01"),
            vec![Val::Derive(0)]
        );
        assert_eq!(
            find(&a, shard, "t_latency_seconds_bucket;le=0.025"),
            vec![Val::Derive(1)]
        );
        assert_eq!(
            find(&a, shard, "t_latency_seconds_bucket;le=+Inf"),
            vec![Val::Derive(1)]
        );
        assert_eq!(
            find(&a, shard, "t_latency_seconds_count"),
            vec![Val::Derive(1)]
        );
        assert_eq!(
            find(&a, shard, "t_latency_seconds_sum"),
            vec![Val::Gauge(0.02)]
        );
        let tasks = find(&a, shard, "seastar_reactor_tasks_run_total");
        assert_eq!(tasks.len(), 1, "built-in metrics of shard {shard}, once");
    }
    // Every (shard, type instance) appears once per push.
    let mut seen = std::collections::HashSet::new();
    for l in &a {
        assert!(
            seen.insert((l.plugin_instance.clone(), l.type_instance.clone())),
            "{l:?} twice"
        );
    }
}

#[test]
fn large_pushes_split_into_self_contained_packets() {
    let packets = runtime().run(async {
        for i in 0..300 {
            counter!(format!("t_many_metrics_with_a_long_name_{i:04}")).increment(i);
        }
        let rx = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = Client::start(config(&rx)).unwrap();
        ManualClock::advance(Duration::from_secs(10)).await;
        read_push(&client, &rx, 1).await
    });
    assert!(packets.len() > 5, "{} packets", packets.len());
    let mut values = BTreeMap::new();
    for p in &packets {
        assert!(p.len() <= 1452, "{}", p.len());
        let parts = decode_parts(p);
        // Each packet opens with the full identifier of its first list.
        assert!(matches!(parts[0], Part::Host(_)));
        assert!(matches!(parts[1], Part::TimeHr(_)));
        assert!(matches!(parts[2], Part::IntervalHr(_)));
        assert!(matches!(parts[3], Part::Plugin(_)));
        assert!(matches!(parts[4], Part::PluginInstance(_)));
        assert!(matches!(parts[5], Part::Type(_)));
        assert!(matches!(parts[6], Part::TypeInstance(_)));
        assert!(matches!(parts[7], Part::Values(_)));
        for l in value_lists(p) {
            if l.plugin_instance == "0" && l.type_instance.starts_with("t_many") {
                values.insert(l.type_instance, l.values[0]);
            }
        }
    }
    assert_eq!(values.len(), 300);
    assert_eq!(
        values["t_many_metrics_with_a_long_name_0299"],
        Val::Derive(299)
    );
}

#[test]
fn a_zero_interval_is_refused() {
    runtime().run(async {
        let rx = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut c = config(&rx);
        c.interval = Duration::ZERO;
        let err = Client::start(c).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}
