//! Counters under memcached's `stats` names.
//!
//! Each shard keeps one [`Stats`]; the store updates the item counters
//! (`curr_items`, `bytes`, `evictions`, ...), the handler the command
//! counters (`cmd_get`, `get_hits`, ...), the connection loop the connection
//! and byte counters. `stats` merges the shards with `+=` (gauges such as
//! `curr_items` add up too, since shards hold disjoint keys) and renders the
//! sum with [`Stats::render`], in the order memcached prints them.

use std::ops::AddAssign;
use std::time::Duration;

use bytes::{BufMut, BytesMut};

use crate::protocol::encode;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// One shard's counters (see the module doc).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Stats {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl AddAssign<&Stats> for Stats {
            fn add_assign(&mut self, rhs: &Stats) {
                $(self.$name = self.$name.wrapping_add(rhs.$name);)*
            }
        }

        impl Stats {
            /// Every counter as `(name, value)`, in declaration order.
            pub fn counters(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($name), self.$name)),*].into_iter()
            }
        }
    };
}

counters! {
    /// Open connections.
    curr_connections,
    /// Connections accepted since start.
    total_connections,
    /// Connections refused (over `-c`).
    rejected_connections,
    /// Retrieval requests (per key for `get`, per `mg`).
    cmd_get,
    /// Storage requests that reached the store.
    cmd_set,
    /// `flush_all` requests.
    cmd_flush,
    /// `touch`, `gat` and `mg T` requests (per key).
    cmd_touch,
    /// Meta commands.
    cmd_meta,
    /// Keys found by retrievals.
    get_hits,
    /// Keys not found by retrievals.
    get_misses,
    /// Keys found but already expired.
    get_expired,
    /// Keys found but invalidated by `flush_all`.
    get_flushed,
    /// `delete` of a missing key.
    delete_misses,
    /// `delete` that removed an item.
    delete_hits,
    /// `incr` of a missing key.
    incr_misses,
    /// Successful `incr`.
    incr_hits,
    /// `decr` of a missing key.
    decr_misses,
    /// Successful `decr`.
    decr_hits,
    /// `cas` of a missing key.
    cas_misses,
    /// Successful `cas`.
    cas_hits,
    /// `cas` refused because the item changed.
    cas_badval,
    /// Touches that found the key.
    touch_hits,
    /// Touches of a missing key.
    touch_misses,
    /// Stores refused for exceeding the item size limit.
    store_too_large,
    /// Stores refused because the item cannot fit in memory at all.
    store_no_memory,
    /// Bytes read from clients.
    bytes_read,
    /// Bytes written to clients.
    bytes_written,
    /// Bytes held by items (key + value + per-item overhead).
    bytes,
    /// Items currently stored.
    curr_items,
    /// Items stored since start.
    total_items,
    /// Expired items reclaimed that were never fetched.
    expired_unfetched,
    /// Evicted items that were never fetched.
    evicted_unfetched,
    /// Live items evicted to make room.
    evictions,
    /// Expired or flushed items whose memory was reused or swept.
    reclaimed,
}

/// Process-wide facts printed by `stats` next to the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime: u64,
    /// Current Unix time.
    pub time: i64,
    /// Version string (as in `VERSION`).
    pub version: String,
    /// CPU time in user mode.
    pub rusage_user: Duration,
    /// CPU time in kernel mode.
    pub rusage_system: Duration,
    /// Connection limit (`-c`).
    pub max_connections: u64,
    /// Memory limit in bytes (`-m`).
    pub limit_maxbytes: u64,
    /// Worker threads (our shards, `-t`).
    pub threads: u32,
    /// TCP port (`-p`), for `stats settings`.
    pub tcp_port: u16,
    /// UDP port (`-U`, 0 = off), for `stats settings`.
    pub udp_port: u16,
    /// Item size limit (`-I`), for `stats settings`.
    pub item_size_max: u64,
}

impl Default for ServerInfo {
    fn default() -> Self {
        ServerInfo {
            pid: 0,
            uptime: 0,
            time: 0,
            version: crate::handler::DEFAULT_VERSION.to_string(),
            rusage_user: Duration::ZERO,
            rusage_system: Duration::ZERO,
            max_connections: 1024,
            limit_maxbytes: 64 << 20,
            threads: 1,
            tcp_port: 11211,
            udp_port: 0,
            item_size_max: 1 << 20,
        }
    }
}

fn rusage(out: &mut BytesMut, name: &str, d: Duration) {
    out.put_slice(b"STAT ");
    out.put_slice(name.as_bytes());
    out.put_u8(b' ');
    encode::put_u64(out, d.as_secs());
    out.put_u8(b'.');
    let micros = d.subsec_micros();
    let text = format!("{micros:06}");
    out.put_slice(text.as_bytes());
    encode::crlf(out);
}

impl Stats {
    /// Renders the general-purpose `stats` reply, `END` included.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use memcached::stats::{ServerInfo, Stats};
    /// let mut a = Stats::default();
    /// a.get_hits = 2;
    /// let mut b = Stats::default();
    /// b.get_hits = 3;
    /// a += &b;
    /// let mut out = BytesMut::new();
    /// a.render(&ServerInfo::default(), &mut out);
    /// let text = String::from_utf8(out.to_vec()).unwrap();
    /// assert!(text.contains("STAT get_hits 5\r\n"));
    /// assert!(text.ends_with("END\r\n"));
    /// ```
    pub fn render(&self, info: &ServerInfo, out: &mut BytesMut) {
        use encode::{stat, stat_str};
        stat(out, "pid", u64::from(info.pid));
        stat(out, "uptime", info.uptime);
        stat(out, "time", info.time.max(0) as u64);
        stat_str(out, "version", &info.version);
        stat(out, "pointer_size", 8 * std::mem::size_of::<usize>() as u64);
        rusage(out, "rusage_user", info.rusage_user);
        rusage(out, "rusage_system", info.rusage_system);
        stat(out, "max_connections", info.max_connections);
        for (name, value) in self.counters() {
            match name {
                "bytes" => {
                    stat(out, "limit_maxbytes", info.limit_maxbytes);
                    stat(out, "threads", u64::from(info.threads));
                    stat(out, name, value);
                }
                _ => stat(out, name, value),
            }
        }
        encode::end(out);
    }
}

/// What `stats items` and `stats slabs` report about one shard's store, or
/// about all of them merged with `+=` (sums, except `oldest_age`: the max).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSummary {
    /// Items stored (expired ones not yet reclaimed included).
    pub items: u64,
    /// Seconds since the least recently used item was accessed; `None`
    /// when the store is empty.
    pub oldest_age: Option<u64>,
    /// Bytes charged against the memory limit.
    pub mem_used: u64,
    /// The store's counters.
    pub stats: Stats,
}

impl AddAssign<&StoreSummary> for StoreSummary {
    fn add_assign(&mut self, rhs: &StoreSummary) {
        self.items += rhs.items;
        self.oldest_age = match (self.oldest_age, rhs.oldest_age) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.mem_used += rhs.mem_used;
        self.stats += &rhs.stats;
    }
}

impl StoreSummary {
    /// Renders `stats items` (one slab class, `1`), `END` included.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use memcached::stats::StoreSummary;
    /// let mut a = StoreSummary { items: 2, oldest_age: Some(3), ..Default::default() };
    /// a += &StoreSummary { items: 1, oldest_age: Some(7), ..Default::default() };
    /// let mut out = BytesMut::new();
    /// a.render_items(&mut out);
    /// assert!(out.starts_with(b"STAT items:1:number 3\r\nSTAT items:1:age 7\r\n"));
    /// ```
    pub fn render_items(&self, out: &mut BytesMut) {
        use encode::stat;
        if let Some(age) = self.oldest_age {
            let s = &self.stats;
            stat(out, "items:1:number", self.items);
            stat(out, "items:1:age", age);
            stat(out, "items:1:evicted", s.evictions);
            stat(out, "items:1:outofmemory", s.store_no_memory);
            stat(out, "items:1:reclaimed", s.reclaimed);
            stat(out, "items:1:expired_unfetched", s.expired_unfetched);
            stat(out, "items:1:evicted_unfetched", s.evicted_unfetched);
        }
        encode::end(out);
    }

    /// Renders `stats slabs`, `END` included.
    pub fn render_slabs(&self, out: &mut BytesMut) {
        use encode::stat;
        if self.items > 0 {
            stat(out, "1:used_chunks", self.items);
        }
        stat(out, "active_slabs", u64::from(self.items > 0));
        stat(out, "total_malloced", self.mem_used);
        encode::end(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_every_counter() {
        let mut a = Stats {
            cmd_get: 1,
            evictions: 2,
            ..Stats::default()
        };
        let b = Stats {
            cmd_get: 10,
            curr_items: 5,
            ..Stats::default()
        };
        a += &b;
        assert_eq!((a.cmd_get, a.evictions, a.curr_items), (11, 2, 5));
    }

    #[test]
    fn render_uses_memcached_names_and_order() {
        let s = Stats {
            cmd_get: 3,
            ..Stats::default()
        };
        let info = ServerInfo {
            pid: 42,
            rusage_user: Duration::from_micros(1_000_005),
            ..ServerInfo::default()
        };
        let mut out = BytesMut::new();
        s.render(&info, &mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with("STAT pid 42\r\nSTAT uptime 0\r\n"));
        assert!(text.contains("STAT rusage_user 1.000005\r\n"));
        assert!(text.contains("STAT cmd_get 3\r\n"));
        let pos = |n: &str| text.find(n).unwrap();
        assert!(pos("cmd_get") < pos("get_hits"));
        assert!(pos("bytes_written") < pos("limit_maxbytes"));
        assert!(pos("threads") < pos("STAT bytes "));
        assert!(pos("curr_items") < pos("evictions"));
        assert!(text.ends_with("STAT reclaimed 0\r\nEND\r\n"));
    }
}
