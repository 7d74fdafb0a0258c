//! The output budget in process, on two shards with a tiny budget: long
//! multi-key `get`/`gets`/`gat` lines (local and forwarded keys, hits and
//! misses, values copied and shared) are executed a budget at a time and
//! resumed between keys, and the replies are exactly the unbounded ones.

mod support;

use support::{Server, config, keys_on};

/// A reply `VALUE` block, with the CAS when given.
fn block(key: &str, value: &str, cas: Option<u64>) -> String {
    match cas {
        Some(c) => format!("VALUE {key} 0 {} {c}\r\n{value}\r\n", value.len()),
        None => format!("VALUE {key} 0 {}\r\n{value}\r\n", value.len()),
    }
}

#[test]
fn multi_key_lines_resume_between_keys_with_exact_replies() {
    let mut cfg = config();
    cfg.conn_output_budget = 4096;
    let server = Server::start(2, cfg);
    let mut c = server.client();
    // Keys of both shards; values below and above the by-reference size.
    let mut keys = keys_on(0, 2, "b", 3);
    keys.extend(keys_on(1, 2, "b", 3));
    let values: Vec<String> = (0..keys.len())
        .map(|i| {
            ((b'a' + i as u8) as char)
                .to_string()
                .repeat([5, 900, 3000][i % 3])
        })
        .collect();
    let mut cas = Vec::new();
    for (k, v) in keys.iter().zip(&values) {
        c.expect(&format!("set {k} 0 0 {}\r\n{v}\r\n", v.len()), "STORED\r\n");
        let g = c.ask(&format!("gets {k}\r\n"));
        let n: u64 = g
            .lines()
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        cas.push(n);
    }
    // 400 keys per line (more than the 128 forwarded ops per step), with
    // misses among them.
    let order: Vec<usize> = (0..400).map(|i| (i * 7) % (keys.len() + 1)).collect();
    let names: Vec<&str> = order
        .iter()
        .map(|&i| keys.get(i).map_or("missing", String::as_str))
        .collect();
    let line = names.join(" ");
    let expected = |with_cas: bool| {
        let mut r = String::new();
        for &i in &order {
            if let Some(k) = keys.get(i) {
                r += &block(k, &values[i], with_cas.then_some(cas[i]));
            }
        }
        r + "END\r\n"
    };
    let request = format!("get {line}\r\ngets {line}\r\ngat 0 {line}\r\nversion\r\n");
    let reply = c.ask(&request);
    let version = reply.rsplit_once("END\r\n").unwrap().1.to_owned();
    assert!(version.starts_with("VERSION "), "{version:?}");
    let want = expected(false) + &expected(true) + &expected(false) + &version;
    assert_eq!(reply.len(), want.len());
    assert!(reply == want, "replies differ");
    // The connection is in order afterwards.
    c.expect("mn\r\n", "MN\r\n");
}
