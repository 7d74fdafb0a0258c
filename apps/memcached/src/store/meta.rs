//! Store operations that only the meta protocol needs: `mg` with its
//! vivify/recache tokens and `md` with invalidation.
//!
//! The recache protocol (memcached's `ITEM_TOKEN_SENT`/`ITEM_STALE`): the
//! first client to miss with `N`, to find the TTL below its `R`, or to find
//! a stale item "wins" (`W`) and is expected to recache; later clients see
//! `Z` (a token was already sent) and, for stale items, `X`.

use super::table::Entry;
use super::{Item, Store, time};
use crate::protocol::KEY_MAX_LENGTH;

/// Options of an `mg` lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MgOpts {
    /// `T`: new TTL on hit.
    pub ttl: Option<i64>,
    /// `N`: create an empty item on a miss with this TTL.
    pub vivify: Option<i64>,
    /// `R`: win if the remaining TTL is below this.
    pub recache: Option<i64>,
    /// `u`: no LRU bump, no access-time or fetched update.
    pub no_update: bool,
    /// `E`: CAS for a vivified item.
    pub new_cas: Option<u64>,
}

/// A successful `mg` (a hit, or a miss turned into an item by `N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MgHit<'a> {
    /// The item; `fetched`, `idle` and `token_sent` are as before this
    /// request, `ttl` after `T` applied.
    pub item: Item<'a>,
    /// This client won the recache token (`W`).
    pub won: bool,
    /// The item was created by `N`.
    pub created: bool,
}

/// Options of an `md`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MdOpts {
    /// `C`: only act if the CAS matches.
    pub compare_cas: Option<u64>,
    /// `E`: CAS to give the item when it is kept.
    pub new_cas: Option<u64>,
    /// `I`: mark stale instead of deleting.
    pub invalidate: bool,
    /// `T`: new TTL when invalidating (or for the `x` tombstone).
    pub ttl: Option<i64>,
    /// `x`: drop the value but keep an empty item.
    pub remove_value: bool,
    /// `F`: client flags of the `x` tombstone.
    pub client_flags: u32,
}

/// What an `md` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdOutcome {
    /// Removed (`HD`).
    Deleted,
    /// Kept but marked stale or emptied (`HD`).
    Kept,
    /// Absent (`NF`).
    NotFound,
    /// CAS mismatch (`EX`).
    Exists,
}

impl Store {
    /// `mg`: looks `key` up, applying `T`, `N`, `R` and `u`.
    pub fn meta_get(&mut self, key: &[u8], now: u32, o: &MgOpts) -> Option<MgHit<'_>> {
        let mut created = false;
        let i = match self.lookup(key, now) {
            Some(i) => i,
            None => {
                let ttl = o.vivify.filter(|_| key.len() <= KEY_MAX_LENGTH)?;
                let deadline = self.deadline(ttl, now);
                let cas = self.take_cas(o.new_cas);
                let e = Entry::new(key, b"", 0, deadline, cas, i64::from(now));
                self.put(None, e, now);
                created = true;
                self.table.find(key)?
            }
        };
        let new_deadline = o.ttl.map(|t| self.deadline(t, now));
        let recache = o.recache.map(|r| self.deadline(r, now));
        let before = self.view(i, now)?;
        let (fetched, idle, token_sent) = (before.fetched, before.idle, before.token_sent);
        let e = self.table.get_mut(i)?;
        if let Some(d) = new_deadline {
            e.deadline = d;
        }
        let mut won = created;
        if let Some(r) = recache {
            if !e.token_sent && !created && e.deadline != time::NEVER && e.deadline < r {
                won = true;
            }
        }
        if e.stale && !e.token_sent {
            won = true;
        }
        if won {
            e.token_sent = true;
        }
        if !o.no_update {
            self.touch_entry(i, now);
        }
        let mut item = self.view(i, now)?;
        item.fetched = fetched;
        item.idle = idle;
        item.token_sent = token_sent;
        Some(MgHit { item, won, created })
    }

    /// `md`: deletes, invalidates (`I`) or empties (`x`) `key`.
    pub fn meta_delete(&mut self, key: &[u8], now: u32, o: &MdOpts) -> MdOutcome {
        let Some(i) = self.lookup(key, now) else {
            return MdOutcome::NotFound;
        };
        let Some(old_cas) = self.table.get(i).map(|e| e.cas) else {
            return MdOutcome::NotFound;
        };
        if o.compare_cas.is_some_and(|c| c != old_cas) {
            return MdOutcome::Exists;
        }
        let mut i = i;
        if o.remove_value {
            // memcached stores an empty item with the request's F and T.
            let deadline = self.deadline(o.ttl.unwrap_or(0), now);
            let cas = o.new_cas.unwrap_or(old_cas);
            let e = Entry::new(key, b"", o.client_flags, deadline, cas, i64::from(now));
            self.put(Some(i), e, now);
            match self.table.find(key) {
                Some(j) => i = j,
                None => return MdOutcome::Kept,
            }
        }
        if o.invalidate {
            let deadline = o.ttl.map(|t| self.deadline(t, now));
            let cas = self.take_cas(o.new_cas);
            if let Some(e) = self.table.get_mut(i) {
                if let Some(d) = deadline {
                    e.deadline = d;
                }
                e.stale = true;
                e.token_sent = false;
                e.cas = cas;
            }
            return MdOutcome::Kept;
        }
        if o.remove_value {
            return MdOutcome::Kept;
        }
        self.unlink(i);
        MdOutcome::Deleted
    }
}
