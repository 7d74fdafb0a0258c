//! The server over real TCP, in process: every command family byte for
//! byte, pipelining, forwarding between two shards, merged stats,
//! eviction, expiry on the manual clock, connection limits and closing.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::{Client, Server, config, key_on, keys_on, stat_in};

/// Both shards' keys, so that whichever shard serves the connection, one
/// key is local and the other forwarded.
fn two_shard_keys(prefix: &str) -> [String; 2] {
    [key_on(0, 2, prefix), key_on(1, 2, prefix)]
}

/// The text protocol's families, exact replies, for one key.
fn text_commands(c: &mut Client, k: &str) {
    c.expect(&format!("get {k}\r\n"), "END\r\n");
    c.expect(&format!("set {k} 5 0 3\r\nbar\r\n"), "STORED\r\n");
    c.expect(
        &format!("get {k}\r\n"),
        &format!("VALUE {k} 5 3\r\nbar\r\nEND\r\n"),
    );
    c.expect(&format!("add {k} 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
    c.expect(&format!("replace {k} 7 0 3\r\nbaz\r\n"), "STORED\r\n");
    c.expect(&format!("append {k} 0 0 2\r\n!!\r\n"), "STORED\r\n");
    c.expect(&format!("prepend {k} 0 0 2\r\n<<\r\n"), "STORED\r\n");
    c.expect(
        &format!("get {k}\r\n"),
        &format!("VALUE {k} 7 7\r\n<<baz!!\r\nEND\r\n"),
    );
    let gets = c.ask(&format!("gets {k}\r\n"));
    let cas: u64 = gets
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no cas in {gets:?}"));
    c.expect(
        &format!("cas {k} 1 0 1 {}\r\nz\r\n", cas + 1000),
        "EXISTS\r\n",
    );
    c.expect(&format!("cas {k} 1 0 1 {cas}\r\nz\r\n"), "STORED\r\n");
    c.expect(&format!("touch {k} 100\r\n"), "TOUCHED\r\n");
    c.expect(
        &format!("gat 0 {k}\r\n"),
        &format!("VALUE {k} 1 1\r\nz\r\nEND\r\n"),
    );
    assert!(
        c.ask(&format!("gats 0 {k}\r\n"))
            .starts_with(&format!("VALUE {k} 1 1 "))
    );
    c.expect(&format!("set {k} 0 0 2\r\n10\r\n"), "STORED\r\n");
    c.expect(&format!("incr {k} 5\r\n"), "15\r\n");
    c.expect(&format!("decr {k} 20\r\n"), "0\r\n");
    c.expect(
        &format!("incr {k} 18446744073709551615\r\n"),
        "18446744073709551615\r\n",
    );
    c.expect(&format!("incr {k} 2\r\n"), "1\r\n");
    c.expect(&format!("delete {k}\r\n"), "DELETED\r\n");
    c.expect(&format!("delete {k}\r\n"), "NOT_FOUND\r\n");
    c.expect(&format!("incr {k} 1\r\n"), "NOT_FOUND\r\n");
    c.expect(&format!("touch {k} 1\r\n"), "NOT_FOUND\r\n");
    c.expect(&format!("cas {k} 0 0 1 1\r\nz\r\n"), "NOT_FOUND\r\n");
    c.expect(&format!("replace {k} 0 0 1\r\nz\r\n"), "NOT_STORED\r\n");
    c.expect(&format!("set {k} 0 0 3\r\nabc\r\n"), "STORED\r\n");
    c.expect(
        &format!("incr {k} 1\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    // noreply on every command that takes it.
    c.expect(
        &format!(
            "set {k} 0 0 1 noreply\r\na\r\nadd {k} 0 0 1 noreply\r\nb\r\n\
             replace {k} 0 0 1 noreply\r\n1\r\nappend {k} 0 0 1 noreply\r\n2\r\n\
             prepend {k} 0 0 1 noreply\r\n3\r\nincr {k} 1 noreply\r\ndecr {k} 2 noreply\r\n\
             touch {k} 0 noreply\r\ncas {k} 0 0 1 1 noreply\r\nx\r\n"
        ),
        "",
    );
    c.expect(
        &format!("get {k}\r\n"),
        &format!("VALUE {k} 0 3\r\n311\r\nEND\r\n"),
    );
    c.expect(&format!("delete {k} noreply\r\n"), "");
    c.expect(&format!("get {k}\r\n"), "END\r\n");
}

/// The meta protocol's common flags for one key.
fn meta_commands(c: &mut Client, k: &str) {
    c.expect(&format!("mg {k} v\r\n"), "EN\r\n");
    c.expect(&format!("ms {k} 2 F9 T0\r\nhi\r\n"), "HD\r\n");
    c.expect(
        &format!("mg {k} v f k t s\r\n"),
        &format!("VA 2 f9 k{k} t-1 s2\r\nhi\r\n"),
    );
    // q hides misses (EN), not hits.
    c.expect(&format!("mg {k} O123 q\r\n"), "HD O123\r\n");
    c.expect(&format!("mg missing-{k} v q\r\nmn\r\n"), "MN\r\n");
    c.expect(&format!("ms {k} 2 MA\r\n!!\r\n"), "HD\r\n");
    c.expect(&format!("mg {k} v\r\n"), "VA 4\r\nhi!!\r\n");
    c.expect(&format!("md {k} q\r\n"), "");
    c.expect(&format!("md {k}\r\n"), "NF\r\n");
    c.expect(&format!("ma {k} N0 J10\r\n"), "HD\r\n");
    c.expect(&format!("ma {k} v D5\r\n"), "VA 2\r\n15\r\n");
    c.expect(&format!("ma {k} MD v D20\r\n"), "VA 1\r\n0\r\n");
    c.expect("mn\r\n", "MN\r\n");
}

#[test]
fn every_command_family_replies_byte_for_byte_on_one_shard() {
    let server = Server::start(1, config());
    let mut c = server.client();
    text_commands(&mut c, "k");
    meta_commands(&mut c, "m");
}

#[test]
fn every_command_family_replies_byte_for_byte_for_keys_of_both_shards() {
    let server = Server::start(2, config());
    // Several connections, so that both shards serve some (the kernel
    // picks); every connection uses keys of both shards.
    for i in 0..4 {
        let mut c = server.client();
        for k in two_shard_keys(&format!("t{i}-")) {
            text_commands(&mut c, &k);
            meta_commands(&mut c, &format!("m{k}"));
        }
    }
}

#[test]
fn per_shard_listeners_serve_keys_of_both_shards() {
    let mut cfg = config();
    cfg.listener = seastar_net::ListenerMode::PerShard;
    let server = Server::start(2, cfg);
    for i in 0..4 {
        let mut c = server.client();
        for k in two_shard_keys(&format!("p{i}-")) {
            text_commands(&mut c, &k);
        }
    }
}

#[test]
fn keyless_commands_and_errors() {
    let server = Server::start(2, config());
    let mut c = server.client();
    c.expect("version\r\n", "VERSION 1.6.21\r\n");
    c.expect("verbosity 1\r\n", "OK\r\n");
    c.expect("verbosity 1 noreply\r\n", "");
    c.expect("bogus\r\n", "ERROR\r\n");
    c.expect("get\r\n", "ERROR\r\n");
    c.expect(
        "set k 0 0 x\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
    // memcached reads the announced length plus two bytes, refuses them,
    // and takes the rest ("\n") as an empty command line.
    c.expect(
        "set k 0 0 1\r\nab\r\n",
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    c.expect("touch k x\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    c.expect(
        "incr k x\r\n",
        "CLIENT_ERROR invalid numeric delta argument\r\n",
    );
    c.expect(
        "delete k 1\r\n",
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
    );
    c.expect("shutdown\r\n", "ERROR: shutdown not enabled\r\n");
    c.expect("mg k zz\r\n", "CLIENT_ERROR invalid flag\r\n");
    c.expect("stats bogus\r\n", "ERROR\r\n");
    c.expect("stats detail on\r\n", "OK\r\n");
    // Still usable after every error.
    c.expect("version\r\n", "VERSION 1.6.21\r\n");
}

#[test]
fn pipelined_requests_across_shards_reply_in_order() {
    let server = Server::start(2, config());
    let [a, b] = two_shard_keys("p");
    let mut c = server.client();
    let mut req = String::new();
    let mut want = String::new();
    let mut model: HashMap<&str, (usize, String)> = HashMap::new();
    let entry = |model: &HashMap<&str, (usize, String)>, k: &str| {
        model
            .get(k)
            .map(|(f, v)| format!("VALUE {k} {f} {}\r\n{v}\r\n", v.len()))
            .unwrap_or_default()
    };
    for i in 0..300 {
        let k = if i % 3 == 0 { a.as_str() } else { b.as_str() };
        let v = format!("v{i}");
        req += &format!(
            "set {k} {i} 0 {}\r\n{v}\r\nget {k} {a} nokey {b}\r\n",
            v.len()
        );
        model.insert(k, (i, v));
        want += "STORED\r\n";
        want += &entry(&model, k);
        want += &entry(&model, &a);
        want += &entry(&model, &b);
        want += "END\r\n";
        if i % 50 == 0 {
            req += &format!("delete {b}\r\n");
            want += if model.remove(b.as_str()).is_some() {
                "DELETED\r\n"
            } else {
                "NOT_FOUND\r\n"
            };
        }
    }
    assert_eq!(c.ask(&req), want);
}

#[test]
fn pipelined_batch_larger_than_one_read_keeps_order() {
    let server = Server::start(2, config());
    let keys: Vec<String> = (0..2000).map(|i| format!("key{i}")).collect();
    let mut c = server.client();
    let mut req = String::new();
    for (i, k) in keys.iter().enumerate() {
        req += &format!("set {k} 0 0 {}\r\n{i}\r\n", i.to_string().len());
    }
    assert_eq!(c.ask(&req), "STORED\r\n".repeat(keys.len()));
    let mut get = String::from("get");
    let mut want = String::new();
    for (i, k) in keys.iter().enumerate() {
        get += &format!(" {k}");
        want += &format!("VALUE {k} 0 {}\r\n{i}\r\n", i.to_string().len());
    }
    get += "\r\n";
    want += "END\r\n";
    assert_eq!(c.ask(&get), want);
    let mut gets = String::new();
    let mut want = String::new();
    for (i, k) in keys.iter().enumerate().rev() {
        gets += &format!("mg {k} v\r\n");
        want += &format!("VA {}\r\n{i}\r\n", i.to_string().len());
    }
    assert_eq!(c.ask(&gets), want);
}

#[test]
fn keys_written_through_one_shard_are_read_through_the_other() {
    let server = Server::start(2, config());
    let keys: Vec<String> = (0..50).map(|i| format!("x{i}")).collect();
    let mut writers: Vec<Client> = (0..6).map(|_| server.client()).collect();
    for (i, k) in keys.iter().enumerate() {
        let w = &mut writers[i % 6];
        w.expect(&format!("set {k} {i} 0 1\r\n{}\r\n", i % 10), "STORED\r\n");
    }
    let mut readers: Vec<Client> = (0..6).map(|_| server.client()).collect();
    for (i, k) in keys.iter().enumerate() {
        let r = &mut readers[(i + 1) % 6];
        r.expect(
            &format!("get {k}\r\n"),
            &format!("VALUE {k} {i} 1\r\n{}\r\nEND\r\n", i % 10),
        );
    }
    // Both shards own some of them.
    let stats = readers[0].ask("stats items\r\n");
    assert_eq!(stat_in(&stats, "items:1:number"), 50);
}

/// Many connections forwarding in the same reactor tick share one
/// cross-shard call per owner (`coalesce.rs`); each must still get exactly
/// its own replies. Clients run at once, so their requests land together.
#[test]
fn concurrent_connections_forwarding_together_get_their_own_replies() {
    const CLIENTS: usize = 12;
    const ROUNDS: usize = 40;
    let server = Server::start(2, config());
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let mut client = server.client();
            scope.spawn(move || {
                let keys = [
                    key_on(0, 2, &format!("c{c}-")),
                    key_on(1, 2, &format!("c{c}-")),
                ];
                for round in 0..ROUNDS {
                    let v = format!("{c}:{round}");
                    let mut req = String::new();
                    for k in &keys {
                        req += &format!("set {k} {c} 0 {}\r\n{v}\r\n", v.len());
                    }
                    client.expect(&req, "STORED\r\nSTORED\r\n");
                    let [k0, k1] = &keys;
                    client.expect(
                        &format!("get {k0} {k1}\r\n"),
                        &format!(
                            "VALUE {k0} {c} {n}\r\n{v}\r\nVALUE {k1} {c} {n}\r\n{v}\r\nEND\r\n",
                            n = v.len()
                        ),
                    );
                }
            });
        }
    });
}

#[test]
fn multi_get_splits_across_owners_with_one_end() {
    let server = Server::start(2, config());
    let zero = keys_on(0, 2, "g", 3);
    let one = keys_on(1, 2, "g", 3);
    let mut c = server.client();
    for k in zero.iter().chain(&one) {
        c.expect(&format!("set {k} 1 0 {}\r\n{k}\r\n", k.len()), "STORED\r\n");
    }
    let order = [&one[0], &zero[0], &zero[1], &one[1], &one[2], &zero[2]];
    let mut req = String::from("gets");
    for k in order {
        req += &format!(" {k} miss-{k}");
    }
    req += "\r\n";
    let got = c.ask(&req);
    let values: Vec<&str> = got
        .lines()
        .filter(|l| l.starts_with("VALUE "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(values, order.map(|k| k.as_str()));
    assert!(
        got.ends_with("END\r\n") && got.matches("END").count() == 1,
        "{got}"
    );
    let mut req = String::from("gat 0");
    let mut want = String::new();
    for k in order {
        req += &format!(" {k}");
        want += &format!("VALUE {k} 1 {}\r\n{k}\r\nEND\r\n", k.len());
    }
    let want = want.replace("END\r\n", "") + "END\r\n";
    c.expect(&format!("{req}\r\n"), &want);
    assert_eq!(c.stat("get_hits"), 6);
    assert_eq!(c.stat("get_misses"), 6);
    assert_eq!(c.stat("touch_hits"), 6);
}

#[test]
fn stats_merge_every_shard() {
    let server = Server::start(2, config());
    let [a, b] = two_shard_keys("s");
    let mut c = server.client();
    let _other = server.client();
    c.ask(&format!(
        "set {a} 0 0 1\r\n1\r\nset {b} 0 0 1\r\n2\r\nget {a} {b} nope\r\ndelete {a}\r\ndelete {a}\r\n\
         incr {b} 1\r\nincr nope 1\r\ndecr {b} 1\r\ntouch {b} 0\r\n"
    ));
    let text = c.ask("stats\r\n");
    for (name, value) in [
        ("curr_connections", 2),
        ("total_connections", 2),
        ("threads", 2),
        ("cmd_get", 3),
        ("cmd_set", 2),
        ("get_hits", 2),
        ("get_misses", 1),
        ("delete_hits", 1),
        ("delete_misses", 1),
        ("incr_hits", 1),
        ("incr_misses", 1),
        ("decr_hits", 1),
        ("touch_hits", 1),
        ("curr_items", 1),
        ("limit_maxbytes", 16 << 20),
    ] {
        assert_eq!(stat_in(&text, name), value, "{name} in {text}");
    }
    assert!(stat_in(&text, "bytes_read") > 0);
    assert!(text.starts_with("STAT pid "), "{text}");
    let settings = c.ask("stats settings\r\n");
    assert_eq!(stat_in(&settings, "maxbytes"), 16 << 20);
    assert_eq!(stat_in(&settings, "num_threads"), 2);
    assert_eq!(stat_in(&settings, "tcpport"), u64::from(server.tcp.port()));
    assert_eq!(stat_in(&c.ask("stats slabs\r\n"), "1:used_chunks"), 1);
    c.expect("stats reset\r\n", "RESET\r\n");
    let text = c.ask("stats\r\n");
    assert_eq!(stat_in(&text, "cmd_get"), 0);
    assert_eq!(stat_in(&text, "curr_items"), 1);
    assert_eq!(stat_in(&text, "curr_connections"), 2);
}

#[test]
fn flush_all_reaches_every_shard_and_counts_once() {
    let server = Server::start(2, config());
    let [a, b] = two_shard_keys("f");
    let mut c = server.client();
    c.ask(&format!("set {a} 0 0 1\r\n1\r\nset {b} 0 0 1\r\n2\r\n"));
    // Pipelined around the barrier: the sets before it are flushed, the
    // one after it is not.
    c.expect(
        &format!("set {a} 0 0 1\r\n3\r\nflush_all\r\nset {b} 0 0 1\r\n4\r\nget {a} {b}\r\n"),
        &format!("STORED\r\nOK\r\nSTORED\r\nVALUE {b} 0 1\r\n4\r\nEND\r\n"),
    );
    c.expect("flush_all noreply\r\n", "");
    c.expect(&format!("get {a} {b}\r\n"), "END\r\n");
    assert_eq!(c.stat("cmd_flush"), 2);
    // A delayed flush takes effect when the clock gets there.
    c.ask(&format!("set {a} 0 0 1\r\n1\r\nset {b} 0 0 1\r\n2\r\n"));
    c.expect("flush_all 10\r\n", "OK\r\n");
    assert_eq!(
        c.ask(&format!("get {a} {b}\r\n")).matches("VALUE").count(),
        2
    );
    server.advance(Duration::from_secs(11));
    c.expect(&format!("get {a} {b}\r\n"), "END\r\n");
}

#[test]
fn items_expire_on_the_manual_clock_on_both_shards() {
    let server = Server::start(2, config());
    let [a, b] = two_shard_keys("e");
    let mut c = server.client();
    c.ask(&format!(
        "set {a} 0 10 1\r\n1\r\nset {b} 0 10 1\r\n2\r\nset {a}x 0 -1 1\r\n3\r\n"
    ));
    c.expect(&format!("get {a}x\r\n"), "END\r\n");
    server.advance(Duration::from_secs(9));
    assert_eq!(
        c.ask(&format!("get {a} {b}\r\n")).matches("VALUE").count(),
        2
    );
    // touch and gat move the deadline.
    c.expect(&format!("touch {a} 100\r\n"), "TOUCHED\r\n");
    server.advance(Duration::from_secs(2));
    c.expect(
        &format!("get {a} {b}\r\n"),
        &format!("VALUE {a} 0 1\r\n1\r\nEND\r\n"),
    );
    c.expect(&format!("mg {a} t\r\n"), "HD t98\r\n");
}

#[test]
fn the_sweeper_reclaims_expired_items_without_access() {
    let server = Server::start(2, config());
    let mut c = server.client();
    let mut req = String::new();
    for i in 0..40 {
        req += &format!("set sw{i} 0 5 1\r\n1\r\n");
    }
    req += "set forever 0 0 1\r\n1\r\n";
    c.ask(&req);
    assert_eq!(c.stat("curr_items"), 41);
    server.advance(Duration::from_secs(7));
    let text = c.ask("stats\r\n");
    assert_eq!(stat_in(&text, "curr_items"), 1, "{text}");
    assert_eq!(stat_in(&text, "expired_unfetched"), 40);
    assert_eq!(stat_in(&text, "reclaimed"), 40);
    assert_eq!(stat_in(&text, "get_expired"), 0);
}

#[test]
fn eviction_under_a_small_memory_limit() {
    let mut cfg = config();
    cfg.memory_limit = 1 << 20; // -m 1: 512 KiB per shard.
    let server = Server::start(2, cfg);
    let mut c = server.client();
    let value = "v".repeat(1000);
    let n = 3000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut req = String::new();
        for i in chunk {
            req += &format!("set ev{i} 0 0 {}\r\n{value}\r\n", value.len());
        }
        assert_eq!(c.ask(&req), "STORED\r\n".repeat(chunk.len()));
    }
    let text = c.ask("stats\r\n");
    let items = stat_in(&text, "curr_items");
    let evictions = stat_in(&text, "evictions");
    assert!(stat_in(&text, "bytes") <= 1 << 20, "{text}");
    assert_eq!(items + evictions, n, "{text}");
    assert!(items > 500 && items < 1000, "{text}");
    // The oldest are gone, the newest are there.
    c.expect("get ev0 ev1 ev2\r\n", "END\r\n");
    let newest = format!("ev{}", n - 1);
    c.expect(
        &format!("get {newest}\r\n"),
        &format!("VALUE {newest} 0 1000\r\n{value}\r\nEND\r\n"),
    );
    // An item larger than a shard's share can never fit.
    let big = "b".repeat(600 * 1024);
    c.expect(
        &format!("set big 0 0 {}\r\n{big}\r\n", big.len()),
        "SERVER_ERROR out of memory storing object\r\n",
    );
}

#[test]
fn too_large_items_are_refused_and_their_data_swallowed_across_reads() {
    let mut cfg = config();
    cfg.item_size_max = 4096;
    let server = Server::start(2, cfg);
    let [a, b] = two_shard_keys("big");
    let mut c = server.client();
    for k in [&a, &b] {
        c.expect(&format!("set {k} 0 0 1\r\n1\r\n"), "STORED\r\n");
        // Announce 100 KB, send it in pieces: the reply comes first, the
        // data is discarded as it arrives, and the old value is unlinked.
        c.send(format!("set {k} 0 0 100000\r\n").as_bytes());
        let refusal = b"SERVER_ERROR object too large for cache\r\n";
        assert_eq!(c.recv(refusal.len()), refusal);
        for _ in 0..10 {
            c.send(&[b'x'; 10_000]);
        }
        c.send(b"\r\n");
        c.expect(&format!("get {k}\r\n"), "END\r\n");
    }
    assert_eq!(c.stat("store_too_large"), 2);
}

#[test]
fn quit_closes_after_the_replies_before_it() {
    let server = Server::start(2, config());
    let [a, b] = two_shard_keys("q");
    let mut c = server.client();
    c.send(format!("set {a} 0 0 1\r\n1\r\nget {a} {b}\r\nquit\r\nget {a}\r\n").as_bytes());
    assert_eq!(
        String::from_utf8(c.read_to_close()).unwrap(),
        format!("STORED\r\nVALUE {a} 0 1\r\n1\r\nEND\r\n")
    );
}

#[test]
fn overlong_lines_and_http_requests_close_the_connection() {
    let server = Server::start(1, config());
    let mut c = server.client();
    c.send(&[b'a'; 4096]);
    assert_eq!(c.read_to_close(), b"");
    let mut c = server.client();
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_to_close(), b"");
    // The server still serves others.
    server.client().expect("version\r\n", "VERSION 1.6.21\r\n");
}

#[test]
fn connections_over_the_limit_are_refused() {
    let mut cfg = config();
    cfg.max_connections = 2;
    let server = Server::start(1, cfg);
    let mut a = server.client();
    let mut b = server.client();
    a.expect("version\r\n", "VERSION 1.6.21\r\n");
    b.expect("version\r\n", "VERSION 1.6.21\r\n");
    let mut c = server.client();
    assert_eq!(c.read_to_close(), b"ERROR Too many open connections\r\n");
    assert_eq!(a.stat("rejected_connections"), 1);
    // The server closes b's socket only after freeing its slot.
    b.send(b"quit\r\n");
    assert_eq!(b.read_to_close(), b"");
    server.client().expect("version\r\n", "VERSION 1.6.21\r\n");
}

#[test]
fn a_stop_ends_open_connections_and_reports_them() {
    let server = Server::start(2, config());
    let mut clients: Vec<Client> = (0..8).map(|_| server.client()).collect();
    for c in &mut clients {
        c.expect("version\r\n", "VERSION 1.6.21\r\n");
    }
    let report = server.stop();
    assert_eq!(report.shards.len(), 2);
    assert_eq!(report.shards.iter().map(|s| s.accepted).sum::<u64>(), 8);
    for mut c in clients {
        assert_eq!(c.read_to_close(), b"");
    }
}
