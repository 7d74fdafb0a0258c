//! Meta commands through the handler, byte for byte.

mod common;

use common::Harness;

#[test]
fn ms_then_mg_with_value_and_flags() {
    let mut s = Harness::new();
    s.expect("ms foo 2 T90 F1\r\nhi\r\n", "HD\r\n");
    s.expect("mg foo t f v\r\n", "VA 2 t90 f1\r\nhi\r\n");
    s.expect("mg foo s c k\r\n", "HD s2 c1 kfoo\r\n");
    s.expect("mg foo\r\n", "HD\r\n");
}

#[test]
fn mg_miss_is_en_and_quiet_hides_it() {
    let mut s = Harness::new();
    s.expect("mg nope v\r\n", "EN\r\n");
    s.expect("mg nope v O123 k\r\n", "EN O123 knope\r\n");
    s.expect("mg nope v q\r\nmn\r\n", "MN\r\n");
}

#[test]
fn mg_ttl_of_item_without_expiry_is_minus_one() {
    let mut s = Harness::new();
    s.ask("ms k 1\r\nx\r\n");
    s.expect("mg k t\r\n", "HD t-1\r\n");
}

#[test]
fn mg_touch_updates_ttl() {
    let mut s = Harness::new();
    s.ask("ms k 1 T10\r\nx\r\n");
    s.expect("mg k T100 t\r\n", "HD t100\r\n");
    s.now = 60;
    s.expect("mg k t v\r\n", "VA 1 t40\r\nx\r\n");
}

#[test]
fn mg_hit_and_last_access() {
    let mut s = Harness::new();
    s.ask("ms k 1\r\nx\r\n");
    s.now = 5;
    s.expect("mg k h l\r\n", "HD h0 l5\r\n");
    s.expect("mg k h l\r\n", "HD h1 l0\r\n");
}

#[test]
fn mg_vivify_wins_then_others_see_z() {
    let mut s = Harness::new();
    s.expect("mg k N30 s t\r\n", "HD s0 t30 W\r\n");
    s.expect("mg k N30 s\r\n", "HD s0 Z\r\n");
}

#[test]
fn md_invalidate_then_mg_sees_stale_and_wins() {
    let mut s = Harness::new();
    s.ask("ms k 1\r\nx\r\n");
    s.expect("md k I T30\r\n", "HD\r\n");
    s.expect("mg k v c\r\n", "VA 1 c2 X W\r\nx\r\n");
    s.expect("mg k v\r\n", "VA 1 Z X\r\nx\r\n");
}

#[test]
fn ms_modes() {
    let mut s = Harness::new();
    s.expect("ms k 1 ME\r\na\r\n", "HD\r\n");
    s.expect("ms k 1 ME\r\nb\r\n", "NS\r\n");
    s.expect("ms k 1 MA\r\nc\r\n", "HD\r\n");
    s.expect("ms k 1 MP s\r\nz\r\n", "HD s3\r\n");
    s.expect("ms x 1 MR\r\nz\r\n", "NS\r\n");
    s.expect("ms k 1 MS\r\nq\r\n", "HD\r\n");
    s.expect("mg k v\r\n", "VA 1\r\nq\r\n");
}

#[test]
fn ms_compare_cas() {
    let mut s = Harness::new();
    s.expect("ms k 1 c\r\na\r\n", "HD c1\r\n");
    s.expect("ms k 1 C99\r\nb\r\n", "EX\r\n");
    s.expect("ms k 1 C1 c\r\nb\r\n", "HD c2\r\n");
    s.expect("ms nope 1 C1\r\nb\r\n", "NF\r\n");
    s.expect("ms k 1 E777 c\r\nc\r\n", "HD c777\r\n");
}

#[test]
fn ms_quiet_hides_hd_only() {
    let mut s = Harness::new();
    s.expect("ms k 1 q\r\na\r\n", "");
    s.expect("ms k 1 q ME\r\nb\r\n", "NS\r\n");
}

#[test]
fn ms_opaque_and_key_are_echoed() {
    let mut s = Harness::new();
    s.expect("ms k 1 O9 k\r\na\r\n", "HD O9 kk\r\n");
}

#[test]
fn ms_errors_swallow_the_data_block() {
    let mut s = Harness::new();
    s.expect(
        "ms k 5 zz\r\nhello\r\nmn\r\n",
        "CLIENT_ERROR invalid flag\r\nMN\r\n",
    );
    s.expect(
        "ms k 2 MZ\r\nhi\r\nmn\r\n",
        "CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n",
    );
    // The block is 1 + 2 bytes ("ab\r"); the lone "\n" is then an empty line.
    s.expect(
        "ms k 1 q\r\nab\r\n",
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
}

#[test]
fn md_replies() {
    let mut s = Harness::new();
    s.ask("ms k 1\r\na\r\n");
    s.expect("md k C99\r\n", "EX\r\n");
    s.expect("md k O1 k\r\n", "HD O1 kk\r\n");
    s.expect("md k\r\n", "NF\r\n");
    s.ask("ms k 1\r\na\r\n");
    s.expect("md k q\r\nmd k q\r\n", "NF\r\n");
}

#[test]
fn ma_increments_decrements_and_vivifies() {
    let mut s = Harness::new();
    s.expect("ma n\r\n", "NF\r\n");
    s.expect("ma n N0 J10 v\r\n", "VA 2\r\n10\r\n");
    s.expect("ma n v\r\n", "VA 2\r\n11\r\n");
    s.expect("ma n MD D20 v\r\n", "VA 1\r\n0\r\n");
    s.expect("ma n D5\r\n", "HD\r\n");
    s.expect("ma n v t c\r\n", "VA 1 t-1 c5\r\n6\r\n");
    s.expect("ma n q\r\nmn\r\n", "MN\r\n");
    s.expect("ma n C1\r\n", "EX\r\n");
    s.ask("ms t 1\r\nx\r\n");
    s.expect(
        "ma t\r\n",
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
}

#[test]
fn meta_errors_are_sent_even_in_quiet_mode() {
    let mut s = Harness::new();
    s.expect("mg k q v v\r\n", "CLIENT_ERROR duplicate flag\r\n");
    s.expect(
        "md k q Cx\r\n",
        "CLIENT_ERROR invalid or duplicate flag\r\n",
    );
    s.expect("mg\r\n", "ERROR\r\n");
}

#[test]
fn base64_keys() {
    let mut s = Harness::new();
    // "Zm9v" is base64 for "foo": both protocols see the same item.
    s.expect("ms Zm9v 2 b\r\nhi\r\n", "HD\r\n");
    s.expect("get foo\r\n", "VALUE foo 0 2\r\nhi\r\nEND\r\n");
    s.expect("mg Zm9v b k v\r\n", "VA 2 kZm9v b\r\nhi\r\n");
    s.expect("mg Zm9 b\r\n", "CLIENT_ERROR error decoding key\r\n");
}

#[test]
fn mn_flushes_a_quiet_pipeline() {
    let mut s = Harness::new();
    s.ask("ms a 1 q\r\n1\r\nms b 1 q\r\n2\r\n");
    s.expect(
        "mg a v q k\r\nmg zz v q k\r\nmg b v q k\r\nmn\r\n",
        "VA 1 ka\r\n1\r\nVA 1 kb\r\n2\r\nMN\r\n",
    );
}

#[test]
fn too_large_ms_reports_even_when_quiet_and_unlinks_the_decoded_key() {
    let limits = memcached::protocol::Limits {
        max_item_size: 200,
        ..Default::default()
    };
    let mut s = Harness::with(1 << 20, limits);
    s.expect("ms Zm9v 1 b\r\na\r\n", "HD\r\n");
    s.expect(
        &format!("ms Zm9v 300 b q\r\n{}\r\nget foo\r\n", "x".repeat(300)),
        "SERVER_ERROR object too large for cache\r\nEND\r\n",
    );
}
