//! Parser unit tests: framing, every command's happy path and every error.

use super::*;

fn limits() -> Limits {
    Limits::default()
}

fn ok(input: &[u8]) -> (Request<'_>, usize) {
    match parse(input, &limits()) {
        Ok(Some(r)) => r,
        other => panic!("{:?} -> {:?}", String::from_utf8_lossy(input), other),
    }
}

fn rejected(input: &[u8]) -> Rejection {
    match parse(input, &limits()) {
        Err(ProtocolError::Rejected(r)) => r,
        other => panic!("{:?} -> {:?}", String::from_utf8_lossy(input), other),
    }
}

fn reply(input: &[u8]) -> &'static str {
    rejected(input).reply.as_str()
}

#[test]
fn get_with_many_keys_borrows_them() {
    let (req, used) = ok(b"get a bb  ccc\r\n");
    assert_eq!(used, 15);
    let Request::Get { keys, cas: false } = req else {
        panic!("{req:?}")
    };
    assert_eq!(keys.iter().collect::<Vec<_>>(), [&b"a"[..], b"bb", b"ccc"]);
}

/// A one-key `get` takes a shortcut past the tokenizer; a leading space
/// (which the tokenizer skips) sends the same line the general way.
#[test]
fn the_one_key_get_shortcut_parses_as_the_general_path_does() {
    fn outcome(input: &[u8], extra: usize) -> String {
        match parse(input, &limits()) {
            Ok(Some((req, used))) => format!("{req:?} using {}", used - extra),
            Ok(None) => "incomplete".into(),
            Err(ProtocolError::Rejected(r)) => {
                format!("{:?} using {}", r.reply, r.consumed - extra)
            }
            Err(e) => format!("{e:?}"),
        }
    }
    let max = format!("get {}", "k".repeat(KEY_MAX_LENGTH));
    let over = format!("get {}", "k".repeat(KEY_MAX_LENGTH + 1));
    let lines = [
        "get k",
        "get key:0123456789",
        "get  k",
        "get k ",
        "get k  x",
        "get ",
        "get",
        "get k\r",
        "get k\rx",
        "get \tk",
        &max,
        &over,
    ];
    for line in lines {
        for end in ["\r\n", "\n"] {
            let short = format!("{line}{end}");
            let general = format!(" {line}{end}");
            assert_eq!(
                outcome(short.as_bytes(), 0),
                outcome(general.as_bytes(), 1),
                "{short:?}"
            );
        }
    }
    let (req, used) = ok(b"get k1\r\nget k2\r\n");
    assert_eq!(used, 8);
    let Request::Get { keys, cas: false } = req else {
        panic!("{req:?}")
    };
    assert_eq!(keys.as_bytes(), b"k1");
    assert_eq!(keys.single(), Some(&b"k1"[..]));
    let Request::Get { keys, .. } = ok(b"get k1 k2\r\n").0 else {
        panic!()
    };
    assert_eq!(keys.single(), None);
}

#[test]
fn gets_and_bget_are_gets() {
    assert!(matches!(
        ok(b"gets a\r\n").0,
        Request::Get { cas: true, .. }
    ));
    assert!(matches!(
        ok(b"bget a\r\n").0,
        Request::Get { cas: false, .. }
    ));
}

#[test]
fn bare_newline_terminates_a_line() {
    let (req, used) = ok(b"get a\nget b\n");
    assert_eq!(used, 6);
    assert!(matches!(req, Request::Get { .. }));
}

#[test]
fn get_without_key_is_error() {
    assert_eq!(reply(b"get\r\n"), "ERROR");
}

#[test]
fn get_with_long_key_is_bad_format() {
    let mut line = b"get ok ".to_vec();
    line.extend(std::iter::repeat_n(b'k', 251));
    line.extend(b"\r\n");
    assert_eq!(reply(&line), "CLIENT_ERROR bad command line format");
    let mut line = b"get ".to_vec();
    line.extend(std::iter::repeat_n(b'k', 250));
    line.extend(b"\r\n");
    ok(&line);
}

#[test]
fn gat_parses_exptime_then_keys() {
    let (req, _) = ok(b"gats 100 a b\r\n");
    let Request::Gat { exptime, keys, cas } = req else {
        panic!()
    };
    assert_eq!((exptime, cas), (100, true));
    assert_eq!(keys.iter().count(), 2);
    assert_eq!(
        reply(b"gat x a\r\n"),
        "CLIENT_ERROR invalid exptime argument"
    );
    assert_eq!(reply(b"gat\r\n"), "ERROR");
    // memcached answers a key-less gat with a bare END.
    let (req, _) = ok(b"gat 10\r\n");
    assert!(matches!(req, Request::Gat { keys, .. } if keys.iter().count() == 0));
}

#[test]
fn set_reads_flags_exptime_and_data() {
    let (req, used) = ok(b"set k 4294967295 -1 3 noreply\r\na\r\n\r\n");
    assert_eq!(used, 36);
    assert_eq!(
        req,
        Request::Store {
            mode: StoreMode::Set,
            key: b"k",
            flags: u32::MAX,
            exptime: -1,
            data: b"a\r\n",
            cas_unique: 0,
            noreply: true,
        }
    );
}

#[test]
fn every_storage_command_maps_to_its_mode() {
    for (cmd, mode) in [
        (&b"set"[..], StoreMode::Set),
        (b"add", StoreMode::Add),
        (b"replace", StoreMode::Replace),
        (b"append", StoreMode::Append),
        (b"prepend", StoreMode::Prepend),
    ] {
        let mut line = cmd.to_vec();
        line.extend(b" k 0 0 1\r\nx\r\n");
        assert!(matches!(ok(&line).0, Request::Store { mode: m, .. } if m == mode));
    }
    let (req, _) = ok(b"cas k 0 0 1 99\r\nx\r\n");
    assert!(matches!(
        req,
        Request::Store {
            mode: StoreMode::Cas,
            cas_unique: 99,
            ..
        }
    ));
}

#[test]
fn storage_token_count_errors_are_error_and_do_not_swallow() {
    let r = rejected(b"set k 0 0\r\nhello\r\n");
    assert_eq!((r.reply, r.consumed, r.swallow), (Reject::Error, 11, 0));
    assert_eq!(reply(b"set k 0 0 1 noreply extra\r\n"), "ERROR");
    assert_eq!(reply(b"cas k 0 0 1\r\n"), "ERROR");
}

#[test]
fn storage_bad_numbers_are_bad_format() {
    for line in [
        &b"set k x 0 1\r\n"[..],
        b"set k 0 x 1\r\n",
        b"set k 0 0 x\r\n",
        b"set k 0 0 -1\r\n",
        b"set k 4294967296 0 1\r\n",
        b"cas k 0 0 1 x\r\n",
    ] {
        let r = rejected(line);
        assert_eq!(r.reply, Reject::BadFormat, "{:?}", line);
        assert_eq!(r.consumed, line.len());
        assert!(!r.noreply);
    }
}

#[test]
fn storage_errors_after_noreply_are_silent() {
    let r = rejected(b"set k 0 0 x noreply\r\n");
    assert_eq!(r.reply, Reject::BadFormat);
    assert!(r.noreply);
}

#[test]
fn data_block_must_end_with_crlf() {
    let r = rejected(b"set k 0 0 2\r\nabc\r\n");
    assert_eq!(r.reply, Reject::BadDataChunk);
    // Exactly the announced bytes plus two are consumed, as in memcached.
    assert_eq!(r.consumed, 13 + 4);
    assert_eq!(
        reply(b"set k 0 0 2\r\nab\n\n"),
        "CLIENT_ERROR bad data chunk"
    );
}

#[test]
fn oversized_item_is_answered_before_its_data() {
    let limits = Limits {
        max_item_size: 100,
        ..Limits::default()
    };
    let (req, used) = parse(b"set k 0 0 1000\r\n", &limits).unwrap().unwrap();
    assert_eq!(used, 16);
    assert_eq!(
        req,
        Request::TooLarge {
            key: b"k",
            swallow: 1002,
            unlink: true,
            noreply: false,
            base64: false
        }
    );
    assert_eq!(req.swallow(), 1002);
    let (req, _) = parse(b"add k 0 0 1000 noreply\r\n", &limits)
        .unwrap()
        .unwrap();
    assert!(matches!(
        req,
        Request::TooLarge {
            unlink: false,
            noreply: true,
            ..
        }
    ));
}

#[test]
fn item_at_the_limit_is_accepted() {
    let limits = Limits {
        max_item_size: item_size(1, 4),
        ..Limits::default()
    };
    assert!(
        parse(b"set k 0 0 4\r\nabcd\r\n", &limits)
            .unwrap()
            .is_some()
    );
    let (req, _) = parse(b"set k 0 0 5\r\n", &limits).unwrap().unwrap();
    assert!(matches!(req, Request::TooLarge { .. }));
}

#[test]
fn delete_accepts_legacy_zero_and_noreply() {
    assert_eq!(
        ok(b"delete k\r\n").0,
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert!(matches!(
        ok(b"delete k 0\r\n").0,
        Request::Delete { noreply: false, .. }
    ));
    assert!(matches!(
        ok(b"delete k noreply\r\n").0,
        Request::Delete { noreply: true, .. }
    ));
    assert!(matches!(
        ok(b"delete k 0 noreply\r\n").0,
        Request::Delete { noreply: true, .. }
    ));
    assert_eq!(
        reply(b"delete k 5\r\n"),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
    );
    assert_eq!(reply(b"delete\r\n"), "ERROR");
    assert_eq!(reply(b"delete a b c d\r\n"), "ERROR");
}

#[test]
fn incr_decr_need_a_decimal_delta() {
    assert_eq!(
        ok(b"incr n 18446744073709551615\r\n").0,
        Request::Arith {
            incr: true,
            key: b"n",
            delta: u64::MAX,
            noreply: false
        }
    );
    assert!(matches!(
        ok(b"decr n 1 noreply\r\n").0,
        Request::Arith {
            incr: false,
            noreply: true,
            ..
        }
    ));
    assert_eq!(
        reply(b"incr n abc\r\n"),
        "CLIENT_ERROR invalid numeric delta argument"
    );
    assert_eq!(
        reply(b"incr n -1\r\n"),
        "CLIENT_ERROR invalid numeric delta argument"
    );
    assert_eq!(reply(b"incr n\r\n"), "ERROR");
}

#[test]
fn touch_needs_an_exptime() {
    assert!(matches!(
        ok(b"touch k 10\r\n").0,
        Request::Touch { exptime: 10, .. }
    ));
    assert_eq!(
        reply(b"touch k x\r\n"),
        "CLIENT_ERROR invalid exptime argument"
    );
    assert_eq!(reply(b"touch k\r\n"), "ERROR");
}

#[test]
fn flush_all_forms() {
    assert_eq!(
        ok(b"flush_all\r\n").0,
        Request::FlushAll {
            delay: 0,
            noreply: false
        }
    );
    assert_eq!(
        ok(b"flush_all 5\r\n").0,
        Request::FlushAll {
            delay: 5,
            noreply: false
        }
    );
    assert_eq!(
        ok(b"flush_all noreply\r\n").0,
        Request::FlushAll {
            delay: 0,
            noreply: true
        }
    );
    assert_eq!(
        ok(b"flush_all 7 noreply\r\n").0,
        Request::FlushAll {
            delay: 7,
            noreply: true
        }
    );
    assert_eq!(
        reply(b"flush_all x\r\n"),
        "CLIENT_ERROR invalid exptime argument"
    );
    assert_eq!(reply(b"flush_all 1 2 3\r\n"), "ERROR");
}

#[test]
fn misc_commands() {
    assert_eq!(ok(b"version\r\n").0, Request::Version);
    assert_eq!(ok(b"quit\r\n").0, Request::Quit);
    assert_eq!(ok(b"shutdown\r\n").0, Request::Shutdown);
    assert_eq!(ok(b"stats\r\n").0, Request::Stats { args: b"" });
    assert_eq!(
        ok(b"stats  items  \r\n").0,
        Request::Stats { args: b"items" }
    );
    assert_eq!(
        ok(b"verbosity 1\r\n").0,
        Request::Verbosity { noreply: false }
    );
    assert_eq!(reply(b"verbosity\r\n"), "ERROR");
    assert_eq!(
        reply(b"verbosity x\r\n"),
        "CLIENT_ERROR bad command line format"
    );
}

#[test]
fn unknown_and_short_commands_are_error() {
    assert_eq!(reply(b"bogus\r\n"), "ERROR");
    assert_eq!(reply(b"\r\n"), "ERROR");
    assert_eq!(reply(b"\n"), "ERROR");
    assert_eq!(reply(b"x\r\n"), "ERROR");
    assert_eq!(reply(b"   \r\n"), "ERROR");
    assert_eq!(reply(b"mz k\r\n"), "ERROR");
}

#[test]
fn http_request_closes_the_connection() {
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\n", &limits()),
        Err(ProtocolError::HttpRequest)
    );
    // A lowercase get is a memcached get of the keys "/" and "HTTP/1.1".
    assert!(matches!(ok(b"get / HTTP/1.1\r\n").0, Request::Get { .. }));
}

#[test]
fn line_without_newline_is_bounded() {
    let junk = vec![b'x'; 2047];
    assert_eq!(parse(&junk, &limits()), Ok(None));
    let junk = vec![b'x'; 2048];
    assert_eq!(
        parse(&junk, &limits()),
        Err(ProtocolError::LineTooLong { limit: 2048 })
    );
    assert!(parse(&junk, &limits()).unwrap_err().is_fatal());
}

#[test]
fn long_multiget_lines_may_exceed_the_line_limit() {
    let mut line = b"get".to_vec();
    for i in 0..500 {
        line.extend(format!(" key{i}").as_bytes());
    }
    assert!(line.len() > 2048);
    assert_eq!(parse(&line, &limits()), Ok(None));
    line.extend(b"\r\n");
    let (req, used) = ok(&line);
    assert_eq!(used, line.len());
    assert!(matches!(req, Request::Get { keys, .. } if keys.iter().count() == 500));
    let small = Limits {
        max_get_line: 4096,
        ..Limits::default()
    };
    let long = vec![b' '; 5000];
    let mut get = b"get ".to_vec();
    get.extend(long);
    assert!(matches!(
        parse(&get, &small),
        Err(ProtocolError::LineTooLong { limit: 4096 })
    ));
}

#[test]
fn every_split_point_needs_more_until_complete() {
    let inputs: [&[u8]; 6] = [
        b"set key 1 2 5\r\nhello\r\n",
        b"get a b c\r\n",
        b"ms key 3 T10 F5 c\r\nabc\r\n",
        b"mg key v c t k O1\r\n",
        b"cas k 0 0 1 5 noreply\r\nx\r\n",
        b"incr n 5\r\n",
    ];
    for input in inputs {
        for cut in 0..input.len() {
            assert_eq!(parse(&input[..cut], &limits()), Ok(None), "{cut}");
        }
        let (_, used) = ok(input);
        assert_eq!(used, input.len());
    }
}

#[test]
fn pipelined_requests_parse_one_at_a_time() {
    let mut buf: &[u8] = b"set a 0 0 1\r\n1\r\nget a\r\nmn\r\ndelete a\r\n";
    let mut seen = Vec::new();
    while let Some((req, used)) = parse(buf, &limits()).unwrap() {
        seen.push(std::mem::discriminant(&req));
        buf = &buf[used..];
    }
    assert!(buf.is_empty());
    assert_eq!(seen.len(), 4);
}

mod meta;
