//! Meta command execution (memcached 1.6 `process_m*_command`).
//!
//! Reply shape: a two-letter code (or `VA <len>`), then return flags in the
//! order the client sent its flags, then `\r\n` (and the value for `VA`).
//! Quiet mode (`q`) drops the nominal reply only: `EN` for `mg`, `HD` for
//! `ms` and `md`, the success reply for `ma`. Errors are always sent.

use super::{Handler, ms_mode};
use crate::protocol::encode::{self, MetaCode};
use crate::protocol::{Meta, Out, StoreMode};
use crate::store::{Arith, ArithOp, MdOpts, MdOutcome, MgOpts, StoreOutcome, Update, time};

/// Appends the ` O...` and ` k...` return flags (all a miss can return).
fn opaque_and_key(out: &mut Out, m: &Meta<'_>, key: &[u8]) {
    for tok in m.flags() {
        match tok[0] {
            b'O' => encode::meta_token(out, tok),
            b'k' => encode::meta_key(out, key, m.base64),
            _ => {}
        }
    }
}

impl Handler {
    pub(super) fn meta_get(&mut self, m: &Meta<'_>, now: u32, out: &mut Out) {
        let mut kbuf = [0u8; 256];
        let key = m.lookup_key(&mut kbuf);
        let opts = MgOpts {
            ttl: m.ttl,
            vivify: m.vivify,
            recache: m.recache,
            no_update: m.no_update,
            new_cas: m.new_cas,
        };
        let touching = m.ttl.is_some();
        let mut hit = false;
        if let Some(h) = self.store.meta_get(key, now, &opts) {
            hit = true;
            let item = h.item;
            if m.value {
                encode::meta_value(out, item.value.len());
            } else {
                encode::meta_code(out, MetaCode::Hd);
            }
            for tok in m.flags() {
                match tok[0] {
                    b's' => encode::meta_u64(out, b's', item.value.len() as u64),
                    b't' => encode::meta_ttl(out, item.ttl),
                    b'c' => encode::meta_u64(out, b'c', item.cas),
                    b'f' => encode::meta_u64(out, b'f', u64::from(item.flags)),
                    b'l' => encode::meta_u64(out, b'l', item.idle),
                    b'h' => encode::meta_u64(out, b'h', u64::from(item.fetched)),
                    b'O' => encode::meta_token(out, tok),
                    b'k' => encode::meta_key(out, key, m.base64),
                    _ => {}
                }
            }
            if item.token_sent {
                encode::meta_token(out, b"Z");
            }
            if item.stale {
                encode::meta_token(out, b"X");
            }
            if h.won {
                encode::meta_token(out, b"W");
            }
            encode::crlf(out);
            if m.value {
                out.extend_from_slice(item.value);
                encode::crlf(out);
            }
        } else if !m.quiet {
            encode::meta_code(out, MetaCode::En);
            opaque_and_key(out, m, key);
            encode::crlf(out);
        }
        let stats = self.store.stats_mut();
        stats.cmd_meta += 1;
        match (touching, hit) {
            (true, true) => stats.touch_hits += 1,
            (true, false) => stats.touch_misses += 1,
            (false, true) => stats.get_hits += 1,
            (false, false) => stats.get_misses += 1,
        }
        if touching {
            stats.cmd_touch += 1;
        } else {
            stats.cmd_get += 1;
        }
    }

    pub(super) fn meta_set(&mut self, m: &Meta<'_>, data: &[u8], now: u32, out: &mut Out) {
        let mut kbuf = [0u8; 256];
        let key = m.lookup_key(&mut kbuf);
        let mut mode = ms_mode(m.mode);
        let mut cas = 0;
        if let Some(c) = m.compare_cas {
            // A CAS upgrades set and replace to cas; append/prepend compare
            // it themselves; add ignores it (memcached's process_mset).
            match mode {
                StoreMode::Set | StoreMode::Replace => {
                    mode = StoreMode::Cas;
                    cas = c;
                }
                StoreMode::Append | StoreMode::Prepend => cas = c,
                _ => {}
            }
        }
        let mut u = Update::new(mode, key, data);
        u.flags = m.client_flags;
        u.exptime = m.ttl.unwrap_or(0);
        u.cas = cas;
        u.new_cas = m.new_cas;
        u.allow_stale = m.invalidate && mode == StoreMode::Cas;
        u.vivify = m.vivify;
        let r = self.store.store(&u, now);
        let stats = self.store.stats_mut();
        stats.cmd_set += 1;
        stats.cmd_meta += 1;
        let code = match r.outcome {
            StoreOutcome::Stored if m.quiet => return,
            StoreOutcome::Stored => MetaCode::Hd,
            StoreOutcome::NotStored => MetaCode::Ns,
            StoreOutcome::Exists => MetaCode::Ex,
            StoreOutcome::NotFound => MetaCode::Nf,
            StoreOutcome::NoMemory => {
                encode::server_error(out, "out of memory storing object");
                return;
            }
        };
        encode::meta_code(out, code);
        for tok in m.flags() {
            match tok[0] {
                b'O' => encode::meta_token(out, tok),
                b'k' => encode::meta_key(out, key, m.base64),
                b'c' => encode::meta_u64(out, b'c', r.cas),
                b's' if r.outcome == StoreOutcome::Stored => {
                    encode::meta_u64(out, b's', r.size as u64)
                }
                _ => {}
            }
        }
        encode::crlf(out);
    }

    pub(super) fn meta_delete(&mut self, m: &Meta<'_>, now: u32, out: &mut Out) {
        let mut kbuf = [0u8; 256];
        let key = m.lookup_key(&mut kbuf);
        let opts = MdOpts {
            compare_cas: m.compare_cas,
            new_cas: m.new_cas,
            invalidate: m.invalidate,
            ttl: m.ttl,
            remove_value: m.remove_value,
            client_flags: m.client_flags,
        };
        let outcome = self.store.meta_delete(key, now, &opts);
        let stats = self.store.stats_mut();
        stats.cmd_meta += 1;
        let code = match outcome {
            MdOutcome::Deleted | MdOutcome::Kept => {
                if outcome == MdOutcome::Deleted {
                    stats.delete_hits += 1;
                }
                if m.quiet {
                    return;
                }
                MetaCode::Hd
            }
            MdOutcome::NotFound => {
                stats.delete_misses += 1;
                MetaCode::Nf
            }
            MdOutcome::Exists => {
                stats.delete_misses += 1;
                MetaCode::Ex
            }
        };
        encode::meta_code(out, code);
        opaque_and_key(out, m, key);
        encode::crlf(out);
    }

    pub(super) fn meta_arith(&mut self, m: &Meta<'_>, now: u32, out: &mut Out) {
        let mut kbuf = [0u8; 256];
        let key = m.lookup_key(&mut kbuf);
        let incr = !matches!(m.mode, Some(b'D' | b'-'));
        let op = ArithOp {
            incr,
            delta: m.delta,
            compare_cas: m.compare_cas.unwrap_or(0),
            new_cas: m.new_cas,
            ttl: m.ttl,
        };
        self.store.stats_mut().cmd_meta += 1;
        let (value, cas, ttl) = match self.store.arith(key, &op, now) {
            Arith::Done { value, cas, ttl } => {
                if m.quiet {
                    return;
                }
                (value, cas, ttl)
            }
            Arith::NonNumeric => {
                encode::client_error(out, "cannot increment or decrement non-numeric value");
                return;
            }
            Arith::Exists => return self.meta_status(out, MetaCode::Ex, m, key),
            Arith::NotFound => {
                let Some(n) = m.vivify else {
                    let stats = self.store.stats_mut();
                    if incr {
                        stats.incr_misses += 1;
                    } else {
                        stats.decr_misses += 1;
                    }
                    return self.meta_status(out, MetaCode::Nf, m, key);
                };
                let initial = m.initial.to_string();
                let mut u = Update::new(StoreMode::Add, key, initial.as_bytes());
                u.exptime = n;
                u.new_cas = m.new_cas;
                let r = self.store.store(&u, now);
                if r.outcome != StoreOutcome::Stored {
                    return self.meta_status(out, MetaCode::Ns, m, key);
                }
                let deadline = self.store.deadline(n, now);
                (m.initial, r.cas, time::remaining(deadline, now))
            }
        };
        let text = value.to_string();
        if m.value {
            encode::meta_value(out, text.len());
        } else {
            encode::meta_code(out, MetaCode::Hd);
        }
        for tok in m.flags() {
            match tok[0] {
                b'c' => encode::meta_u64(out, b'c', cas),
                b't' => encode::meta_ttl(out, ttl),
                b'O' => encode::meta_token(out, tok),
                b'k' => encode::meta_key(out, key, m.base64),
                _ => {}
            }
        }
        encode::crlf(out);
        if m.value {
            encode::line(out, text.as_bytes());
        }
    }

    fn meta_status(&mut self, out: &mut Out, code: MetaCode, m: &Meta<'_>, key: &[u8]) {
        encode::meta_code(out, code);
        opaque_and_key(out, m, key);
        encode::crlf(out);
    }
}
