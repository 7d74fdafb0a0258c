//! The values store operations take and return.

use crate::protocol::StoreMode;

/// Store construction parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Memory limit in bytes (this shard's share of `-m`).
    pub mem_limit: usize,
    /// Unix time at which `now` was 0 (for absolute exptimes).
    pub epoch: i64,
    /// Largest item (`-I`, [`item_size`](crate::protocol::item_size)):
    /// `append`/`prepend` past it are refused (`NOT_STORED`).
    pub item_size_max: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            mem_limit: 64 << 20,
            epoch: 0,
            item_size_max: 1 << 20,
        }
    }
}

/// A read-only view of a stored item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value (data block).
    pub value: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// CAS unique.
    pub cas: u64,
    /// Seconds until expiry; `None` if it never expires.
    pub ttl: Option<u64>,
    /// Whether the item had been fetched before this access.
    pub fetched: bool,
    /// Seconds since the last access before this one.
    pub idle: u64,
    /// Marked stale by `md I` (or stored stale by `ms I`).
    pub stale: bool,
    /// A recache token had already been handed out (meta `Z`).
    pub token_sent: bool,
}

/// A stored item's answer to a text `get`: `VALUE <key> <flags> <bytes>\r\n
/// <data>\r\n`, kept with the item (see
/// [`encode::value_block`](crate::protocol::encode::value_block)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueBlock<'a> {
    /// The whole block, shared with the store.
    pub bytes: &'a bytes::Bytes,
    /// Where the `VALUE` line ends, before its `\r\n` (a `gets` adds the
    /// CAS there).
    pub line_end: usize,
    /// CAS unique.
    pub cas: u64,
}

/// What a storage command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// `STORED` / `HD`.
    Stored,
    /// `NOT_STORED` / `NS`: add of a present key, replace/append of an absent one.
    NotStored,
    /// `EXISTS` / `EX`: CAS mismatch.
    Exists,
    /// `NOT_FOUND` / `NF`: CAS of an absent key.
    NotFound,
    /// The item can never fit in this shard's memory.
    NoMemory,
}

/// Result of [`Store::store`](crate::store::Store::store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreResult {
    /// What happened.
    pub outcome: StoreOutcome,
    /// CAS of the stored item (0 if nothing was stored).
    pub cas: u64,
    /// Value length of the stored item (after append/prepend).
    pub size: usize,
}

/// A storage request (text storage commands and `ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    /// Which command.
    pub mode: StoreMode,
    /// The key.
    pub key: &'a [u8],
    /// The data block.
    pub value: &'a [u8],
    /// Client flags (ignored by append/prepend).
    pub flags: u32,
    /// Client exptime (ignored by append/prepend).
    pub exptime: i64,
    /// CAS to compare: required for `Cas`; for append/prepend 0 means none.
    pub cas: u64,
    /// Explicit CAS for the new item (meta `E`).
    pub new_cas: Option<u64>,
    /// `ms I`: a CAS older than the item's still stores, marked stale.
    pub allow_stale: bool,
    /// `ms N` with append/prepend: create the item on a miss with this TTL.
    pub vivify: Option<i64>,
}

impl<'a> Update<'a> {
    /// An update with zero flags, no expiry and no CAS.
    pub fn new(mode: StoreMode, key: &'a [u8], value: &'a [u8]) -> Self {
        Update {
            mode,
            key,
            value,
            flags: 0,
            exptime: 0,
            cas: 0,
            new_cas: None,
            allow_stale: false,
            vivify: None,
        }
    }
}

/// An `incr`/`decr`/`ma` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArithOp {
    /// True to add, false to subtract.
    pub incr: bool,
    /// Amount.
    pub delta: u64,
    /// CAS to compare (meta `C`); 0 means no check.
    pub compare_cas: u64,
    /// Explicit new CAS (meta `E`).
    pub new_cas: Option<u64>,
    /// New TTL on success (meta `T`).
    pub ttl: Option<i64>,
}

impl ArithOp {
    /// `incr` by `delta`.
    pub fn incr(delta: u64) -> Self {
        ArithOp {
            incr: true,
            delta,
            compare_cas: 0,
            new_cas: None,
            ttl: None,
        }
    }

    /// `decr` by `delta`.
    pub fn decr(delta: u64) -> Self {
        ArithOp {
            incr: false,
            ..ArithOp::incr(delta)
        }
    }
}

/// Result of [`Store::arith`](crate::store::Store::arith).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    /// The new value, the item's new CAS and its TTL.
    Done {
        /// Value after the operation.
        value: u64,
        /// The item's new CAS.
        cas: u64,
        /// Seconds until expiry, `None` for never.
        ttl: Option<u64>,
    },
    /// The key is absent.
    NotFound,
    /// The compared CAS did not match.
    Exists,
    /// The value is not a decimal number.
    NonNumeric,
}
