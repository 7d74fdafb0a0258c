//! memcached's counters and the runtime's metrics, served to Prometheus and
//! pushed to collectd (deterministic: the server runs on a manual clock).

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use seastar_core::metrics::prometheus::parse;
use seastar_net::collectd;
use support::{HANG_GUARD, Server, config, key_on};

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn scrape(server: &Server) -> String {
    let mut s = TcpStream::connect(server.prometheus.expect("prometheus on")).unwrap();
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

#[test]
fn prometheus_endpoint_exports_memcached_stats_per_shard() {
    let mut c = config();
    c.prometheus = Some("127.0.0.1:0".parse().unwrap());
    let server = Server::start(2, c);
    // One hit on a key of each shard, one miss.
    let mut client = server.client();
    for shard in 0..2 {
        let key = key_on(shard, 2, "m");
        let set = format!("set {key} 0 0 1\r\nx\r\n");
        assert_eq!(client.ask_bytes(set.as_bytes()), b"STORED\r\n");
        let get = format!("get {key}\r\n");
        let want = format!("VALUE {key} 0 1\r\nx\r\nEND\r\n");
        assert_eq!(client.ask_bytes(get.as_bytes()), want.as_bytes());
    }
    assert_eq!(client.ask_bytes(b"get nothing-here\r\n"), b"END\r\n");
    let fams = parse(&scrape(&server)).unwrap();
    let total = |name: &str| -> f64 {
        let f = &fams[name];
        let mut shards: Vec<_> = f
            .samples
            .iter()
            .map(|s| label(&s.labels, "shard").unwrap())
            .collect();
        shards.sort();
        assert_eq!(shards, vec!["0", "1"], "{name}: every shard once");
        f.samples.iter().map(|s| s.value).sum()
    };
    assert_eq!(
        fams["memcached_get_hits_total"].kind.as_deref(),
        Some("counter")
    );
    assert_eq!(total("memcached_get_hits_total"), 2.0);
    assert_eq!(total("memcached_get_misses_total"), 1.0);
    assert_eq!(total("memcached_cmd_set_total"), 2.0);
    assert_eq!(fams["memcached_curr_items"].kind.as_deref(), Some("gauge"));
    assert_eq!(total("memcached_curr_items"), 2.0);
    assert!(total("seastar_reactor_tasks_run_total") > 0.0);
    assert!(total("seastar_net_connections_accepted_total") >= 1.0);
    drop(client);
    server.stop();
}

/// The value lists of a collectd packet as (plugin instance, type, type
/// instance, first value bytes), following the sticky-part rules.
fn lists(p: &[u8]) -> Vec<(String, String, String, [u8; 8])> {
    let mut out = Vec::new();
    let (mut inst, mut ty, mut ti) = (String::new(), String::new(), String::new());
    let mut rest = p;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let body = &rest[4..len];
        let text = || String::from_utf8(body[..body.len() - 1].to_vec()).unwrap();
        match kind {
            3 => inst = text(),
            4 => ty = text(),
            5 => ti = text(),
            6 => out.push((
                inst.clone(),
                ty.clone(),
                ti.clone(),
                body[3..11].try_into().unwrap(),
            )),
            _ => {}
        }
        rest = &rest[len..];
    }
    out
}

#[test]
fn collectd_receives_a_push_every_interval() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut c = config();
    let mut cd = collectd::Config::new(rx.local_addr().unwrap(), "memcached");
    cd.interval = Duration::from_secs(5);
    c.collectd = Some(cd);
    let server = Server::start(2, c);
    let mut client = server.client();
    let key = key_on(1, 2, "c");
    assert_eq!(
        client.ask_bytes(format!("get {key}\r\n").as_bytes()),
        b"END\r\n"
    );
    server.advance(Duration::from_secs(5));
    // Read until both shards' get_misses arrived (the push spans packets).
    let mut misses = std::collections::BTreeMap::new();
    let mut buf = vec![0; 2048];
    while misses.len() < 2 {
        let n = rx.recv(&mut buf).unwrap();
        assert!(n <= 1452);
        for (inst, ty, ti, v) in lists(&buf[..n]) {
            if ti == "memcached_get_misses_total" {
                assert_eq!(ty, "derive");
                misses.insert(inst, i64::from_be_bytes(v));
            }
        }
    }
    assert_eq!(
        misses.into_iter().collect::<Vec<_>>(),
        vec![("0".into(), 0), ("1".into(), 1)]
    );
    drop(client);
    server.stop();
}
