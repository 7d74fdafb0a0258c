//! Storage commands and arithmetic (memcached's `do_store_item` and
//! `do_add_delta`).

use super::table::Entry;
use super::{Arith, ArithOp, Store, StoreOutcome, StoreResult, Update, time};
use crate::protocol::number::parse_u64;
use crate::protocol::{KEY_MAX_LENGTH, StoreMode, item_size};

impl Store {
    fn refused(outcome: StoreOutcome) -> StoreResult {
        StoreResult {
            outcome,
            cas: 0,
            size: 0,
        }
    }

    /// Executes a storage command (memcached's `do_store_item`).
    ///
    /// Keys longer than [`KEY_MAX_LENGTH`] are refused with `NotStored`
    /// (the parser never produces them).
    pub fn store(&mut self, u: &Update<'_>, now: u32) -> StoreResult {
        if u.key.len() > KEY_MAX_LENGTH {
            return Self::refused(StoreOutcome::NotStored);
        }
        let old = self.lookup(u.key, now);
        let old_entry = old.and_then(|i| self.table.get(i));
        let old_cas = old_entry.map_or(0, |e| e.cas);
        let mut stale = false;
        match (u.mode, old) {
            (StoreMode::Add, Some(i)) => {
                // add of a present key only promotes it.
                self.touch_entry(i, now);
                return Self::refused(StoreOutcome::NotStored);
            }
            (StoreMode::Replace, None) => return Self::refused(StoreOutcome::NotStored),
            (StoreMode::Append | StoreMode::Prepend, None) => {
                let Some(ttl) = u.vivify else {
                    return Self::refused(StoreOutcome::NotStored);
                };
                let deadline = self.deadline(ttl, now);
                let cas = self.take_cas(u.new_cas);
                let e = Entry::new(u.key, u.value, u.flags, deadline, cas, i64::from(now));
                return self.put(None, e, now);
            }
            (StoreMode::Cas, None) => {
                self.stats.cas_misses += 1;
                return Self::refused(StoreOutcome::NotFound);
            }
            (StoreMode::Cas, Some(_)) => {
                if u.cas == old_cas {
                    self.stats.cas_hits += 1;
                } else if u.allow_stale && u.cas < old_cas {
                    stale = true;
                } else {
                    self.stats.cas_badval += 1;
                    return Self::refused(StoreOutcome::Exists);
                }
            }
            (StoreMode::Append | StoreMode::Prepend, Some(i)) => {
                if u.cas != 0 && u.cas != old_cas {
                    return Self::refused(StoreOutcome::Exists);
                }
                let Some(e) = self.table.get(i) else {
                    return Self::refused(StoreOutcome::NotStored);
                };
                // memcached (`do_store_item`): an append that would make
                // the item larger than `-I` is not stored.
                let grown = e.value().len().saturating_add(u.value.len());
                if item_size(u.key.len(), grown) > self.config.item_size_max {
                    return Self::refused(StoreOutcome::NotStored);
                }
                let mut value = Vec::with_capacity(e.value().len() + u.value.len());
                if u.mode == StoreMode::Append {
                    value.extend_from_slice(e.value());
                    value.extend_from_slice(u.value);
                } else {
                    value.extend_from_slice(u.value);
                    value.extend_from_slice(e.value());
                }
                let (flags, deadline) = (e.flags, e.deadline);
                let cas = self.take_cas(u.new_cas);
                let e = Entry::new(u.key, &value, flags, deadline, cas, i64::from(now));
                return self.put(old, e, now);
            }
            _ => {}
        }
        let deadline = self.deadline(u.exptime, now);
        let cas = self.take_cas(u.new_cas);
        let mut e = Entry::new(u.key, u.value, u.flags, deadline, cas, i64::from(now));
        e.stale = stale;
        let r = self.put(old, e, now);
        if r.outcome == StoreOutcome::NoMemory && u.mode == StoreMode::Set {
            // memcached: a failed set must not leave the old value behind.
            self.remove_key(u.key, now);
        }
        r
    }

    /// `incr`/`decr` (memcached's `do_add_delta`): 64-bit wrap on incr,
    /// floor at 0 on decr.
    pub fn arith(&mut self, key: &[u8], op: &ArithOp, now: u32) -> Arith {
        let ArithOp {
            incr,
            delta,
            compare_cas,
            new_cas,
            ttl,
        } = *op;
        let Some(i) = self.lookup(key, now) else {
            return Arith::NotFound;
        };
        let Some(e) = self.table.get(i) else {
            return Arith::NotFound;
        };
        if e.value().is_empty() {
            return Arith::NonNumeric;
        }
        if compare_cas != 0 && e.cas != compare_cas {
            return Arith::Exists;
        }
        let Some(current) = parse_u64(e.value()) else {
            return Arith::NonNumeric;
        };
        let value = if incr {
            self.stats.incr_hits += 1;
            current.wrapping_add(delta)
        } else {
            self.stats.decr_hits += 1;
            current.saturating_sub(delta)
        };
        let (flags, fetched) = (e.flags, e.fetched);
        let deadline = match ttl {
            Some(t) => self.deadline(t, now),
            None => e.deadline,
        };
        let cas = self.take_cas(new_cas);
        let mut entry = Entry::new(
            key,
            value.to_string().as_bytes(),
            flags,
            deadline,
            cas,
            i64::from(now),
        );
        entry.fetched = fetched;
        self.put(Some(i), entry, now);
        Arith::Done {
            value,
            cas,
            ttl: time::remaining(deadline, now),
        }
    }
}
