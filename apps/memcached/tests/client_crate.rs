//! An unchanged memcached client from crates.io (`memcache`, ASCII
//! protocol) against the server, over TCP and UDP, on two shards.

mod support;

use std::collections::HashMap;

use support::{Server, config};

fn client(url: String) -> memcache::Client {
    let c = memcache::Client::connect(url).expect("connect");
    c.set_read_timeout(Some(support::HANG_GUARD)).unwrap();
    c
}

fn exercise(c: &memcache::Client) {
    c.flush().unwrap();
    c.set("foo", "bar", 0).unwrap();
    assert_eq!(c.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    assert_eq!(c.get::<String>("missing").unwrap(), None);
    c.prepend("foo", "<").unwrap();
    c.append("foo", ">").unwrap();
    assert_eq!(c.get::<String>("foo").unwrap().as_deref(), Some("<bar>"));
    c.add("fresh", "1", 0).unwrap();
    // NOT_STORED is not an error to this client.
    c.add("fresh", "2", 0).unwrap();
    assert_eq!(c.get::<String>("fresh").unwrap().as_deref(), Some("1"));
    c.replace("fresh", "3", 0).unwrap();
    assert_eq!(c.get::<String>("fresh").unwrap().as_deref(), Some("3"));
    c.set("counter", 40u64, 0).unwrap();
    assert_eq!(c.increment("counter", 2).unwrap(), 42);
    assert_eq!(c.decrement("counter", 50).unwrap(), 0);
    assert!(c.touch("counter", 100).unwrap());
    assert!(!c.touch("nothing", 100).unwrap());
    assert!(c.delete("counter").unwrap());
    assert!(!c.delete("counter").unwrap());
    let keys: Vec<String> = (0..20).map(|i| format!("multi{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        c.set(k, i as u64, 0).unwrap();
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got: HashMap<String, u64> = c.gets(&refs).unwrap();
    assert_eq!(got.len(), 20);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(got[k], i as u64);
    }
    let (_, flags, cas) = c
        .get::<(Vec<u8>, u32, Option<u64>)>("foo")
        .unwrap()
        .unwrap();
    assert_eq!(flags, 0);
    let cas = cas.expect("gets returns a cas");
    assert!(c.cas("foo", "new", 0, cas).unwrap());
    assert!(!c.cas("foo", "stale", 0, cas).unwrap());
    assert_eq!(c.get::<String>("foo").unwrap().as_deref(), Some("new"));
    let version = c.version().unwrap();
    assert_eq!(version[0].1, "1.6.21");
    c.flush().unwrap();
    assert_eq!(c.get::<String>("foo").unwrap(), None);
}

#[test]
fn memcache_crate_over_tcp() {
    let server = Server::start(2, config());
    let c = client(format!("memcache://{}?protocol=ascii", server.tcp));
    exercise(&c);
}

/// The crate's UDP transport sends a datagram only on `flush`, which its
/// ASCII `get`, `gets`, `incr`, `decr` and `flush` never call (a client
/// bug), so those are checked over TCP here.
#[test]
fn memcache_crate_over_udp() {
    let mut cfg = config();
    cfg.udp = Some("127.0.0.1:0".parse().unwrap());
    let server = Server::start(2, cfg);
    let c = client(format!(
        "memcache+udp://{}?protocol=ascii",
        server.udp.unwrap()
    ));
    assert_eq!(c.version().unwrap()[0].1, "1.6.21");
    c.set("foo", "bar", 0).unwrap();
    c.append("foo", "!").unwrap();
    c.prepend("foo", "<").unwrap();
    c.add("foo", "ignored", 0).unwrap();
    c.replace("other", "ignored", 0).unwrap();
    assert!(c.touch("foo", 1000).unwrap());
    assert!(!c.touch("nothing", 1000).unwrap());
    let big = "x".repeat(10_000);
    c.set("big", big.as_str(), 0).unwrap();
    let tcp = client(format!("memcache://{}?protocol=ascii", server.tcp));
    assert_eq!(tcp.get::<String>("foo").unwrap().as_deref(), Some("<bar!"));
    assert_eq!(tcp.get::<String>("other").unwrap(), None);
    assert_eq!(tcp.get::<String>("big").unwrap(), Some(big));
    assert!(c.delete("foo").unwrap());
    assert!(!c.delete("foo").unwrap());
    c.flush_with_delay(0).unwrap();
    assert_eq!(tcp.get::<String>("big").unwrap(), None);
}
