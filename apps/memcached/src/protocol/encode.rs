//! Reply encoders: append exact memcached reply bytes to a [`BytesMut`].
//!
//! Every function appends whole lines (with `\r\n`), except the meta
//! helpers, which build one reply line piece by piece: a status code
//! ([`meta_code`] or [`meta_value`]), return flags ([`meta_u64`],
//! [`meta_ttl`], [`meta_token`], [`meta_key`]), then [`crlf`].
//!
//! ```
//! use bytes::BytesMut;
//! use memcached::protocol::encode;
//! let mut out = BytesMut::new();
//! encode::value(&mut out, b"k", 3, b"hi", Some(7));
//! encode::end(&mut out);
//! assert_eq!(&out[..], b"VALUE k 3 2 7\r\nhi\r\nEND\r\n");
//! ```

use bytes::{BufMut, BytesMut};

use super::{Reject, base64};

/// Appends the decimal form of `v`.
pub fn put_u64(out: &mut impl BufMut, mut v: u64) {
    // Flags (usually 0) and value lengths are short: a `put_slice` would
    // call `memcpy` for one to three bytes (callgrind: most of this
    // function's cost).
    if v < 10 {
        out.put_u8(b'0' + v as u8);
        return;
    }
    if v < 1000 {
        if v >= 100 {
            out.put_u8(b'0' + (v / 100) as u8);
        }
        out.put_u8(b'0' + (v / 10 % 10) as u8);
        out.put_u8(b'0' + (v % 10) as u8);
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.put_slice(&buf[i..]);
}

/// How many digits the decimal form of `v` has.
fn decimal_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Appends the decimal form of a signed `v`.
pub fn put_i64(out: &mut BytesMut, v: i64) {
    if v < 0 {
        out.put_u8(b'-');
    }
    put_u64(out, v.unsigned_abs());
}

/// Appends `\r\n`.
pub fn crlf(out: &mut BytesMut) {
    out.put_slice(b"\r\n");
}

/// Appends `text` and `\r\n`.
pub fn line(out: &mut BytesMut, text: &[u8]) {
    out.reserve(text.len() + 2);
    out.put_slice(text);
    crlf(out);
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
pub fn value(out: &mut BytesMut, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    out.reserve(key.len() + data.len() + 64);
    out.put_slice(b"VALUE ");
    out.put_slice(key);
    out.put_u8(b' ');
    put_u64(out, u64::from(flags));
    out.put_u8(b' ');
    put_u64(out, data.len() as u64);
    if let Some(cas) = cas {
        out.put_u8(b' ');
        put_u64(out, cas);
    }
    crlf(out);
    out.put_slice(data);
    crlf(out);
}

/// The `VALUE` block [`value`] appends, with no CAS, built as one buffer:
/// an item keeps it, so that answering a `get` hit is one copy (memcached
/// keeps the same suffix in its items). Returns the buffer and where the
/// data starts in it.
///
/// ```
/// use memcached::protocol::encode;
/// let (block, data_at) = encode::value_block(b"k", 3, b"hi");
/// assert_eq!(&block[..], b"VALUE k 3 2\r\nhi\r\n");
/// assert_eq!(&block[data_at..data_at + 2], b"hi");
/// ```
pub fn value_block(key: &[u8], flags: u32, data: &[u8]) -> (Vec<u8>, usize) {
    // Sized exactly: the item boxes it, and a spare byte would mean a
    // reallocation per stored item.
    let line =
        6 + key.len() + 1 + decimal_len(u64::from(flags)) + 1 + decimal_len(data.len() as u64);
    let mut block = Vec::with_capacity(line + 2 + data.len() + 2);
    block.extend_from_slice(b"VALUE ");
    block.extend_from_slice(key);
    block.push(b' ');
    put_u64(&mut block, u64::from(flags));
    block.push(b' ');
    put_u64(&mut block, data.len() as u64);
    block.extend_from_slice(b"\r\n");
    let data_at = block.len();
    block.extend_from_slice(data);
    block.extend_from_slice(b"\r\n");
    (block, data_at)
}

/// The length of [`value_block`]`(key, flags, data)`.
pub fn value_block_len(key_len: usize, flags: u32, data_len: usize) -> usize {
    6 + key_len
        + 1
        + decimal_len(u64::from(flags))
        + 1
        + decimal_len(data_len as u64)
        + 2
        + data_len
        + 2
}

/// Appends a [`value_block`] (whose `VALUE` line ends at `line_end`, before
/// its `\r\n`), with ` <cas>` added to the line when `cas` is given: the
/// same bytes as [`value`].
///
/// ```
/// use bytes::BytesMut;
/// use memcached::protocol::encode;
/// let (block, data_at) = encode::value_block(b"k", 3, b"hi");
/// let mut out = BytesMut::new();
/// encode::stored_value(&mut out, &block, data_at - 2, Some(7));
/// assert_eq!(&out[..], b"VALUE k 3 2 7\r\nhi\r\n");
/// ```
#[inline]
pub fn stored_value(out: &mut BytesMut, block: &[u8], line_end: usize, cas: Option<u64>) {
    match cas {
        None => out.put_slice(block),
        Some(cas) => {
            let (line, rest) = block.split_at(line_end);
            out.reserve(block.len() + 21);
            out.put_slice(line);
            out.put_u8(b' ');
            put_u64(out, cas);
            out.put_slice(rest);
        }
    }
}

/// `END\r\n`.
pub fn end(out: &mut BytesMut) {
    out.put_slice(b"END\r\n");
}

/// `STORED\r\n`.
pub fn stored(out: &mut BytesMut) {
    out.put_slice(b"STORED\r\n");
}

/// `NOT_STORED\r\n`.
pub fn not_stored(out: &mut BytesMut) {
    out.put_slice(b"NOT_STORED\r\n");
}

/// `EXISTS\r\n`.
pub fn exists(out: &mut BytesMut) {
    out.put_slice(b"EXISTS\r\n");
}

/// `NOT_FOUND\r\n`.
pub fn not_found(out: &mut BytesMut) {
    out.put_slice(b"NOT_FOUND\r\n");
}

/// `DELETED\r\n`.
pub fn deleted(out: &mut BytesMut) {
    out.put_slice(b"DELETED\r\n");
}

/// `TOUCHED\r\n`.
pub fn touched(out: &mut BytesMut) {
    out.put_slice(b"TOUCHED\r\n");
}

/// `OK\r\n`.
pub fn ok(out: &mut BytesMut) {
    out.put_slice(b"OK\r\n");
}

/// `ERROR\r\n`: unknown command.
pub fn error(out: &mut BytesMut) {
    out.put_slice(b"ERROR\r\n");
}

/// `<n>\r\n`: the result of `incr`/`decr`.
pub fn number(out: &mut BytesMut, n: u64) {
    put_u64(out, n);
    crlf(out);
}

/// `VERSION <version>\r\n`.
pub fn version(out: &mut BytesMut, version: &str) {
    out.put_slice(b"VERSION ");
    line(out, version.as_bytes());
}

/// `CLIENT_ERROR <msg>\r\n`.
pub fn client_error(out: &mut BytesMut, msg: &str) {
    out.put_slice(b"CLIENT_ERROR ");
    line(out, msg.as_bytes());
}

/// `SERVER_ERROR <msg>\r\n`.
pub fn server_error(out: &mut BytesMut, msg: &str) {
    out.put_slice(b"SERVER_ERROR ");
    line(out, msg.as_bytes());
}

/// The error line for a rejected request.
///
/// ```
/// use bytes::BytesMut;
/// use memcached::protocol::{encode, Reject};
/// let mut out = BytesMut::new();
/// encode::reject(&mut out, Reject::BadDataChunk);
/// assert_eq!(&out[..], b"CLIENT_ERROR bad data chunk\r\n");
/// ```
pub fn reject(out: &mut BytesMut, r: Reject) {
    line(out, r.as_str().as_bytes());
}

/// `STAT <name> <value>\r\n` with a numeric value.
pub fn stat(out: &mut BytesMut, name: &str, value: u64) {
    out.put_slice(b"STAT ");
    out.put_slice(name.as_bytes());
    out.put_u8(b' ');
    put_u64(out, value);
    crlf(out);
}

/// `STAT <name> <value>\r\n` with a text value.
pub fn stat_str(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(b"STAT ");
    out.put_slice(name.as_bytes());
    out.put_u8(b' ');
    line(out, value.as_bytes());
}

/// Meta status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCode {
    /// `HD`: success, no value.
    Hd,
    /// `EN`: miss (mg).
    En,
    /// `NF`: not found.
    Nf,
    /// `NS`: not stored.
    Ns,
    /// `EX`: CAS mismatch.
    Ex,
    /// `MN`: end of a pipeline (mn).
    Mn,
}

/// Starts a meta reply line with a two-letter code.
///
/// ```
/// use bytes::BytesMut;
/// use memcached::protocol::encode::{self, MetaCode};
/// let mut out = BytesMut::new();
/// encode::meta_code(&mut out, MetaCode::Hd);
/// encode::meta_u64(&mut out, b'c', 12);
/// encode::meta_token(&mut out, b"O99");
/// encode::crlf(&mut out);
/// assert_eq!(&out[..], b"HD c12 O99\r\n");
/// ```
pub fn meta_code(out: &mut BytesMut, code: MetaCode) {
    out.put_slice(match code {
        MetaCode::Hd => b"HD",
        MetaCode::En => b"EN",
        MetaCode::Nf => b"NF",
        MetaCode::Ns => b"NS",
        MetaCode::Ex => b"EX",
        MetaCode::Mn => b"MN",
    });
}

/// Starts a `VA <len>` meta reply line; the value follows after [`crlf`].
pub fn meta_value(out: &mut BytesMut, len: usize) {
    out.put_slice(b"VA ");
    put_u64(out, len as u64);
}

/// Appends ` <letter><n>`.
pub fn meta_u64(out: &mut BytesMut, letter: u8, n: u64) {
    out.put_u8(b' ');
    out.put_u8(letter);
    put_u64(out, n);
}

/// Appends ` t<remaining>` where `None` (never expires) prints `-1`.
pub fn meta_ttl(out: &mut BytesMut, remaining: Option<u64>) {
    out.put_slice(b" t");
    match remaining {
        Some(n) => put_u64(out, n),
        None => out.put_slice(b"-1"),
    }
}

/// Appends ` <token>` verbatim (the opaque `O...` flag, or `W`/`X`/`Z`).
pub fn meta_token(out: &mut BytesMut, token: &[u8]) {
    out.put_u8(b' ');
    out.put_slice(token);
}

/// Appends ` k<key>`, base64-encoded with a trailing ` b` for binary keys
/// (memcached's `META_KEY`).
pub fn meta_key(out: &mut BytesMut, key: &[u8], binary: bool) {
    out.put_slice(b" k");
    if binary {
        base64::encode(key, out);
        out.put_slice(b" b");
    } else {
        out.put_slice(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut BytesMut)) -> BytesMut {
        let mut out = BytesMut::new();
        f(&mut out);
        out
    }

    #[test]
    fn decimal_forms_at_every_digit_boundary() {
        for v in [
            0,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            999,
            1000,
            1001,
            65_535,
            u64::MAX,
        ] {
            assert_eq!(&run(|o| put_u64(o, v))[..], v.to_string().as_bytes(), "{v}");
            assert_eq!(decimal_len(v), v.to_string().len(), "{v}");
        }
        // A value block is allocated at its exact size (the item boxes it).
        for (flags, len) in [(0, 0), (9, 9), (10, 10), (u32::MAX, 1000)] {
            let (block, _) = value_block(b"key", flags, &vec![b'v'; len]);
            assert_eq!(block.capacity(), block.len(), "flags {flags}, {len} bytes");
        }
        assert_eq!(&run(|o| put_i64(o, -100))[..], b"-100");
    }

    #[test]
    fn numbers_print_in_decimal() {
        assert_eq!(&run(|o| put_u64(o, 0))[..], b"0");
        assert_eq!(&run(|o| put_u64(o, u64::MAX))[..], b"18446744073709551615");
        assert_eq!(&run(|o| put_i64(o, i64::MIN))[..], b"-9223372036854775808");
        assert_eq!(&run(|o| number(o, 42))[..], b"42\r\n");
    }

    #[test]
    fn status_lines_are_exact() {
        assert_eq!(&run(stored)[..], b"STORED\r\n");
        assert_eq!(&run(not_stored)[..], b"NOT_STORED\r\n");
        assert_eq!(&run(exists)[..], b"EXISTS\r\n");
        assert_eq!(&run(not_found)[..], b"NOT_FOUND\r\n");
        assert_eq!(&run(deleted)[..], b"DELETED\r\n");
        assert_eq!(&run(touched)[..], b"TOUCHED\r\n");
        assert_eq!(&run(ok)[..], b"OK\r\n");
        assert_eq!(&run(error)[..], b"ERROR\r\n");
        assert_eq!(&run(end)[..], b"END\r\n");
        assert_eq!(&run(|o| version(o, "1.6.21"))[..], b"VERSION 1.6.21\r\n");
        assert_eq!(
            &run(|o| client_error(o, "x y"))[..],
            b"CLIENT_ERROR x y\r\n"
        );
        assert_eq!(
            &run(|o| server_error(o, "oops"))[..],
            b"SERVER_ERROR oops\r\n"
        );
        assert_eq!(&run(|o| stat(o, "pid", 7))[..], b"STAT pid 7\r\n");
        assert_eq!(
            &run(|o| stat_str(o, "version", "1"))[..],
            b"STAT version 1\r\n"
        );
    }

    #[test]
    fn value_line_without_cas() {
        let out = run(|o| value(o, b"key", 0, b"", None));
        assert_eq!(&out[..], b"VALUE key 0 0\r\n\r\n");
    }

    #[test]
    fn meta_lines_are_exact() {
        let out = run(|o| {
            meta_value(o, 2);
            meta_ttl(o, None);
            meta_key(o, b"foo", false);
            meta_key(o, b"\x00\x01", true);
            crlf(o);
            meta_code(o, MetaCode::En);
            crlf(o);
        });
        assert_eq!(&out[..], b"VA 2 t-1 kfoo kAAE= b\r\nEN\r\n");
    }
}
