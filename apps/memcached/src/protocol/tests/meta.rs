//! Meta command parsing.
use super::*;

#[test]
fn mg_collects_flags() {
    let (req, _) = ok(b"mg foo v c t k Oabc T30 q\r\n");
    let Request::MetaGet(m) = req else { panic!() };
    assert_eq!(m.key, b"foo");
    assert!(m.value && m.quiet);
    assert_eq!(m.ttl, Some(30));
    assert_eq!(m.opaque, Some(&b"Oabc"[..]));
    assert_eq!(m.flags().count(), 7);
}

#[test]
fn mg_without_flags_is_valid() {
    assert!(matches!(ok(b"mg foo\r\n").0, Request::MetaGet(_)));
    assert_eq!(reply(b"mg\r\n"), "ERROR");
}

#[test]
fn mn_is_a_noop() {
    assert_eq!(ok(b"mn\r\n").0, Request::MetaNoop);
}

#[test]
fn flag_errors_use_memcached_strings() {
    assert_eq!(reply(b"mg k v v\r\n"), "CLIENT_ERROR duplicate flag");
    assert_eq!(reply(b"mg k \xff\r\n"), "CLIENT_ERROR duplicate flag");
    assert_eq!(reply(b"mg k z\r\n"), "CLIENT_ERROR invalid flag");
    assert_eq!(
        reply(b"mg k Tx\r\n"),
        "CLIENT_ERROR bad token in command line format"
    );
    assert_eq!(
        reply(b"mg k N\r\n"),
        "CLIENT_ERROR bad token in command line format"
    );
    assert_eq!(reply(b"mg k! b\r\n"), "CLIENT_ERROR error decoding key");
    assert_eq!(
        reply(b"md k v v\r\n"),
        "CLIENT_ERROR invalid or duplicate flag"
    );
    assert_eq!(
        reply(b"ma k Dx\r\n"),
        "CLIENT_ERROR invalid or duplicate flag"
    );
    assert_eq!(
        reply(b"ma k MX\r\n"),
        "CLIENT_ERROR invalid mode for ma M token"
    );
    assert_eq!(
        reply(b"mg k MAB\r\n"),
        "CLIENT_ERROR incorrect length for M token"
    );
    let long_opaque = format!("mg k O{}\r\n", "x".repeat(32));
    assert_eq!(
        reply(long_opaque.as_bytes()),
        "CLIENT_ERROR opaque token too long"
    );
}

#[test]
fn meta_errors_are_never_silenced() {
    assert!(!rejected(b"mg k q z\r\n").noreply);
}

#[test]
fn too_many_flags_are_refused() {
    let flags = "a ".repeat(18);
    let line = format!("mg k {flags}\r\n");
    assert_eq!(
        reply(line.as_bytes()),
        "CLIENT_ERROR options flags are too long"
    );
    let line = format!("md k {flags}\r\n");
    assert_eq!(
        reply(line.as_bytes()),
        "CLIENT_ERROR options flags too long"
    );
    // Key + 17 flags: memcached's ntokens is 20, the most it accepts.
    let ok_flags = "v c t k s f h l u q O1 T1 N1 R1 E1 P L";
    assert!(matches!(
        ok(format!("mg k {ok_flags}\r\n").as_bytes()).0,
        Request::MetaGet(_)
    ));
}

#[test]
fn ms_reads_its_data_block() {
    let (req, used) = ok(b"ms k 2 T10 F3 MA\r\nhi\r\n");
    assert_eq!(used, 22);
    let Request::MetaSet { meta, data } = req else {
        panic!()
    };
    assert_eq!(data, b"hi");
    assert_eq!(
        (meta.ttl, meta.client_flags, meta.mode),
        (Some(10), 3, Some(b'A'))
    );
}

#[test]
fn ms_errors_swallow_the_announced_data() {
    let r = rejected(b"ms k 5 zz\r\nhello\r\n");
    assert_eq!(
        (r.reply, r.consumed, r.swallow),
        (Reject::InvalidFlag, 11, 7)
    );
    let r = rejected(b"ms k 5 MZ\r\nhello\r\n");
    assert_eq!((r.reply, r.swallow), (Reject::MsMode, 7));
    let r = rejected(b"ms k 5 Fx\r\n");
    assert_eq!((r.reply, r.swallow), (Reject::BadFormat, 7));
    // Without a readable length there is nothing to swallow.
    let r = rejected(b"ms k x\r\n");
    assert_eq!((r.reply, r.swallow), (Reject::BadFormat, 0));
    assert_eq!(reply(b"ms k\r\n"), "CLIENT_ERROR bad command line format");
}

#[test]
fn ms_bad_chunk_is_reported_even_when_quiet() {
    let r = rejected(b"ms k 1 q\r\nab\r\n");
    assert_eq!((r.reply, r.noreply), (Reject::BadDataChunk, false));
}

#[test]
fn ms_too_large_unlinks_and_is_not_quiet() {
    let limits = Limits {
        max_item_size: 100,
        ..Limits::default()
    };
    let (req, _) = parse(b"ms k 500 q\r\n", &limits).unwrap().unwrap();
    assert_eq!(
        req,
        Request::TooLarge {
            key: b"k",
            swallow: 502,
            unlink: true,
            noreply: false,
            base64: false
        }
    );
}

#[test]
fn base64_keys_are_decoded_for_lookup() {
    let (req, _) = ok(b"mg Zm9v b v\r\n");
    let Request::MetaGet(m) = req else { panic!() };
    let mut buf = [0u8; 256];
    assert_eq!(m.lookup_key(&mut buf), b"foo");
}

#[test]
fn ma_defaults() {
    let Request::MetaArith(m) = ok(b"ma n\r\n").0 else {
        panic!()
    };
    assert_eq!((m.delta, m.initial, m.mode), (1, 0, None));
    let Request::MetaArith(m) = ok(b"ma n D5 J9 N0 MD\r\n").0 else {
        panic!()
    };
    assert_eq!(
        (m.delta, m.initial, m.vivify, m.mode),
        (5, 9, Some(0), Some(b'D'))
    );
}
