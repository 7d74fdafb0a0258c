//! Parsed requests: borrowed views into the read buffer.
//!
//! Nothing here owns bytes. A [`Request`] borrows its keys, data block and
//! meta flags from the buffer handed to [`parse`](super::parse), so parsing
//! allocates nothing and the connection loop decides when (and whether) to
//! copy: a request executed on the shard that read it is never copied.

use super::base64;

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// The storage commands of the text protocol, and the meta set modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `set` / `ms ... MS`: store unconditionally.
    Set,
    /// `add` / `ms ... ME`: store only if the key is absent.
    Add,
    /// `replace` / `ms ... MR`: store only if the key is present.
    Replace,
    /// `append` / `ms ... MA`: add data after the existing value.
    Append,
    /// `prepend` / `ms ... MP`: add data before the existing value.
    Prepend,
    /// `cas` / `ms ... C<token>`: store only if the CAS unique still matches.
    Cas,
}

/// The keys of a `get`-family command, split lazily on spaces.
///
/// ```
/// use memcached::protocol::Keys;
/// let keys = Keys::new(b"a  bb c");
/// assert_eq!(keys.iter().collect::<Vec<_>>(), [&b"a"[..], b"bb", b"c"]);
/// ```
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    raw: &'a [u8],
    /// `raw` is known to be one key (no spaces).
    one: bool,
}

/// The raw key list (how it was split is no part of the value).
impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("raw", &self.raw).finish()
    }
}

/// Equal when the raw key lists are.
impl PartialEq for Keys<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Keys<'_> {}

impl<'a> Keys<'a> {
    /// Wraps the space-separated key list of a command line.
    pub fn new(raw: &'a [u8]) -> Self {
        Keys { raw, one: false }
    }

    /// A list of the one key `key`, which the caller checked is not empty
    /// and has no space.
    ///
    /// ```
    /// use memcached::protocol::Keys;
    /// assert_eq!(Keys::one(b"k").single(), Some(&b"k"[..]));
    /// assert_eq!(Keys::new(b"k").single(), None);
    /// assert_eq!(Keys::one(b"k"), Keys::new(b"k"));
    /// ```
    pub fn one(key: &'a [u8]) -> Self {
        debug_assert!(!key.is_empty() && !key.contains(&b' '));
        Keys {
            raw: key,
            one: true,
        }
    }

    /// The key of a list made by [`one`](Self::one), so that the caller
    /// need not split it; `None` for other lists, even of one key.
    pub fn single(&self) -> Option<&'a [u8]> {
        self.one.then_some(self.raw)
    }

    /// Iterates the keys in request order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.raw.split(|&b| b == b' ').filter(|k| !k.is_empty())
    }

    /// The raw key list as sent.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

/// A request of the text or meta protocol.
///
/// `exptime` values are the client's, unconverted: 0 never expires, up to
/// 30 days is relative, larger is an absolute Unix time, negative means
/// already expired. The store converts them (see `store::time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`/`gets`/`bget <key>*`; `cas` is true for `gets`.
    Get {
        /// Keys in request order.
        keys: Keys<'a>,
        /// Include the CAS unique in `VALUE` lines.
        cas: bool,
    },
    /// `gat`/`gats <exptime> <key>*`: get and touch.
    Gat {
        /// New expiration time for every hit.
        exptime: i64,
        /// Keys in request order (may be empty: memcached then answers `END`).
        keys: Keys<'a>,
        /// Include the CAS unique in `VALUE` lines.
        cas: bool,
    },
    /// `set`/`add`/`replace`/`append`/`prepend`/`cas` with its data block.
    Store {
        /// Which storage command.
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// Opaque client flags.
        flags: u32,
        /// Expiration time as sent.
        exptime: i64,
        /// The data block, without its trailing `\r\n`.
        data: &'a [u8],
        /// CAS unique to compare (`cas` only, else 0).
        cas_unique: u64,
        /// Suppress every reply.
        noreply: bool,
    },
    /// A storage command whose item exceeds the item size limit. The reply
    /// is `SERVER_ERROR object too large for cache`; the connection must
    /// then discard `swallow` more bytes (the data block and its `\r\n`),
    /// which may not have arrived yet.
    TooLarge {
        /// The key (still valid; memcached unlinks it when `unlink`).
        key: &'a [u8],
        /// Bytes of data to discard after the command line.
        swallow: usize,
        /// Whether the old item under `key` is removed (memcached does so for
        /// `set` and `ms` so that a failed update leaves no stale value).
        unlink: bool,
        /// Suppress the error reply (text `noreply`; never for `ms`).
        noreply: bool,
        /// The key is base64 (`ms ... b`); decode it before unlinking.
        base64: bool,
    },
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Suppress the reply.
        noreply: bool,
    },
    /// `incr`/`decr <key> <delta> [noreply]`.
    Arith {
        /// True for `incr`, false for `decr`.
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// Unsigned 64-bit delta.
        delta: u64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// New expiration time.
        exptime: i64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        /// Seconds (or absolute time) until the flush takes effect; <= 0 is now.
        delay: i64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `verbosity <level> [noreply]` (accepted, replies `OK`).
    Verbosity {
        /// Suppress the reply.
        noreply: bool,
    },
    /// `stats [args]`; `args` is the rest of the line, trimmed.
    Stats {
        /// The sub-command and its arguments (empty for general stats).
        args: &'a [u8],
    },
    /// `quit`: close the connection without a reply.
    Quit,
    /// `shutdown`: refused as by a memcached started without `-A`.
    Shutdown,
    /// `mg <key> <flags>*`.
    MetaGet(Meta<'a>),
    /// `ms <key> <datalen> <flags>*` with its data block.
    MetaSet {
        /// Key and flags.
        meta: Meta<'a>,
        /// The data block, without its trailing `\r\n`.
        data: &'a [u8],
    },
    /// `md <key> <flags>*`.
    MetaDelete(Meta<'a>),
    /// `ma <key> <flags>*`.
    MetaArith(Meta<'a>),
    /// `mn`: replies `MN`.
    MetaNoop,
}

impl<'a> Request<'a> {
    /// The single key this request addresses, if it has exactly one (the
    /// connection loop routes on it; `get` and `gat` carry [`Keys`]).
    ///
    /// For meta commands with the `b` flag this is the base64 form as sent.
    pub fn key(&self) -> Option<&'a [u8]> {
        match self {
            Request::Store { key, .. }
            | Request::TooLarge { key, .. }
            | Request::Delete { key, .. }
            | Request::Arith { key, .. }
            | Request::Touch { key, .. } => Some(key),
            Request::MetaGet(m)
            | Request::MetaSet { meta: m, .. }
            | Request::MetaDelete(m)
            | Request::MetaArith(m) => Some(m.key),
            _ => None,
        }
    }

    /// Bytes the connection must discard after this request's `consumed`
    /// bytes (non-zero only for [`Request::TooLarge`]).
    pub fn swallow(&self) -> usize {
        match self {
            Request::TooLarge { swallow, .. } => *swallow,
            _ => 0,
        }
    }
}

/// Numeric and boolean flags of a meta command, parsed once; `raw` keeps the
/// flag tokens so replies can echo them in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta<'a> {
    /// The key as sent (base64 when `base64` is set).
    pub key: &'a [u8],
    /// The flag tokens, space separated, in request order.
    pub raw: &'a [u8],
    /// `b`: the key is base64; already checked to decode.
    pub base64: bool,
    /// `q`: quiet mode (suppress the nominal reply).
    pub quiet: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `u`: do not bump the item in the LRU.
    pub no_update: bool,
    /// `I`: invalidate (ms: allow stale CAS; md: mark stale).
    pub invalidate: bool,
    /// `x`: md removes the value but keeps the item.
    pub remove_value: bool,
    /// `T<n>`: new TTL.
    pub ttl: Option<i64>,
    /// `N<n>`: vivify on miss with this TTL.
    pub vivify: Option<i64>,
    /// `R<n>`: win the recache token if the remaining TTL is below this.
    pub recache: Option<i64>,
    /// `F<n>`: client flags for ms.
    pub client_flags: u32,
    /// `C<n>`: compare CAS.
    pub compare_cas: Option<u64>,
    /// `E<n>`: explicit new CAS value.
    pub new_cas: Option<u64>,
    /// `M<c>`: mode switch character.
    pub mode: Option<u8>,
    /// `D<n>`: ma delta (default 1).
    pub delta: u64,
    /// `J<n>`: ma initial value on vivify (default 0).
    pub initial: u64,
    /// `O<token>`: opaque echoed back (at most 32 bytes).
    pub opaque: Option<&'a [u8]>,
}

impl<'a> Meta<'a> {
    /// A meta request for `key` with no flags.
    pub fn new(key: &'a [u8]) -> Self {
        Meta {
            key,
            raw: b"",
            base64: false,
            quiet: false,
            value: false,
            no_update: false,
            invalidate: false,
            remove_value: false,
            ttl: None,
            vivify: None,
            recache: None,
            client_flags: 0,
            compare_cas: None,
            new_cas: None,
            mode: None,
            delta: 1,
            initial: 0,
            opaque: None,
        }
    }

    /// The flag tokens in request order (each starts with its flag letter).
    pub fn flags(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.raw.split(|&b| b == b' ').filter(|t| !t.is_empty())
    }

    /// The key to look up: decoded into `buf` when the `b` flag is set.
    ///
    /// ```
    /// use memcached::protocol::Meta;
    /// let mut m = Meta::new(b"Zm9v");
    /// m.base64 = true;
    /// let mut buf = [0u8; 256];
    /// assert_eq!(m.lookup_key(&mut buf), b"foo");
    /// ```
    pub fn lookup_key<'b>(&'b self, buf: &'b mut [u8; 256]) -> &'b [u8] {
        if !self.base64 {
            return self.key;
        }
        // The parser only builds `base64` requests whose key decodes.
        let n = base64::decode(self.key, buf).unwrap_or(0);
        &buf[..n]
    }
}
