//! The meta protocol: `mg`, `ms`, `md`, `ma`, `mn`.
//!
//! A meta command is `<cm> <key> [<datalen>] <flag>*`; each flag is one
//! letter, some followed by a token (`T30`, `Oabc`). Flags are checked the
//! way memcached 1.6's `_meta_flag_preparse` does: a repeated letter (or a
//! byte >= 127) is `CLIENT_ERROR duplicate flag`, an unknown letter is
//! `CLIENT_ERROR invalid flag`, a bad numeric token sets an error that is
//! reported after the whole list was read. `md` and `ma` report any of
//! these as `CLIENT_ERROR invalid or duplicate flag`. Errors of meta
//! commands are always sent, even in quiet mode; a rejected `ms` whose data
//! length was understood swallows its data block.

use super::number::{parse_i32, parse_i64, parse_u32, parse_u64};
use super::text::skip_token;
use super::{
    KEY_MAX_LENGTH, Limits, Line, Meta, ParseResult, ProtocolError, Reject, Rejection, Request,
    base64, data_block, item_size, reject,
};

/// memcached's `MFLAG_MAX_OPT_LENGTH`: more tokens than this is an error.
const MAX_OPT_TOKENS: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`.
pub(crate) const MAX_OPAQUE: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Get,
    Set,
    Delete,
    Arith,
}

pub(super) fn parse<'a>(
    line: &Line<'a>,
    buf: &'a [u8],
    consumed: usize,
    limits: &Limits,
) -> ParseResult<'a> {
    let cmd = match line.cmd[1] {
        b'g' => Cmd::Get,
        b's' => Cmd::Set,
        b'd' => Cmd::Delete,
        b'a' => Cmd::Arith,
        b'n' => return Ok(Some((Request::MetaNoop, consumed))),
        _ => return Err(reject(Reject::Error, consumed, false)),
    };
    let err = |r: Reject| Err(reject(r, consumed, false));
    if line.nargs < 1 {
        return err(Reject::Error);
    }
    let key = line.args[0];
    if key.len() > KEY_MAX_LENGTH {
        return err(Reject::BadFormat);
    }
    if cmd == Cmd::Set && line.nargs == 1 {
        return err(Reject::BadFormat);
    }
    // memcached counts the command and a terminal token: ntokens = nargs + 2.
    if line.nargs + 2 > MAX_OPT_TOKENS {
        return err(if cmd == Cmd::Get {
            Reject::MgFlagsTooLong
        } else {
            Reject::FlagsTooLong
        });
    }
    let mut raw = skip_token(line.rest);
    let mut vlen = 0;
    if cmd == Cmd::Set {
        match parse_i32(line.args[1]).and_then(|v| usize::try_from(v).ok()) {
            Some(v) if v <= i32::MAX as usize - 2 => vlen = v,
            _ => return err(Reject::BadFormat),
        }
        raw = skip_token(raw);
    }
    // From here on a rejected `ms` swallows its data block.
    let swallow = if cmd == Cmd::Set { vlen + 2 } else { 0 };
    let fail = |r: Reject| {
        Err(ProtocolError::Rejected(Rejection {
            reply: r,
            consumed,
            swallow,
            noreply: false,
        }))
    };
    let mut meta = Meta::new(key);
    meta.raw = raw;
    if let Err(r) = preparse(&mut meta) {
        return fail(match cmd {
            Cmd::Delete | Cmd::Arith => Reject::InvalidOrDuplicateFlag,
            Cmd::Get | Cmd::Set => r,
        });
    }
    if meta.opaque.is_some_and(|o| o.len() > MAX_OPAQUE) {
        return fail(Reject::OpaqueTooLong);
    }
    match cmd {
        Cmd::Get => Ok(Some((Request::MetaGet(meta), consumed))),
        Cmd::Delete => Ok(Some((Request::MetaDelete(meta), consumed))),
        Cmd::Arith => match meta.mode {
            None | Some(b'I' | b'+' | b'D' | b'-') => {
                Ok(Some((Request::MetaArith(meta), consumed)))
            }
            Some(_) => fail(Reject::MaMode),
        },
        Cmd::Set => {
            if let Some(m) = meta.mode {
                if !matches!(m, b'E' | b'A' | b'P' | b'R' | b'S') {
                    return fail(Reject::MsMode);
                }
            }
            let mut kbuf = [0u8; 256];
            let klen = meta.lookup_key(&mut kbuf).len();
            if item_size(klen, vlen) > limits.max_item_size {
                let req = Request::TooLarge {
                    key,
                    swallow,
                    unlink: true,
                    noreply: false,
                    base64: meta.base64,
                };
                return Ok(Some((req, consumed)));
            }
            // ms always reports a bad data chunk, quiet mode or not.
            let Some((data, total)) = data_block(buf, consumed, vlen, false)? else {
                return Ok(None);
            };
            Ok(Some((Request::MetaSet { meta, data }, total)))
        }
    }
}

/// memcached's `_meta_flag_preparse`: reads every flag, remembering the
/// last error; duplicate and unknown flags stop at once.
fn preparse(meta: &mut Meta<'_>) -> Result<(), Reject> {
    let mut seen = [false; 128];
    let mut error = None;
    for tok in meta.flags() {
        let o = tok[0];
        if o >= 127 || seen[usize::from(o)] {
            return Err(Reject::DuplicateFlag);
        }
        seen[usize::from(o)] = true;
        let arg = &tok[1..];
        match o {
            b'b' => {
                let mut out = [0u8; 256];
                if base64::decode(meta.key, &mut out).is_none() {
                    error = Some(Reject::KeyDecode);
                }
                meta.base64 = true;
            }
            b'N' => match parse_i64(arg) {
                Some(v) => meta.vivify = Some(v),
                None => error = Some(Reject::BadToken),
            },
            b'T' => match parse_i64(arg) {
                Some(v) => meta.ttl = Some(v),
                None => error = Some(Reject::BadToken),
            },
            b'R' => match parse_i64(arg) {
                Some(v) => meta.recache = Some(v),
                None => error = Some(Reject::BadToken),
            },
            b'O' => meta.opaque = Some(tok),
            b'l' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' => {}
            b'v' => meta.value = true,
            b'u' => meta.no_update = true,
            b'q' => meta.quiet = true,
            b'x' => meta.remove_value = true,
            b'I' => meta.invalidate = true,
            // memcached leaves the default message for a bad F token.
            b'F' => match parse_u32(arg) {
                Some(v) => meta.client_flags = v,
                None => error = Some(Reject::BadFormat),
            },
            b'C' => match parse_u64(arg) {
                Some(v) => meta.compare_cas = Some(v),
                None => error = Some(Reject::BadToken),
            },
            b'E' => match parse_u64(arg) {
                Some(v) => meta.new_cas = Some(v),
                None => error = Some(Reject::BadToken),
            },
            b'M' => {
                if tok.len() != 2 {
                    error = Some(Reject::ModeLength);
                } else {
                    meta.mode = Some(tok[1]);
                }
            }
            b'J' => match parse_u64(arg) {
                Some(v) => meta.initial = v,
                None => error = Some(Reject::InitialValue),
            },
            b'D' => match parse_u64(arg) {
                Some(v) => meta.delta = v,
                None => error = Some(Reject::DeltaValue),
            },
            _ => return Err(Reject::InvalidFlag),
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
