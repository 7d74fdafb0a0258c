//! The text protocol through the handler: request bytes in, exact reply
//! bytes out.

mod common;

use common::Harness;
use memcached::protocol::Limits;

#[test]
fn set_then_get_returns_the_value() {
    let mut s = Harness::new();
    s.expect("set foo 5 0 3\r\nbar\r\n", "STORED\r\n");
    s.expect("get foo\r\n", "VALUE foo 5 3\r\nbar\r\nEND\r\n");
    s.expect("get nope\r\n", "END\r\n");
}

#[test]
fn get_many_keys_returns_hits_in_order() {
    let mut s = Harness::new();
    s.ask("set a 0 0 1\r\n1\r\nset c 0 0 1\r\n3\r\n");
    s.expect(
        "get a b c\r\n",
        "VALUE a 0 1\r\n1\r\nVALUE c 0 1\r\n3\r\nEND\r\n",
    );
}

#[test]
fn gets_returns_cas_and_cas_command_checks_it() {
    let mut s = Harness::new();
    s.expect("set k 0 0 1\r\na\r\n", "STORED\r\n");
    s.expect("gets k\r\n", "VALUE k 0 1 1\r\na\r\nEND\r\n");
    s.expect("cas k 0 0 1 1\r\nb\r\n", "STORED\r\n");
    s.expect("gets k\r\n", "VALUE k 0 1 2\r\nb\r\nEND\r\n");
}

#[test]
fn cas_with_stale_token_returns_exists() {
    let mut s = Harness::new();
    s.ask("set k 0 0 1\r\na\r\n");
    s.ask("set k 0 0 1\r\nb\r\n");
    s.expect("cas k 0 0 1 1\r\nc\r\n", "EXISTS\r\n");
    s.expect("cas missing 0 0 1 1\r\nc\r\n", "NOT_FOUND\r\n");
    assert_eq!(s.stat("cas_badval"), 1);
    assert_eq!(s.stat("cas_misses"), 1);
}

#[test]
fn add_replace_append_prepend() {
    let mut s = Harness::new();
    s.expect("add k 1 0 1\r\nb\r\n", "STORED\r\n");
    s.expect("add k 2 0 1\r\nx\r\n", "NOT_STORED\r\n");
    s.expect("replace nope 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    s.expect("append nope 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    s.expect("append k 9 0 1\r\nc\r\n", "STORED\r\n");
    s.expect("prepend k 9 0 1\r\na\r\n", "STORED\r\n");
    s.expect("get k\r\n", "VALUE k 1 3\r\nabc\r\nEND\r\n");
    s.expect("replace k 4 0 2\r\nzz\r\n", "STORED\r\n");
    s.expect("get k\r\n", "VALUE k 4 2\r\nzz\r\nEND\r\n");
}

#[test]
fn delete_replies() {
    let mut s = Harness::new();
    s.ask("set k 0 0 1\r\na\r\n");
    s.expect("delete k\r\n", "DELETED\r\n");
    s.expect("delete k\r\n", "NOT_FOUND\r\n");
    s.expect("delete k 0\r\n", "NOT_FOUND\r\n");
    s.expect(
        "delete k 1\r\n",
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
    );
}

#[test]
fn incr_wraps_and_decr_floors() {
    let mut s = Harness::new();
    s.ask("set n 0 0 20\r\n18446744073709551615\r\n");
    s.expect("incr n 1\r\n", "0\r\n");
    s.expect("incr n 10\r\n", "10\r\n");
    s.expect("decr n 3\r\n", "7\r\n");
    s.expect("decr n 100\r\n", "0\r\n");
    s.expect("get n\r\n", "VALUE n 0 1\r\n0\r\nEND\r\n");
    s.expect("incr missing 1\r\n", "NOT_FOUND\r\n");
    s.expect("decr missing 1\r\n", "NOT_FOUND\r\n");
    assert_eq!(s.stat("incr_misses"), 1);
    assert_eq!(s.stat("decr_hits"), 2);
}

#[test]
fn incr_errors_are_memcacheds() {
    let mut s = Harness::new();
    s.ask("set t 0 0 3\r\nabc\r\n");
    s.expect(
        "incr t 1\r\n",
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    s.expect(
        "incr t abc\r\n",
        "CLIENT_ERROR invalid numeric delta argument\r\n",
    );
    s.expect("incr t\r\n", "ERROR\r\n");
}

#[test]
fn touch_and_gat() {
    let mut s = Harness::new();
    s.ask("set k 3 10 1\r\nv\r\n");
    s.expect("touch k 100\r\n", "TOUCHED\r\n");
    s.expect("touch nope 100\r\n", "NOT_FOUND\r\n");
    s.now = 50;
    s.expect("gat 0 k nope\r\n", "VALUE k 3 1\r\nv\r\nEND\r\n");
    s.now = 5000;
    s.expect("gats 10 k\r\n", "VALUE k 3 1 1\r\nv\r\nEND\r\n");
    s.expect("gat 10\r\n", "END\r\n");
    s.expect("touch k x\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    assert_eq!(s.stat("touch_hits"), 3);
    assert_eq!(s.stat("touch_misses"), 2);
}

#[test]
fn noreply_silences_every_storage_and_update_reply() {
    let mut s = Harness::new();
    let quiet = [
        "set k 0 0 1 noreply\r\na\r\n",
        "add k 0 0 1 noreply\r\na\r\n",
        "replace k 0 0 1 noreply\r\nb\r\n",
        "append k 0 0 1 noreply\r\nc\r\n",
        "prepend k 0 0 1 noreply\r\nd\r\n",
        "cas k 0 0 1 999 noreply\r\ne\r\n",
        "set n 0 0 1 noreply\r\n5\r\n",
        "incr n 1 noreply\r\n",
        "decr n 1 noreply\r\n",
        "incr k 1 noreply\r\n",
        "touch k 10 noreply\r\n",
        "delete nope noreply\r\n",
        "delete n 0 noreply\r\n",
        "flush_all 100 noreply\r\n",
        "verbosity 1 noreply\r\n",
        "set k 0 0 x noreply\r\n",
        "incr n abc noreply\r\n",
    ];
    for req in quiet {
        s.expect(req, "");
    }
    s.expect("get k\r\n", "VALUE k 0 3\r\ndbc\r\nEND\r\n");
}

#[test]
fn malformed_lines_get_memcacheds_errors() {
    let mut s = Harness::new();
    s.expect("bogus\r\n", "ERROR\r\n");
    s.expect("\r\n", "ERROR\r\n");
    s.expect("get\r\n", "ERROR\r\n");
    s.expect("set k 0 0\r\n", "ERROR\r\n");
    s.expect(
        "set k 0 0 z\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
    s.expect(
        "set k 0 0 -1\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
    s.expect("verbosity\r\n", "ERROR\r\n");
    s.expect(
        "flush_all x\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );
    let long = format!("get {}\r\n", "k".repeat(251));
    s.expect(&long, "CLIENT_ERROR bad command line format\r\n");
    s.expect("shutdown\r\n", "ERROR: shutdown not enabled\r\n");
    assert!(!s.closed);
}

#[test]
fn refused_set_leaves_its_data_to_be_parsed_as_a_command() {
    // memcached does not swallow the data of a line it could not read.
    let mut s = Harness::new();
    s.expect("set k 0 0\r\nhello\r\n", "ERROR\r\nERROR\r\n");
}

#[test]
fn bad_data_chunk_is_reported_and_the_connection_continues() {
    let mut s = Harness::new();
    s.expect(
        "set k 0 0 1\r\nabc\r\n",
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    s.expect("get k\r\n", "END\r\n");
}

#[test]
fn too_large_item_is_swallowed_even_across_reads() {
    let limits = Limits {
        max_item_size: 200,
        ..Limits::default()
    };
    let mut s = Harness::with(1 << 20, limits);
    s.expect("set k 0 0 1\r\na\r\n", "STORED\r\n");
    let data = "x".repeat(300);
    s.expect(
        &format!("set k 0 0 300\r\n{}", &data[..100]),
        "SERVER_ERROR object too large for cache\r\n",
    );
    assert_eq!(s.conn.swallowing(), 202);
    s.expect(&data[100..], "");
    s.expect("\r\nget k\r\n", "END\r\n");
    assert_eq!(s.stat("store_too_large"), 1);
}

#[test]
fn too_large_add_keeps_the_old_value() {
    let limits = Limits {
        max_item_size: 200,
        ..Limits::default()
    };
    let mut s = Harness::with(1 << 20, limits);
    s.ask("set k 0 0 1\r\na\r\n");
    let data = "x".repeat(300);
    s.expect(
        &format!("append k 0 0 300\r\n{data}\r\nget k\r\n"),
        "SERVER_ERROR object too large for cache\r\nVALUE k 0 1\r\na\r\nEND\r\n",
    );
}

#[test]
fn pipelined_requests_reply_in_order() {
    let mut s = Harness::new();
    s.expect(
        "set a 0 0 1\r\n1\r\nget a\r\nincr a 1\r\ndelete a\r\nget a\r\nversion\r\n",
        "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n2\r\nDELETED\r\nEND\r\nVERSION 1.6.21\r\n",
    );
}

#[test]
fn every_split_point_of_a_pipeline_gives_the_same_replies() {
    let input = b"set k 1 0 5\r\nhello\r\ngets k\r\nappend k 0 0 1\r\n!\r\nget k\r\n";
    let whole = Harness::new().send(input);
    for cut in 0..=input.len() {
        let mut s = Harness::new();
        let mut out = s.send(&input[..cut]);
        out.extend(s.send(&input[cut..]));
        assert_eq!(out, whole, "split at {cut}");
    }
    assert_eq!(
        String::from_utf8(whole).unwrap(),
        "STORED\r\nVALUE k 1 5 1\r\nhello\r\nEND\r\nSTORED\r\nVALUE k 1 6\r\nhello!\r\nEND\r\n"
    );
}

#[test]
fn byte_at_a_time_input_works() {
    let mut s = Harness::new();
    let mut out = Vec::new();
    for b in b"set k 0 0 2\r\nhi\r\nget k\r\n" {
        out.extend(s.send(&[*b]));
    }
    assert_eq!(out, b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
}

#[test]
fn quit_closes_after_earlier_replies() {
    let mut s = Harness::new();
    s.expect("version\r\nquit\r\nversion\r\n", "VERSION 1.6.21\r\n");
    assert!(s.closed);
}

#[test]
fn line_too_long_closes_the_connection() {
    let mut s = Harness::new();
    s.expect(&"x".repeat(3000), "");
    assert!(s.closed);
}

#[test]
fn http_request_closes_the_connection_silently() {
    let mut s = Harness::new();
    s.expect("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "");
    assert!(s.closed);
}

#[test]
fn version_and_verbosity() {
    let mut s = Harness::new();
    s.expect("version\r\n", "VERSION 1.6.21\r\n");
    s.expect("verbosity 1\r\n", "OK\r\n");
    s.expect(
        "verbosity x\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
}
