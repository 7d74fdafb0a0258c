//! The classic text protocol: `get`, `set`, `delete`, `incr`, ... .
//!
//! Dispatch and validation order follow memcached 1.6's
//! `process_command_ascii` and the `process_*_command` functions of
//! `proto_text.c`, because the order decides which error a malformed line
//! gets: first the token count (`ERROR`), then `noreply` is noted (so later
//! errors are silent, as memcached's `out_string` drops them), then the key
//! length, then the numbers.

use super::number::{parse_i32, parse_i64, parse_u32, parse_u64};
use super::{
    KEY_MAX_LENGTH, Keys, Limits, Line, ParseResult, ProtocolError, Reject, Request, StoreMode,
    data_block, item_size, reject,
};

/// Parses a text-protocol command whose line is `line` and which used
/// `consumed` bytes of `buf` so far.
pub(super) fn parse<'a>(
    line: &Line<'a>,
    buf: &'a [u8],
    consumed: usize,
    limits: &Limits,
) -> ParseResult<'a> {
    let n = line.nargs;
    let err = |r: Reject, noreply: bool| Err(reject(r, consumed, noreply));
    let done = |req: Request<'a>| Ok(Some((req, consumed)));
    match line.cmd {
        b"get" | b"gets" | b"bget" => {
            if n < 1 {
                return err(Reject::Error, false);
            }
            let keys = Keys::new(line.rest);
            if keys.iter().any(|k| k.len() > KEY_MAX_LENGTH) {
                return err(Reject::BadFormat, false);
            }
            done(Request::Get {
                keys,
                cas: line.cmd == b"gets",
            })
        }
        b"gat" | b"gats" => {
            if n < 1 {
                return err(Reject::Error, false);
            }
            let Some(exptime) = parse_i64(line.args[0]) else {
                return err(Reject::InvalidExptime, false);
            };
            let keys = Keys::new(skip_token(line.rest));
            if keys.iter().any(|k| k.len() > KEY_MAX_LENGTH) {
                return err(Reject::BadFormat, false);
            }
            done(Request::Gat {
                exptime,
                keys,
                cas: line.cmd == b"gats",
            })
        }
        b"set" => storage(line, buf, consumed, limits, StoreMode::Set),
        b"add" => storage(line, buf, consumed, limits, StoreMode::Add),
        b"replace" => storage(line, buf, consumed, limits, StoreMode::Replace),
        b"append" => storage(line, buf, consumed, limits, StoreMode::Append),
        b"prepend" => storage(line, buf, consumed, limits, StoreMode::Prepend),
        b"cas" => storage(line, buf, consumed, limits, StoreMode::Cas),
        b"delete" => {
            if !(1..=3).contains(&n) {
                return err(Reject::Error, false);
            }
            let mut noreply = false;
            if n > 1 {
                // The historical `delete <key> 0` form is still accepted.
                let hold_is_zero = line.args[1] == b"0";
                noreply = line.noreply();
                let valid =
                    (n == 2 && (hold_is_zero || noreply)) || (n == 3 && hold_is_zero && noreply);
                if !valid {
                    return err(Reject::DeleteUsage, noreply);
                }
            }
            let key = line.args[0];
            if key.len() > KEY_MAX_LENGTH {
                return err(Reject::BadFormat, noreply);
            }
            done(Request::Delete { key, noreply })
        }
        b"incr" | b"decr" => {
            if !(2..=3).contains(&n) {
                return err(Reject::Error, false);
            }
            let noreply = line.noreply();
            let key = line.args[0];
            if key.len() > KEY_MAX_LENGTH {
                return err(Reject::BadFormat, noreply);
            }
            let Some(delta) = parse_u64(line.args[1]) else {
                return err(Reject::InvalidDelta, noreply);
            };
            done(Request::Arith {
                incr: line.cmd == b"incr",
                key,
                delta,
                noreply,
            })
        }
        b"touch" => {
            if !(2..=3).contains(&n) {
                return err(Reject::Error, false);
            }
            let noreply = line.noreply();
            let key = line.args[0];
            if key.len() > KEY_MAX_LENGTH {
                return err(Reject::BadFormat, noreply);
            }
            let Some(exptime) = parse_i64(line.args[1]) else {
                return err(Reject::InvalidExptime, noreply);
            };
            done(Request::Touch {
                key,
                exptime,
                noreply,
            })
        }
        b"flush_all" => {
            if n > 2 {
                return err(Reject::Error, false);
            }
            let noreply = line.noreply();
            let mut delay = 0;
            if n != usize::from(noreply) {
                match parse_i64(line.args[0]) {
                    Some(d) => delay = d,
                    None => return err(Reject::InvalidExptime, noreply),
                }
            }
            done(Request::FlushAll { delay, noreply })
        }
        b"version" => done(Request::Version),
        b"quit" => done(Request::Quit),
        b"shutdown" => done(Request::Shutdown),
        b"stats" => done(Request::Stats {
            args: trim_end(line.rest),
        }),
        b"verbosity" => {
            if !(1..=2).contains(&n) {
                return err(Reject::Error, false);
            }
            let noreply = line.noreply();
            if parse_u32(line.args[0]).is_none() {
                return err(Reject::BadFormat, noreply);
            }
            done(Request::Verbosity { noreply })
        }
        cmd => {
            // memcached closes on an HTTP request line, but only in its final
            // fallback branch: commands starting with one of these letters
            // are answered ERROR by their own branch first.
            let first_letter_branch = b"gsacidt".contains(&cmd[0]);
            if !first_letter_branch && line.last().starts_with(b"HTTP/") {
                return Err(ProtocolError::HttpRequest);
            }
            err(Reject::Error, false)
        }
    }
}

/// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]` + data block.
fn storage<'a>(
    line: &Line<'a>,
    buf: &'a [u8],
    consumed: usize,
    limits: &Limits,
    mode: StoreMode,
) -> ParseResult<'a> {
    let base = if mode == StoreMode::Cas { 5 } else { 4 };
    let n = line.nargs;
    if n != base && n != base + 1 {
        return Err(reject(Reject::Error, consumed, false));
    }
    let noreply = line.noreply();
    let bad = |r: Reject| Err(reject(r, consumed, noreply));
    let key = line.args[0];
    if key.len() > KEY_MAX_LENGTH {
        return bad(Reject::BadFormat);
    }
    let (Some(flags), Some(exptime), Some(vlen)) = (
        parse_u32(line.args[1]),
        parse_i64(line.args[2]),
        parse_i32(line.args[3]),
    ) else {
        return bad(Reject::BadFormat);
    };
    let mut cas_unique = 0;
    if mode == StoreMode::Cas {
        match parse_u64(line.args[4]) {
            Some(c) => cas_unique = c,
            None => return bad(Reject::BadFormat),
        }
    }
    let Ok(vlen) = usize::try_from(vlen) else {
        return bad(Reject::BadFormat);
    };
    if vlen > i32::MAX as usize - 2 {
        return bad(Reject::BadFormat);
    }
    if item_size(key.len(), vlen) > limits.max_item_size {
        let req = Request::TooLarge {
            key,
            swallow: vlen + 2,
            // memcached unlinks the old value only for a failed `set`.
            unlink: mode == StoreMode::Set,
            noreply,
            base64: false,
        };
        return Ok(Some((req, consumed)));
    }
    let Some((data, total)) = data_block(buf, consumed, vlen, noreply)? else {
        return Ok(None);
    };
    let req = Request::Store {
        mode,
        key,
        flags,
        exptime,
        data,
        cas_unique,
        noreply,
    };
    Ok(Some((req, total)))
}

/// Drops the first space-separated token and the spaces after it.
pub(super) fn skip_token(s: &[u8]) -> &[u8] {
    let s = &s[s.iter().position(|&b| b != b' ').unwrap_or(s.len())..];
    let s = &s[s.iter().position(|&b| b == b' ').unwrap_or(s.len())..];
    &s[s.iter().position(|&b| b != b' ').unwrap_or(s.len())..]
}

fn trim_end(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &s[..end]
}
