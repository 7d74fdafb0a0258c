//! Store semantics, with explicit times (no sleeps).

use super::*;
use crate::protocol::StoreMode;

const EPOCH: i64 = 1_700_000_000;

fn store() -> Store {
    Store::new(StoreConfig {
        mem_limit: 1 << 20,
        epoch: EPOCH,
        ..StoreConfig::default()
    })
}

fn set(s: &mut Store, key: &str, value: &str, exptime: i64, now: u32) -> StoreResult {
    let mut u = Update::new(StoreMode::Set, key.as_bytes(), value.as_bytes());
    u.exptime = exptime;
    s.store(&u, now)
}

fn value(s: &mut Store, key: &str, now: u32) -> Option<String> {
    s.get(key.as_bytes(), now)
        .map(|i| String::from_utf8(i.value.to_vec()).unwrap())
}

#[test]
fn set_then_get_returns_value_flags_and_cas() {
    let mut s = store();
    let mut u = Update::new(StoreMode::Set, b"k", b"v");
    u.flags = 9;
    let r = s.store(&u, 0);
    assert_eq!((r.outcome, r.cas, r.size), (StoreOutcome::Stored, 1, 1));
    let i = s.get(b"k", 0).unwrap();
    assert_eq!((i.value, i.flags, i.cas, i.ttl), (&b"v"[..], 9, 1, None));
    assert_eq!(s.stats().curr_items, 1);
    assert_eq!(s.stats().bytes, item_cost(1, 9, 1) as u64);
}

#[test]
fn every_store_gets_a_new_cas() {
    let mut s = store();
    assert_eq!(set(&mut s, "a", "1", 0, 0).cas, 1);
    assert_eq!(set(&mut s, "a", "2", 0, 0).cas, 2);
    assert_eq!(set(&mut s, "b", "3", 0, 0).cas, 3);
    assert_eq!(s.stats().total_items, 3);
    assert_eq!(s.stats().curr_items, 2);
}

#[test]
fn add_only_stores_absent_keys_and_replace_only_present_ones() {
    let mut s = store();
    let add = Update::new(StoreMode::Add, b"k", b"1");
    assert_eq!(s.store(&add, 0).outcome, StoreOutcome::Stored);
    assert_eq!(s.store(&add, 0).outcome, StoreOutcome::NotStored);
    let rep = Update::new(StoreMode::Replace, b"x", b"1");
    assert_eq!(s.store(&rep, 0).outcome, StoreOutcome::NotStored);
    let rep = Update::new(StoreMode::Replace, b"k", b"2");
    assert_eq!(s.store(&rep, 0).outcome, StoreOutcome::Stored);
    assert_eq!(value(&mut s, "k", 0).unwrap(), "2");
}

#[test]
fn cas_with_stale_token_returns_exists() {
    let mut s = store();
    let cas = set(&mut s, "k", "v1", 0, 0).cas;
    set(&mut s, "k", "v2", 0, 0);
    let mut u = Update::new(StoreMode::Cas, b"k", b"v3");
    u.cas = cas;
    assert_eq!(s.store(&u, 0).outcome, StoreOutcome::Exists);
    assert_eq!(s.stats().cas_badval, 1);
    u.cas = cas + 1;
    assert_eq!(s.store(&u, 0).outcome, StoreOutcome::Stored);
    assert_eq!(s.stats().cas_hits, 1);
    let missing = Update::new(StoreMode::Cas, b"nope", b"x");
    assert_eq!(s.store(&missing, 0).outcome, StoreOutcome::NotFound);
    assert_eq!(s.stats().cas_misses, 1);
}

#[test]
fn append_and_prepend_keep_flags_and_exptime() {
    let mut s = store();
    let mut u = Update::new(StoreMode::Set, b"k", b"mid");
    u.flags = 7;
    u.exptime = 100;
    s.store(&u, 10);
    let mut a = Update::new(StoreMode::Append, b"k", b">");
    a.flags = 1;
    a.exptime = 5;
    assert_eq!(s.store(&a, 20).size, 4);
    let p = Update::new(StoreMode::Prepend, b"k", b"<");
    s.store(&p, 20);
    let i = s.get(b"k", 20).unwrap();
    assert_eq!((i.value, i.flags, i.ttl), (&b"<mid>"[..], 7, Some(90)));
    let miss = Update::new(StoreMode::Append, b"x", b"1");
    assert_eq!(s.store(&miss, 20).outcome, StoreOutcome::NotStored);
}

#[test]
fn append_with_vivify_creates_the_item() {
    let mut s = store();
    let mut a = Update::new(StoreMode::Append, b"k", b"x");
    a.vivify = Some(30);
    assert_eq!(s.store(&a, 0).outcome, StoreOutcome::Stored);
    assert_eq!(s.get(b"k", 0).unwrap().ttl, Some(30));
}

#[test]
fn relative_exptime_expires_at_the_deadline() {
    let mut s = store();
    set(&mut s, "k", "v", 10, 100);
    assert_eq!(value(&mut s, "k", 109).as_deref(), Some("v"));
    assert_eq!(value(&mut s, "k", 110), None);
    assert_eq!(s.stats().get_expired, 1);
    assert_eq!(s.stats().curr_items, 0);
}

#[test]
fn absolute_exptime_is_unix_time() {
    let mut s = store();
    set(&mut s, "k", "v", EPOCH + 1000, 0);
    assert_eq!(s.peek(b"k", 999).unwrap().ttl, Some(1));
    assert!(s.peek(b"k", 1000).is_none());
    set(&mut s, "old", "v", EPOCH - 1, 0);
    assert!(s.peek(b"old", 0).is_none());
}

#[test]
fn negative_exptime_is_already_expired_but_replaces_the_old_value() {
    let mut s = store();
    set(&mut s, "k", "v", 0, 5);
    assert_eq!(set(&mut s, "k", "w", -1, 5).outcome, StoreOutcome::Stored);
    assert_eq!(value(&mut s, "k", 5), None);
}

#[test]
fn touch_changes_the_deadline() {
    let mut s = store();
    set(&mut s, "k", "v", 10, 0);
    assert!(s.touch(b"k", 100, 5).is_some());
    assert_eq!(value(&mut s, "k", 50).as_deref(), Some("v"));
    assert!(s.touch(b"missing", 1, 5).is_none());
    assert!(s.touch(b"k", -1, 60).is_some());
    assert_eq!(value(&mut s, "k", 60), None);
}

#[test]
fn flush_all_invalidates_earlier_items_only() {
    let mut s = store();
    set(&mut s, "old", "1", 0, 10);
    s.flush_all(0, 10);
    set(&mut s, "new", "2", 0, 10);
    assert_eq!(value(&mut s, "old", 10), None);
    assert_eq!(value(&mut s, "new", 10).as_deref(), Some("2"));
    assert_eq!(s.stats().get_flushed, 1);
}

#[test]
fn flush_all_with_delay_takes_effect_later() {
    let mut s = store();
    set(&mut s, "k", "1", 0, 100);
    s.flush_all(10, 100);
    assert_eq!(value(&mut s, "k", 105).as_deref(), Some("1"));
    assert_eq!(value(&mut s, "k", 109), None);
    set(&mut s, "later", "2", 0, 110);
    assert_eq!(value(&mut s, "later", 120).as_deref(), Some("2"));
}

#[test]
fn eviction_takes_the_least_recently_used_item() {
    let per_item = item_cost(2, 0, 10);
    let mut s = Store::new(StoreConfig {
        mem_limit: per_item * 3,
        epoch: EPOCH,
        ..StoreConfig::default()
    });
    for k in ["k1", "k2", "k3"] {
        set(&mut s, k, "0123456789", 0, 0);
    }
    assert!(s.get(b"k1", 0).is_some());
    set(&mut s, "k4", "0123456789", 0, 0);
    assert!(s.peek(b"k2", 0).is_none(), "k2 was least recently used");
    assert!(s.peek(b"k1", 0).is_some());
    assert_eq!(s.stats().evictions, 1);
    assert_eq!(s.stats().evicted_unfetched, 1);
    assert!(s.mem_used() <= per_item * 3);
}

#[test]
fn expired_tail_items_are_reclaimed_not_evicted() {
    let per_item = item_cost(2, 0, 1);
    let mut s = Store::new(StoreConfig {
        mem_limit: per_item * 2,
        epoch: EPOCH,
        ..StoreConfig::default()
    });
    set(&mut s, "k1", "x", 1, 0);
    set(&mut s, "k2", "x", 0, 0);
    set(&mut s, "k3", "x", 0, 5);
    assert_eq!((s.stats().evictions, s.stats().reclaimed), (0, 1));
    assert_eq!(s.stats().expired_unfetched, 1);
}

#[test]
fn item_bigger_than_memory_is_refused_and_set_drops_the_old_value() {
    let mut s = Store::new(StoreConfig {
        mem_limit: 200,
        epoch: EPOCH,
        ..StoreConfig::default()
    });
    set(&mut s, "k", "small", 0, 0);
    let big = "x".repeat(300);
    assert_eq!(set(&mut s, "k", &big, 0, 0).outcome, StoreOutcome::NoMemory);
    assert!(s.peek(b"k", 0).is_none());
    assert_eq!(s.stats().store_no_memory, 1);
}

#[test]
fn incr_wraps_at_64_bits_and_decr_floors_at_zero() {
    let mut s = store();
    set(&mut s, "n", "18446744073709551615", 0, 0);
    assert!(matches!(
        s.arith(b"n", &ArithOp::incr(2), 0),
        Arith::Done { value: 1, .. }
    ));
    assert!(matches!(
        s.arith(b"n", &ArithOp::decr(5), 0),
        Arith::Done { value: 0, .. }
    ));
    set(&mut s, "n", "10", 0, 0);
    assert!(matches!(
        s.arith(b"n", &ArithOp::decr(1), 0),
        Arith::Done { value: 9, .. }
    ));
    assert_eq!(value(&mut s, "n", 0).unwrap(), "9");
    assert_eq!((s.stats().incr_hits, s.stats().decr_hits), (1, 2));
}

#[test]
fn arith_keeps_flags_and_changes_cas() {
    let mut s = store();
    let mut u = Update::new(StoreMode::Set, b"n", b"1");
    u.flags = 3;
    let cas = s.store(&u, 0).cas;
    let Arith::Done { cas: new, .. } = s.arith(b"n", &ArithOp::incr(1), 0) else {
        panic!()
    };
    assert_ne!(cas, new);
    assert_eq!(s.get(b"n", 0).unwrap().flags, 3);
}

#[test]
fn arith_on_non_numbers_and_missing_keys() {
    let mut s = store();
    set(&mut s, "t", "abc", 0, 0);
    set(&mut s, "e", "", 0, 0);
    set(&mut s, "sp", "12 ", 0, 0);
    assert_eq!(s.arith(b"t", &ArithOp::incr(1), 0), Arith::NonNumeric);
    assert_eq!(s.arith(b"e", &ArithOp::incr(1), 0), Arith::NonNumeric);
    assert!(matches!(
        s.arith(b"sp", &ArithOp::incr(1), 0),
        Arith::Done { value: 13, .. }
    ));
    assert_eq!(s.arith(b"none", &ArithOp::incr(1), 0), Arith::NotFound);
    let mut op = ArithOp::incr(1);
    op.compare_cas = 999;
    assert_eq!(s.arith(b"sp", &op, 0), Arith::Exists);
}

#[test]
fn sweep_reclaims_expired_items_within_its_budget() {
    let mut s = store();
    for i in 0..10 {
        set(
            &mut s,
            &format!("k{i}"),
            "v",
            if i % 2 == 0 { 5 } else { 0 },
            0,
        );
    }
    assert_eq!(s.sweep(10, 4), 2);
    assert_eq!(s.sweep(10, 100), 3);
    assert_eq!(s.len(), 5);
    assert_eq!(s.sweep(10, 100), 0);
    assert_eq!(s.stats().reclaimed, 5);
}

#[test]
fn mg_vivify_wins_once_then_reports_z() {
    let mut s = store();
    let o = MgOpts {
        vivify: Some(30),
        ..MgOpts::default()
    };
    let hit = s.meta_get(b"k", 0, &o).unwrap();
    assert!(hit.won && hit.created && !hit.item.token_sent);
    let hit = s.meta_get(b"k", 1, &o).unwrap();
    assert!(!hit.won && !hit.created && hit.item.token_sent);
}

#[test]
fn mg_recache_wins_when_ttl_is_low() {
    let mut s = store();
    set(&mut s, "k", "v", 10, 0);
    let o = MgOpts {
        recache: Some(30),
        ..MgOpts::default()
    };
    assert!(s.meta_get(b"k", 0, &o).unwrap().won);
    assert!(!s.meta_get(b"k", 0, &o).unwrap().won);
}

#[test]
fn mg_reports_fetch_and_idle_as_before_the_access() {
    let mut s = store();
    set(&mut s, "k", "v", 0, 0);
    let hit = s.meta_get(b"k", 7, &MgOpts::default()).unwrap();
    assert_eq!((hit.item.fetched, hit.item.idle), (false, 7));
    let hit = s.meta_get(b"k", 9, &MgOpts::default()).unwrap();
    assert_eq!((hit.item.fetched, hit.item.idle), (true, 2));
}

#[test]
fn md_invalidate_marks_stale_and_next_mg_wins() {
    let mut s = store();
    let cas = set(&mut s, "k", "v", 0, 0).cas;
    let o = MdOpts {
        invalidate: true,
        ttl: Some(30),
        ..MdOpts::default()
    };
    assert_eq!(s.meta_delete(b"k", 0, &o), MdOutcome::Kept);
    let hit = s.meta_get(b"k", 0, &MgOpts::default()).unwrap();
    assert!(hit.item.stale && hit.won);
    assert_ne!(hit.item.cas, cas);
    assert_eq!(hit.item.ttl, Some(30));
}

#[test]
fn md_with_wrong_cas_is_exists() {
    let mut s = store();
    set(&mut s, "k", "v", 0, 0);
    let o = MdOpts {
        compare_cas: Some(42),
        ..MdOpts::default()
    };
    assert_eq!(s.meta_delete(b"k", 0, &o), MdOutcome::Exists);
    assert_eq!(
        s.meta_delete(b"k", 0, &MdOpts::default()),
        MdOutcome::Deleted
    );
    assert_eq!(
        s.meta_delete(b"k", 0, &MdOpts::default()),
        MdOutcome::NotFound
    );
}

#[test]
fn md_remove_value_leaves_an_empty_item() {
    let mut s = store();
    set(&mut s, "k", "value", 0, 0);
    let o = MdOpts {
        remove_value: true,
        ..MdOpts::default()
    };
    assert_eq!(s.meta_delete(b"k", 0, &o), MdOutcome::Kept);
    assert_eq!(value(&mut s, "k", 0).as_deref(), Some(""));
}

#[test]
fn ms_invalidate_accepts_an_older_cas_as_stale() {
    let mut s = store();
    set(&mut s, "k", "v1", 0, 0);
    let cur = set(&mut s, "k", "v2", 0, 0).cas;
    let mut u = Update::new(StoreMode::Cas, b"k", b"old");
    u.cas = cur - 1;
    u.allow_stale = true;
    assert_eq!(s.store(&u, 0).outcome, StoreOutcome::Stored);
    assert!(s.peek(b"k", 0).unwrap().stale);
}

#[test]
fn explicit_cas_is_used() {
    let mut s = store();
    let mut u = Update::new(StoreMode::Set, b"k", b"v");
    u.new_cas = Some(5000);
    assert_eq!(s.store(&u, 0).cas, 5000);
    assert_eq!(s.peek(b"k", 0).unwrap().cas, 5000);
}

/// `-m` counts what an item really takes: 2 M one-byte items offered to a
/// 64 MiB store keep it at 64 MiB of charged memory, the charge per item
/// covers at least its entry, its `VALUE` block and its index slot, and so
/// the store holds about as many as memcached's 96-byte slab chunks allow
/// (not the 2 M that counting key and value alone would let in).
#[test]
fn memory_limit_counts_the_whole_item() {
    let limit = 64 << 20;
    let mut s = Store::new(StoreConfig {
        mem_limit: limit,
        epoch: EPOCH,
        ..StoreConfig::default()
    });
    let n = 2_000_000;
    for i in 0..n {
        let key = format!("key:{i:08}");
        let r = s.store(&Update::new(StoreMode::Set, key.as_bytes(), b"v"), 0);
        assert_eq!(r.outcome, StoreOutcome::Stored);
    }
    let per_item = item_cost(12, 0, 1);
    let block = crate::protocol::encode::value_block_len(12, 0, 1);
    assert_eq!(
        block,
        crate::protocol::encode::value_block(b"key:00000000", 0, b"v")
            .0
            .len()
    );
    assert!(per_item >= block + std::mem::size_of::<table::Entry>() + 4);
    assert!(s.mem_used() <= limit);
    assert_eq!(s.mem_used(), s.len() * per_item);
    assert_eq!(s.len(), limit / per_item);
    assert!(s.len() < limit / 96, "{} items", s.len());
    assert_eq!(s.stats().evictions, (n - s.len()) as u64);
}

/// `append`/`prepend` refuse to grow an item past `-I` (memcached answers
/// `NOT_STORED`), and leave it as it was.
#[test]
fn append_and_prepend_respect_the_item_size_limit() {
    let mut s = Store::new(StoreConfig {
        item_size_max: crate::protocol::item_size(1, 100),
        ..StoreConfig::default()
    });
    set(&mut s, "k", &"a".repeat(60), 0, 0);
    for mode in [StoreMode::Append, StoreMode::Prepend] {
        let r = s.store(&Update::new(mode, b"k", &[b'b'; 41]), 0);
        assert_eq!(r.outcome, StoreOutcome::NotStored, "{mode:?}");
        assert_eq!(value(&mut s, "k", 0).unwrap(), "a".repeat(60));
    }
    let r = s.store(&Update::new(StoreMode::Append, b"k", &[b'b'; 40]), 0);
    assert_eq!((r.outcome, r.size), (StoreOutcome::Stored, 100));
    let r = s.store(&Update::new(StoreMode::Prepend, b"k", b"c"), 0);
    assert_eq!(r.outcome, StoreOutcome::NotStored);
}
