//! One shard's items: memcached's storage semantics over a `Table`.
//!
//! # Rules
//!
//! - **Memory.** Every item costs what it really takes ([`item_cost`]: its
//!   `VALUE` block allocation, its table entry, its share of the hash
//!   index); `bytes` never exceeds the limit. To make
//!   room the store takes items from the LRU tail: expired or flushed ones
//!   are `reclaimed`, live ones are `evictions`. An item larger than the
//!   whole limit is refused (`SERVER_ERROR out of memory storing object`).
//! - **CAS.** Every store gives the item the next value of a per-shard
//!   counter (or the client's, with the meta `E` flag). Values are only ever
//!   compared per key, so shards need not share the counter.
//! - **Time.** `now` is seconds since server start, passed to each call.
//!   Expired and flushed items are removed lazily when a command finds them
//!   (`get_expired`, `get_flushed`) and by [`Store::sweep`], which a timer
//!   calls with a small budget. See [`time`] for the exact rules.
//! - **Updates.** `append`/`prepend` keep the item's flags and expiry; `add`
//!   of an existing key bumps it; a failed `set` leaves no stale value.
//!
//! ```
//! use memcached::protocol::StoreMode;
//! use memcached::store::{Store, StoreConfig, StoreOutcome, Update};
//! let mut s = Store::new(StoreConfig::default());
//! let r = s.store(&Update::new(StoreMode::Set, b"k", b"v"), 0);
//! assert_eq!(r.outcome, StoreOutcome::Stored);
//! assert_eq!(s.get(b"k", 0).unwrap().value, b"v");
//! ```

mod meta;
mod table;
pub mod time;
mod types;
mod update;

pub use meta::{MdOpts, MdOutcome, MgHit, MgOpts};
/// What an item of this key length, flags and value length costs against
/// `-m` (see the module doc): its `VALUE` block allocation, its table
/// entry and its share of the hash index.
///
/// ```
/// use memcached::store::item_cost;
/// // A one-byte item costs far more than its byte: about what memcached's
/// // smallest slab chunk (96 bytes) does.
/// assert!(item_cost(10, 0, 1) > 96);
/// ```
pub fn item_cost(key_len: usize, flags: u32, value_len: usize) -> usize {
    table::item_cost(crate::protocol::encode::value_block_len(
        key_len, flags, value_len,
    ))
}

pub use types::{Arith, ArithOp, Item, StoreConfig, StoreOutcome, StoreResult, Update, ValueBlock};

use crate::stats::{Stats, StoreSummary};
use table::{Entry, Table};

/// A shard's items (see the module doc).
#[derive(Debug)]
pub struct Store {
    table: Table,
    mem_used: usize,
    config: StoreConfig,
    next_cas: u64,
    flush: time::Flush,
    stats: Stats,
    sweep_cursor: usize,
}

impl Store {
    /// An empty store.
    pub fn new(config: StoreConfig) -> Self {
        Store {
            table: Table::new(),
            mem_used: 0,
            config,
            next_cas: 1,
            flush: time::Flush::default(),
            stats: Stats::default(),
            sweep_cursor: 0,
        }
    }

    /// This shard's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// This shard's counters, for the handler and connection loop to update.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Items stored (including expired ones not yet reclaimed).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no item is stored.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Bytes charged against the limit.
    pub fn mem_used(&self) -> usize {
        self.mem_used
    }

    /// The configuration this store was built with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Seconds since the least recently used item was last accessed
    /// (`stats items` `age`), `None` when empty.
    pub fn oldest_age(&self, now: u32) -> Option<u64> {
        let e = self.table.get(self.table.tail()?)?;
        Some((i64::from(now) - e.time).max(0) as u64)
    }

    /// What `stats items` and `stats slabs` report about this store.
    pub fn summary(&self, now: u32) -> StoreSummary {
        StoreSummary {
            items: self.len() as u64,
            oldest_age: self.oldest_age(now),
            mem_used: self.mem_used as u64,
            stats: self.stats.clone(),
        }
    }

    /// Converts a client exptime into a deadline at `now`.
    pub fn deadline(&self, exptime: i64, now: u32) -> i64 {
        time::deadline(exptime, now, self.config.epoch)
    }

    fn take_cas(&mut self, explicit: Option<u64>) -> u64 {
        if let Some(cas) = explicit {
            return cas;
        }
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        cas
    }

    fn is_dead(&self, e: &Entry, now: u32) -> (bool, bool) {
        let expired = time::is_expired(e.deadline, now);
        let flushed = !expired && self.flush.is_flushed(e.time, e.cas, now);
        (expired, flushed)
    }

    /// Finds a live item, reclaiming it lazily if it expired or was flushed.
    fn lookup(&mut self, key: &[u8], now: u32) -> Option<u32> {
        let i = self.table.find(key)?;
        let (expired, flushed) = self.is_dead(self.table.get(i)?, now);
        if expired || flushed {
            self.unlink(i);
            if expired {
                self.stats.get_expired += 1;
            } else {
                self.stats.get_flushed += 1;
            }
            return None;
        }
        Some(i)
    }

    fn view(&self, i: u32, now: u32) -> Option<Item<'_>> {
        let e = self.table.get(i)?;
        Some(Item {
            key: e.key(),
            value: e.value(),
            flags: e.flags,
            cas: e.cas,
            ttl: time::remaining(e.deadline, now),
            fetched: e.fetched,
            idle: (i64::from(now) - e.time).max(0) as u64,
            stale: e.stale,
            token_sent: e.token_sent,
        })
    }

    /// Marks an access: LRU bump, fetched bit, access time.
    fn touch_entry(&mut self, i: u32, now: u32) {
        self.table.bump(i);
        if let Some(e) = self.table.get_mut(i) {
            e.fetched = true;
            e.time = i64::from(now);
        }
    }

    fn unlink(&mut self, i: u32) -> Option<Entry> {
        let e = self.table.remove(i)?;
        self.mem_used -= e.size();
        self.stats.bytes = self.mem_used as u64;
        self.stats.curr_items = self.table.len() as u64;
        Some(e)
    }

    /// Frees memory from the LRU tail until `need` more bytes fit.
    fn make_room(&mut self, need: usize, now: u32) {
        while self.mem_used + need > self.config.mem_limit {
            let Some(tail) = self.table.tail() else {
                return;
            };
            let Some(e) = self.unlink(tail) else {
                return;
            };
            let (expired, flushed) = self.is_dead(&e, now);
            if expired || flushed {
                self.stats.reclaimed += 1;
                if !e.fetched {
                    self.stats.expired_unfetched += 1;
                }
            } else {
                self.stats.evictions += 1;
                if !e.fetched {
                    self.stats.evicted_unfetched += 1;
                }
            }
        }
    }

    /// Links `entry`, replacing `old`; NoMemory if it can never fit.
    fn put(&mut self, old: Option<u32>, entry: Entry, now: u32) -> StoreResult {
        let size = entry.size();
        if size > self.config.mem_limit {
            self.stats.store_no_memory += 1;
            return StoreResult {
                outcome: StoreOutcome::NoMemory,
                cas: 0,
                size: 0,
            };
        }
        if let Some(old) = old {
            self.unlink(old);
        }
        self.make_room(size, now);
        let (cas, len) = (entry.cas, entry.value().len());
        self.table.insert(entry);
        self.mem_used += size;
        self.stats.bytes = self.mem_used as u64;
        self.stats.curr_items = self.table.len() as u64;
        self.stats.total_items += 1;
        StoreResult {
            outcome: StoreOutcome::Stored,
            cas,
            size: len,
        }
    }

    /// Removes `key` if present (live or not); used after failed sets.
    pub fn remove_key(&mut self, key: &[u8], _now: u32) {
        if let Some(i) = self.table.find(key) {
            self.unlink(i);
        }
    }

    /// Fetches a live item, bumping it in the LRU and marking it fetched.
    pub fn get(&mut self, key: &[u8], now: u32) -> Option<Item<'_>> {
        let i = self.lookup(key, now)?;
        self.touch_entry(i, now);
        self.view(i, now)
    }

    /// Fetches a live item without bumping it.
    pub fn peek(&mut self, key: &[u8], now: u32) -> Option<Item<'_>> {
        let i = self.lookup(key, now)?;
        self.view(i, now)
    }

    /// Fetches a live item as its text `get` answer ([`ValueBlock`]) and
    /// bumps it: what `get`/`gets` send, without building an [`Item`].
    pub fn get_block(&mut self, key: &[u8], now: u32) -> Option<ValueBlock<'_>> {
        let i = self.lookup(key, now)?;
        self.touch_entry(i, now);
        self.table.get(i).map(Entry::block)
    }

    /// Sets a live item's expiry (`touch`, `gat`) and bumps it.
    pub fn touch(&mut self, key: &[u8], exptime: i64, now: u32) -> Option<Item<'_>> {
        let i = self.touch_index(key, exptime, now)?;
        self.view(i, now)
    }

    /// As [`touch`](Self::touch), answering like [`get_block`](Self::get_block)
    /// (`gat`/`gats`).
    pub fn touch_block(&mut self, key: &[u8], exptime: i64, now: u32) -> Option<ValueBlock<'_>> {
        let i = self.touch_index(key, exptime, now)?;
        self.table.get(i).map(Entry::block)
    }

    fn touch_index(&mut self, key: &[u8], exptime: i64, now: u32) -> Option<u32> {
        let i = self.lookup(key, now)?;
        let deadline = self.deadline(exptime, now);
        if let Some(e) = self.table.get_mut(i) {
            e.deadline = deadline;
        }
        self.touch_entry(i, now);
        Some(i)
    }

    /// Deletes a live item; false if absent.
    pub fn delete(&mut self, key: &[u8], now: u32) -> bool {
        match self.lookup(key, now) {
            Some(i) => self.unlink(i).is_some(),
            None => false,
        }
    }

    /// `flush_all [delay]`: invalidates items stored before the flush time.
    pub fn flush_all(&mut self, delay: i64, now: u32) {
        self.flush
            .schedule(delay, now, self.config.epoch, self.next_cas);
    }

    /// Examines up to `budget` slots, resuming where the last call stopped,
    /// and reclaims expired or flushed items; returns how many it removed.
    pub fn sweep(&mut self, now: u32, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget.min(self.table.capacity()) {
            if self.sweep_cursor >= self.table.capacity() {
                self.sweep_cursor = 0;
            }
            let i = self.sweep_cursor as u32;
            self.sweep_cursor += 1;
            let Some(e) = self.table.get(i) else {
                continue;
            };
            let (expired, flushed) = self.is_dead(e, now);
            if expired || flushed {
                if let Some(e) = self.unlink(i) {
                    self.stats.reclaimed += 1;
                    if !e.fetched {
                        self.stats.expired_unfetched += 1;
                    }
                    removed += 1;
                }
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests;
