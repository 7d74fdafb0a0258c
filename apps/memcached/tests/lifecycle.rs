//! Expiry, flush_all, eviction and stats through the handler, with a
//! manual clock.

mod common;

use common::{EPOCH, Harness};
use memcached::protocol::Limits;
use memcached::store::item_cost;

#[test]
fn relative_expiry_with_explicit_times() {
    let mut s = Harness::new();
    s.now = 100;
    s.ask("set k 0 10 1\r\nv\r\n");
    s.now = 109;
    s.expect("get k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n");
    s.now = 110;
    s.expect("get k\r\n", "END\r\n");
    assert_eq!(s.stat("get_expired"), 1);
}

#[test]
fn absolute_and_negative_exptimes() {
    let mut s = Harness::new();
    let at = EPOCH + 50;
    s.ask(&format!("set a 0 {at} 1\r\nv\r\n"));
    s.ask("set n 0 -1 1\r\nv\r\n");
    s.expect("get n\r\n", "END\r\n");
    s.now = 49;
    s.expect("get a\r\n", "VALUE a 0 1\r\nv\r\nEND\r\n");
    s.now = 50;
    s.expect("get a\r\n", "END\r\n");
}

#[test]
fn flush_all_now_and_later() {
    let mut s = Harness::new();
    s.now = 10;
    s.ask("set a 0 0 1\r\n1\r\n");
    s.expect("flush_all\r\n", "OK\r\n");
    s.expect("get a\r\n", "END\r\n");
    s.ask("set b 0 0 1\r\n2\r\n");
    s.expect("flush_all 30\r\n", "OK\r\n");
    s.now = 20;
    s.expect("get b\r\n", "VALUE b 0 1\r\n2\r\nEND\r\n");
    s.now = 40;
    s.expect("get b\r\n", "END\r\n");
    s.now = 41;
    s.ask("set c 0 0 1\r\n3\r\n");
    s.expect("get c\r\n", "VALUE c 0 1\r\n3\r\nEND\r\n");
    assert_eq!(s.stat("cmd_flush"), 2);
    assert_eq!(s.stat("get_flushed"), 2);
}

#[test]
fn eviction_under_a_small_memory_limit() {
    let per_item = item_cost(4, 0, 100);
    let mut s = Harness::with(per_item * 10, Limits::default());
    let value = "v".repeat(100);
    for i in 0..20 {
        s.expect(&format!("set k{i:03} 0 0 100\r\n{value}\r\n"), "STORED\r\n");
    }
    assert_eq!(s.stat("evictions"), 10);
    assert_eq!(s.stat("curr_items"), 10);
    assert!(s.stat("bytes") <= (per_item * 10) as u64);
    s.expect("get k000\r\n", "END\r\n");
    assert!(s.ask("get k019\r\n").starts_with("VALUE k019"));
}

#[test]
fn recently_read_items_survive_eviction() {
    let per_item = item_cost(2, 0, 1);
    let mut s = Harness::with(per_item * 2, Limits::default());
    s.ask("set k1 0 0 1\r\na\r\nset k2 0 0 1\r\nb\r\n");
    s.ask("get k1\r\n");
    s.ask("set k3 0 0 1\r\nc\r\n");
    s.expect("get k1 k2\r\n", "VALUE k1 0 1\r\na\r\nEND\r\n");
}

#[test]
fn item_larger_than_memory_is_a_server_error() {
    let mut s = Harness::with(100, Limits::default());
    s.expect(
        &format!("set k 0 0 200\r\n{}\r\n", "x".repeat(200)),
        "SERVER_ERROR out of memory storing object\r\n",
    );
}

#[test]
fn sweep_reclaims_without_access() {
    let mut s = Harness::new();
    s.ask("set a 0 5 1\r\n1\r\nset b 0 0 1\r\n2\r\n");
    assert_eq!(s.handler.store_mut().sweep(10, 100), 1);
    assert_eq!(s.stat("curr_items"), 1);
    assert_eq!(s.stat("expired_unfetched"), 1);
}

#[test]
fn stats_counts_commands() {
    let mut s = Harness::new();
    s.ask("set a 0 0 1\r\n1\r\nget a b\r\ndelete a\r\ndelete a\r\ntouch a 1\r\n");
    let text = s.ask("stats\r\n");
    for line in [
        "STAT cmd_get 2\r\n",
        "STAT cmd_set 1\r\n",
        "STAT get_hits 1\r\n",
        "STAT get_misses 1\r\n",
        "STAT delete_hits 1\r\n",
        "STAT delete_misses 1\r\n",
        "STAT touch_misses 1\r\n",
        "STAT curr_items 0\r\n",
        "STAT total_items 1\r\n",
        "STAT limit_maxbytes 67108864\r\n",
    ] {
        assert!(text.contains(line), "{line:?} missing in {text}");
    }
    assert!(text.starts_with("STAT pid "));
    assert!(text.ends_with("END\r\n"));
}

#[test]
fn stats_subcommands() {
    let mut s = Harness::new();
    s.expect("stats items\r\n", "END\r\n");
    s.ask("set a 0 0 1\r\n1\r\n");
    s.now = 3;
    let items = s.ask("stats items\r\n");
    assert!(items.starts_with("STAT items:1:number 1\r\nSTAT items:1:age 3\r\n"));
    assert!(
        s.ask("stats settings\r\n")
            .contains("STAT item_size_max 1048576\r\n")
    );
    assert!(s.ask("stats slabs\r\n").contains("STAT active_slabs 1\r\n"));
    s.expect("stats reset\r\n", "RESET\r\n");
    assert_eq!(s.stat("cmd_set"), 0);
    assert_eq!(s.stat("curr_items"), 1);
    s.expect("stats bogus\r\n", "ERROR\r\n");
    s.expect(
        "stats detail\r\n",
        "CLIENT_ERROR usage: stats detail on|off|dump\r\n",
    );
}
