//! Executes parsed requests against a shard's [`Store`] and encodes replies.
//!
//! [`Handler::execute`] is the whole contract: given a [`Request`] and the
//! current time it mutates the store, counts the command in the shard's
//! [`Stats`](crate::stats::Stats) and appends the exact reply bytes to
//! `out`, or nothing when the request said `noreply` (text) or `q` (meta,
//! for the nominal reply only). It returns [`Action::Close`] for `quit`.
//! Malformed requests come back from the parser as a
//! [`Rejection`]; [`Handler::reject`] writes their error line.
//!
//! Keys of one request must belong to this shard; a multi-shard connection
//! loop splits `get` keys by [`shard_of`](crate::shard_of), runs them on
//! their shards (the per-key [`Handler::get_one`]) and writes `END` itself.
//! [`Connection`] is the single-shard loop without its I/O.

mod conn;
mod meta;
mod stats_cmd;

pub use conn::{Connection, Feed};

use crate::protocol::{Keys, Meta, Out, Rejection, Request, StoreMode, encode};
use crate::stats::ServerInfo;
use crate::store::{Arith, ArithOp, Store, StoreConfig, StoreOutcome, Update};

/// The version we announce: the memcached release whose protocol we follow.
pub const DEFAULT_VERSION: &str = "1.6.21";

/// What the connection does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep reading.
    Continue,
    /// Flush the replies written so far, then close (`quit`).
    Close,
}

/// Handler construction parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerConfig {
    /// The shard's store.
    pub store: StoreConfig,
    /// Process facts for `stats` (the loop keeps uptime and time current
    /// through [`Handler::server_info_mut`]).
    pub info: ServerInfo,
}

/// One shard's command executor (see the module doc).
#[derive(Debug)]
pub struct Handler {
    store: Store,
    info: ServerInfo,
}

impl Handler {
    /// A handler over an empty store.
    pub fn new(config: HandlerConfig) -> Self {
        Handler {
            store: Store::new(config.store),
            info: config.info,
        }
    }

    /// The shard's store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The shard's store, for the sweeper and stats aggregation.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Process facts rendered by `stats`.
    pub fn server_info(&self) -> &ServerInfo {
        &self.info
    }

    /// Process facts rendered by `stats`, for the loop to keep current.
    pub fn server_info_mut(&mut self) -> &mut ServerInfo {
        &mut self.info
    }

    /// Writes the error line of a rejected request (unless `noreply`).
    ///
    /// ```
    /// use memcached::handler::{Handler, HandlerConfig};
    /// use memcached::protocol::{parse, Limits, ProtocolError};
    /// let mut h = Handler::new(HandlerConfig::default());
    /// let mut out = memcached::protocol::Out::new();
    /// let Err(ProtocolError::Rejected(r)) = parse(b"bogus\r\n", &Limits::default()) else {
    ///     panic!()
    /// };
    /// h.reject(&r, &mut out);
    /// assert_eq!(out.to_vec(), b"ERROR\r\n");
    /// ```
    pub fn reject(&mut self, r: &Rejection, out: &mut Out) {
        if !r.noreply {
            encode::reject(out, r.reply);
        }
    }

    /// Executes one request and appends its reply (see the module doc).
    pub fn execute(&mut self, req: &Request<'_>, now: u32, out: &mut Out) -> Action {
        match *req {
            Request::Get { keys, cas } => self.get(keys, cas, now, out),
            Request::Gat { exptime, keys, cas } => self.gat(exptime, keys, cas, now, out),
            Request::Store {
                mode,
                key,
                flags,
                exptime,
                data,
                cas_unique,
                noreply,
            } => {
                self.store.stats_mut().cmd_set += 1;
                let mut u = Update::new(mode, key, data);
                u.flags = flags;
                u.exptime = exptime;
                u.cas = cas_unique;
                let r = self.store.store(&u, now);
                if !noreply {
                    match r.outcome {
                        StoreOutcome::Stored => encode::stored(out),
                        StoreOutcome::NotStored => encode::not_stored(out),
                        StoreOutcome::Exists => encode::exists(out),
                        StoreOutcome::NotFound => encode::not_found(out),
                        StoreOutcome::NoMemory => {
                            encode::server_error(out, "out of memory storing object")
                        }
                    }
                }
            }
            Request::TooLarge {
                key,
                unlink,
                noreply,
                base64,
                ..
            } => {
                self.store.stats_mut().store_too_large += 1;
                if unlink {
                    let mut m = Meta::new(key);
                    m.base64 = base64;
                    let mut buf = [0u8; 256];
                    self.store.remove_key(m.lookup_key(&mut buf), now);
                }
                if !noreply {
                    encode::server_error(out, "object too large for cache");
                }
            }
            Request::Delete { key, noreply } => {
                let hit = self.store.delete(key, now);
                let stats = self.store.stats_mut();
                if hit {
                    stats.delete_hits += 1;
                } else {
                    stats.delete_misses += 1;
                }
                if !noreply {
                    if hit {
                        encode::deleted(out);
                    } else {
                        encode::not_found(out);
                    }
                }
            }
            Request::Arith {
                incr,
                key,
                delta,
                noreply,
            } => self.arith(incr, key, delta, noreply, now, out),
            Request::Touch {
                key,
                exptime,
                noreply,
            } => {
                let hit = self.store.touch(key, exptime, now).is_some();
                let stats = self.store.stats_mut();
                stats.cmd_touch += 1;
                if hit {
                    stats.touch_hits += 1;
                } else {
                    stats.touch_misses += 1;
                }
                if !noreply {
                    if hit {
                        encode::touched(out);
                    } else {
                        encode::not_found(out);
                    }
                }
            }
            Request::FlushAll { delay, noreply } => {
                self.store.stats_mut().cmd_flush += 1;
                self.store.flush_all(delay, now);
                if !noreply {
                    encode::ok(out);
                }
            }
            Request::Version => encode::version(out, &self.info.version),
            Request::Verbosity { noreply } => {
                if !noreply {
                    encode::ok(out);
                }
            }
            Request::Stats { args } => self.stats(args, now, out),
            Request::Quit => return Action::Close,
            Request::Shutdown => encode::line(out, b"ERROR: shutdown not enabled"),
            Request::MetaGet(ref m) => self.meta_get(m, now, out),
            Request::MetaSet { ref meta, data } => self.meta_set(meta, data, now, out),
            Request::MetaDelete(ref m) => self.meta_delete(m, now, out),
            Request::MetaArith(ref m) => self.meta_arith(m, now, out),
            Request::MetaNoop => {
                encode::meta_code(out, encode::MetaCode::Mn);
                encode::crlf(out);
            }
        }
        Action::Continue
    }

    /// One key of a `get`/`gets`: appends its `VALUE` block on a hit and
    /// counts the hit or miss. The caller writes the final `END`.
    pub fn get_one(&mut self, key: &[u8], cas: bool, now: u32, out: &mut Out) -> bool {
        let hit = match self.store.get_block(key, now) {
            Some(b) => {
                out.put_block(&b, cas.then_some(b.cas));
                true
            }
            None => false,
        };
        let stats = self.store.stats_mut();
        stats.cmd_get += 1;
        if hit {
            stats.get_hits += 1;
        } else {
            stats.get_misses += 1;
        }
        hit
    }

    fn get(&mut self, keys: Keys<'_>, cas: bool, now: u32, out: &mut Out) {
        if let Some(key) = keys.single() {
            self.get_one(key, cas, now, out);
        } else {
            for key in keys.iter() {
                self.get_one(key, cas, now, out);
            }
        }
        encode::end(out);
    }

    /// One key of a `gat`/`gats`: sets the expiry of a hit, appends its
    /// `VALUE` block and counts the touch. The caller writes the final `END`.
    pub fn gat_one(
        &mut self,
        key: &[u8],
        exptime: i64,
        cas: bool,
        now: u32,
        out: &mut Out,
    ) -> bool {
        let hit = match self.store.touch_block(key, exptime, now) {
            Some(b) => {
                out.put_block(&b, cas.then_some(b.cas));
                true
            }
            None => false,
        };
        let stats = self.store.stats_mut();
        stats.cmd_touch += 1;
        if hit {
            stats.touch_hits += 1;
        } else {
            stats.touch_misses += 1;
        }
        hit
    }

    fn gat(&mut self, exptime: i64, keys: Keys<'_>, cas: bool, now: u32, out: &mut Out) {
        for key in keys.iter() {
            self.gat_one(key, exptime, cas, now, out);
        }
        encode::end(out);
    }

    fn arith(
        &mut self,
        incr: bool,
        key: &[u8],
        delta: u64,
        noreply: bool,
        now: u32,
        out: &mut Out,
    ) {
        let op = if incr {
            ArithOp::incr(delta)
        } else {
            ArithOp::decr(delta)
        };
        let r = self.store.arith(key, &op, now);
        if matches!(r, Arith::NotFound | Arith::Exists) {
            let stats = self.store.stats_mut();
            if incr {
                stats.incr_misses += 1;
            } else {
                stats.decr_misses += 1;
            }
        }
        if noreply {
            return;
        }
        match r {
            Arith::Done { value, .. } => encode::number(out, value),
            Arith::NotFound | Arith::Exists => encode::not_found(out),
            Arith::NonNumeric => {
                encode::client_error(out, "cannot increment or decrement non-numeric value")
            }
        }
    }
}

/// Maps a meta `M` token to a store mode (`S` and none mean set).
pub(crate) fn ms_mode(mode: Option<u8>) -> StoreMode {
    match mode {
        Some(b'E') => StoreMode::Add,
        Some(b'A') => StoreMode::Append,
        Some(b'P') => StoreMode::Prepend,
        Some(b'R') => StoreMode::Replace,
        _ => StoreMode::Set,
    }
}
