//! The memcached wire protocol, text and meta, as pure functions over bytes.
//!
//! # Framing
//!
//! A request is a command line ended by `\n` (a `\r` before it is dropped,
//! as memcached does), followed for storage commands by a data block of the
//! announced length and a mandatory `\r\n`. [`parse`] looks at the front of
//! the read buffer and answers one of:
//!
//! - `Ok(None)`: the request is incomplete; read more and call again with the
//!   same bytes. Nothing is remembered between calls.
//! - `Ok(Some((request, consumed)))`: drop `consumed` bytes after executing
//!   the request (which borrows them). A [`Request::TooLarge`] additionally
//!   asks the connection to discard [`Request::swallow`] further bytes, which
//!   may not have arrived yet, exactly as memcached's `conn_swallow` state.
//! - `Err(ProtocolError::Rejected(r))`: reply with [`Rejection::reply`]
//!   (unless [`Rejection::noreply`]), drop `r.consumed`, then discard
//!   `r.swallow` more bytes, and carry on: the connection stays usable, as in
//!   memcached.
//! - `Err(ProtocolError::LineTooLong | ProtocolError::HttpRequest)`: close
//!   the connection without a reply (memcached's `conn_closing`).
//!
//! # Bounds
//!
//! A command line must end within [`Limits::max_line`] bytes (2048, the
//! figure memcached uses before it gives up on a line), so a client cannot
//! grow the read buffer without bound. memcached lets `get`/`gets` lines
//! grow past that (large multi-gets); we allow them up to
//! [`Limits::max_get_line`]. Data blocks are bounded by the item size limit:
//! a larger item is answered before its data is read.

pub mod base64;
pub mod encode;
mod meta;
pub mod number;
mod out;
mod request;
mod text;

pub use out::{BY_REF_MIN, Out};
pub use request::{KEY_MAX_LENGTH, Keys, Meta, Request, StoreMode};

use memchr::memchr;

/// Per-item bookkeeping counted against the item size and memory limits, in
/// addition to the key and value bytes (memcached's item header is 48-56
/// bytes; ours holds LRU links, CAS, times and the hash table slot).
pub const ITEM_OVERHEAD: usize = 64;

/// The size an item of this key and value occupies in the store.
///
/// ```
/// use memcached::protocol::{item_size, ITEM_OVERHEAD};
/// assert_eq!(item_size(3, 10), 13 + ITEM_OVERHEAD);
/// ```
pub fn item_size(key_len: usize, value_len: usize) -> usize {
    key_len
        .saturating_add(value_len)
        .saturating_add(ITEM_OVERHEAD)
}

/// Bounds the parser enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line, `\n` included (memcached: 2048).
    pub max_line: usize,
    /// Longest `get`/`gets` line (memcached lets these grow without bound).
    pub max_get_line: usize,
    /// Largest item ([`item_size`]) accepted (memcached `-I`, default 1 MiB).
    pub max_item_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 2048,
            max_get_line: 1 << 20,
            max_item_size: 1 << 20,
        }
    }
}

/// The error lines memcached sends for malformed requests, byte for byte
/// (from memcached 1.6 `proto_text.c`; the string is [`Reject::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// `ERROR`: unknown command or wrong number of tokens.
    Error,
    /// `CLIENT_ERROR bad command line format`.
    BadFormat,
    /// `CLIENT_ERROR bad data chunk`: the data block did not end in `\r\n`.
    BadDataChunk,
    /// `CLIENT_ERROR invalid exptime argument` (touch, gat, flush_all).
    InvalidExptime,
    /// `CLIENT_ERROR invalid numeric delta argument` (incr, decr).
    InvalidDelta,
    /// The `delete` usage line, with memcached's two spaces.
    DeleteUsage,
    /// `CLIENT_ERROR duplicate flag` (mg, ms).
    DuplicateFlag,
    /// `CLIENT_ERROR invalid flag` (mg, ms).
    InvalidFlag,
    /// `CLIENT_ERROR invalid or duplicate flag` (md, ma: any flag error).
    InvalidOrDuplicateFlag,
    /// `CLIENT_ERROR bad token in command line format` (bad N/T/R/C/E).
    BadToken,
    /// `CLIENT_ERROR error decoding key` (`b` flag, bad base64).
    KeyDecode,
    /// `CLIENT_ERROR options flags are too long` (mg).
    MgFlagsTooLong,
    /// `CLIENT_ERROR options flags too long` (ms, md, ma).
    FlagsTooLong,
    /// `CLIENT_ERROR opaque token too long` (O over 32 bytes).
    OpaqueTooLong,
    /// `CLIENT_ERROR incorrect length for M token`.
    ModeLength,
    /// `CLIENT_ERROR invalid mode for ms M token`.
    MsMode,
    /// `CLIENT_ERROR invalid mode for ma M token`.
    MaMode,
    /// `CLIENT_ERROR invalid numeric initial value` (J).
    InitialValue,
    /// `CLIENT_ERROR invalid numeric delta value` (D).
    DeltaValue,
}

impl Reject {
    /// The reply line without its `\r\n`.
    ///
    /// ```
    /// use memcached::protocol::Reject;
    /// assert_eq!(Reject::BadFormat.as_str(), "CLIENT_ERROR bad command line format");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Error => "ERROR",
            Reject::BadFormat => "CLIENT_ERROR bad command line format",
            Reject::BadDataChunk => "CLIENT_ERROR bad data chunk",
            Reject::InvalidExptime => "CLIENT_ERROR invalid exptime argument",
            Reject::InvalidDelta => "CLIENT_ERROR invalid numeric delta argument",
            Reject::DeleteUsage => {
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
            }
            Reject::DuplicateFlag => "CLIENT_ERROR duplicate flag",
            Reject::InvalidFlag => "CLIENT_ERROR invalid flag",
            Reject::InvalidOrDuplicateFlag => "CLIENT_ERROR invalid or duplicate flag",
            Reject::BadToken => "CLIENT_ERROR bad token in command line format",
            Reject::KeyDecode => "CLIENT_ERROR error decoding key",
            Reject::MgFlagsTooLong => "CLIENT_ERROR options flags are too long",
            Reject::FlagsTooLong => "CLIENT_ERROR options flags too long",
            Reject::OpaqueTooLong => "CLIENT_ERROR opaque token too long",
            Reject::ModeLength => "CLIENT_ERROR incorrect length for M token",
            Reject::MsMode => "CLIENT_ERROR invalid mode for ms M token",
            Reject::MaMode => "CLIENT_ERROR invalid mode for ma M token",
            Reject::InitialValue => "CLIENT_ERROR invalid numeric initial value",
            Reject::DeltaValue => "CLIENT_ERROR invalid numeric delta value",
        }
    }
}

/// A malformed request that the connection survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The error line to send.
    pub reply: Reject,
    /// Bytes of the buffer this request used (command line, and the data
    /// block when it was read).
    pub consumed: usize,
    /// Further bytes to discard (a data block announced by a rejected `ms`).
    pub swallow: usize,
    /// memcached suppresses even error lines once it has seen `noreply`.
    pub noreply: bool,
}

/// Why [`parse`] could not produce a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// No newline within the line limit: close the connection.
    #[error("command line longer than {limit} bytes")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// An HTTP request line (`... HTTP/1.1`): memcached closes silently.
    #[error("HTTP request on the memcached port")]
    HttpRequest,
    /// A malformed request: reply, skip it and continue.
    #[error("{}", .0.reply.as_str())]
    Rejected(Rejection),
}

impl ProtocolError {
    /// True when the connection must be closed (no reply is sent).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, ProtocolError::Rejected(_))
    }
}

pub(crate) fn reject(reply: Reject, consumed: usize, noreply: bool) -> ProtocolError {
    ProtocolError::Rejected(Rejection {
        reply,
        consumed,
        swallow: 0,
        noreply,
    })
}

/// Result of [`parse`]: a request and the bytes it used, or `None` for
/// "need more input".
pub type ParseResult<'a> = Result<Option<(Request<'a>, usize)>, ProtocolError>;

/// Parses one request (text or meta) from the front of `buf`.
///
/// ```
/// use memcached::protocol::{parse, Limits, Request, StoreMode};
/// let limits = Limits::default();
/// let (req, used) = parse(b"set k 5 0 2\r\nhi\r\nget k\r\n", &limits).unwrap().unwrap();
/// assert_eq!(used, 17);
/// assert!(matches!(req, Request::Store { mode: StoreMode::Set, data: b"hi", flags: 5, .. }));
/// assert_eq!(parse(b"get k", &limits), Ok(None));
/// ```
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> ParseResult<'a> {
    let Some(nl) = find_newline(buf, limits)? else {
        return Ok(None);
    };
    let consumed = nl + 1;
    let mut line = &buf[..nl];
    // memcached strips one '\r' before the '\n' (try_read_command_ascii).
    if line.len() > 1 && line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    // The most common request, a one-key `get`, without splitting the line
    // into a `Line` (24 argument slots, about 400 bytes to fill): the same
    // request the general path makes of it, at a fifth of the cost
    // (callgrind).
    if let Some(key) = line.strip_prefix(b"get ") {
        if !key.is_empty() && key.len() <= KEY_MAX_LENGTH && key.iter().all(|&b| b != b' ') {
            let keys = Keys::one(key);
            return Ok(Some((Request::Get { keys, cas: false }, consumed)));
        }
    }
    let line = Line::new(line);
    let cmd = line.cmd;
    // proto_text.c: every command has at least 2 characters.
    if cmd.len() < 2 {
        return Err(reject(Reject::Error, consumed, false));
    }
    // By reference: a `Line` is about 400 bytes (callgrind: passing it by
    // value cost a `memcpy` per request).
    if cmd.len() == 2 && cmd[0] == b'm' {
        return meta::parse(&line, buf, consumed, limits);
    }
    text::parse(&line, buf, consumed, limits)
}

/// Finds the command line's `\n`, enforcing the line limits.
fn find_newline(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ProtocolError> {
    let window = &buf[..buf.len().min(limits.max_line)];
    if let Some(i) = memchr(b'\n', window) {
        return Ok(Some(i));
    }
    if buf.len() < limits.max_line {
        return Ok(None);
    }
    // memcached only tolerates long lines for multi-gets, after skipping up
    // to 100 leading spaces; anything else is closed.
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    let rest = &buf[spaces..];
    let is_get = rest.starts_with(b"get ") || rest.starts_with(b"gets ");
    if spaces > 100 || !is_get {
        return Err(ProtocolError::LineTooLong {
            limit: limits.max_line,
        });
    }
    let window = &buf[..buf.len().min(limits.max_get_line)];
    match memchr(b'\n', window) {
        Some(i) => Ok(Some(i)),
        None if buf.len() < limits.max_get_line => Ok(None),
        None => Err(ProtocolError::LineTooLong {
            limit: limits.max_get_line,
        }),
    }
}

/// Most tokens a command looks at individually (memcached's `MAX_TOKENS`
/// is 24 including its terminal token).
pub(crate) const MAX_TOKENS: usize = 24;

/// A command line split on spaces (memcached splits on `' '` only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    /// The first token.
    pub cmd: &'a [u8],
    /// Everything after the first token, leading spaces removed.
    pub rest: &'a [u8],
    /// The tokens after `cmd`, the first `MAX_TOKENS` of them.
    pub args: [&'a [u8]; MAX_TOKENS],
    /// How many tokens follow `cmd` (may exceed `MAX_TOKENS`).
    pub nargs: usize,
}

impl<'a> Line<'a> {
    fn new(line: &'a [u8]) -> Self {
        let start = skip_spaces(line, 0);
        let end = next_space(line, start);
        let cmd = &line[start..end];
        let rest_at = skip_spaces(line, end);
        let mut args = [&b""[..]; MAX_TOKENS];
        let mut nargs = 0;
        // One pass over the arguments, byte by byte: tokens are short, so
        // this beats `split(..).filter(..)` and `memchr` (callgrind).
        let mut i = rest_at;
        while i < line.len() {
            let end = next_space(line, i);
            if let Some(slot) = args.get_mut(nargs) {
                *slot = &line[i..end];
            }
            nargs += 1;
            i = skip_spaces(line, end);
        }
        Line {
            cmd,
            rest: &line[rest_at..],
            args,
            nargs,
        }
    }

    /// The last token of the line (the command itself when there are no args).
    pub fn last(&self) -> &'a [u8] {
        match self.nargs {
            0 => self.cmd,
            n if n <= MAX_TOKENS => self.args[n - 1],
            _ => self
                .rest
                .rsplit(|&b| b == b' ')
                .find(|t| !t.is_empty())
                .unwrap_or(b""),
        }
    }

    /// memcached's `set_noreply_maybe`: the last token is `noreply`.
    pub fn noreply(&self) -> bool {
        self.nargs > 0 && self.last() == b"noreply"
    }
}

/// The first index at or after `i` that is not a space (`s.len()` if none).
#[inline]
fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i] == b' ' {
        i += 1;
    }
    i
}

/// The first index at or after `i` that is a space (`s.len()` if none).
#[inline]
fn next_space(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i] != b' ' {
        i += 1;
    }
    i
}

/// Locates a data block of `len` bytes after the command line.
///
/// Returns `Ok(None)` when more input is needed, the block and total bytes
/// used otherwise, or a `bad data chunk` rejection when the block is not
/// followed by `\r\n` (the block is consumed either way, as in memcached).
pub(crate) fn data_block(
    buf: &[u8],
    line_end: usize,
    len: usize,
    noreply: bool,
) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let Some(total) = line_end.checked_add(len).and_then(|n| n.checked_add(2)) else {
        return Ok(None);
    };
    let Some(block) = buf.get(line_end..total) else {
        return Ok(None);
    };
    if &block[len..] != b"\r\n" {
        return Err(reject(Reject::BadDataChunk, total, noreply));
    }
    Ok(Some((&block[..len], total)))
}

#[cfg(test)]
mod tests;
