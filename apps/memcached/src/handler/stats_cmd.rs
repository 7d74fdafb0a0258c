//! `stats` and its sub-commands for one shard.
//!
//! memcached answers `stats`, `stats settings`, `stats items`, `stats slabs`
//! (engine stats), `stats reset` (`RESET`), `stats detail on|off|dump` and
//! `stats conns`; anything else is `ERROR`. We have one "slab class" (items
//! are allocated individually), reported as class 1.

use super::Handler;
use crate::protocol::Out;
use crate::protocol::encode::{self, stat, stat_str};
use crate::stats::Stats;

impl Handler {
    pub(super) fn stats(&mut self, args: &[u8], now: u32, out: &mut Out) {
        let mut words = args.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let sub = words.next().unwrap_or(b"");
        match sub {
            b"" => {
                let mut info = self.info.clone();
                info.limit_maxbytes = self.store.config().mem_limit as u64;
                self.store.stats().render(&info, out);
            }
            b"settings" => self.stats_settings(out),
            b"items" => self.store.summary(now).render_items(out),
            b"slabs" => self.store.summary(now).render_slabs(out),
            b"reset" => {
                let s = self.store.stats_mut();
                // Gauges describe the present and survive a reset.
                *s = Stats {
                    curr_connections: s.curr_connections,
                    curr_items: s.curr_items,
                    bytes: s.bytes,
                    ..Stats::default()
                };
                encode::line(out, b"RESET");
            }
            b"detail" => match words.next() {
                Some(b"on" | b"off") => encode::ok(out),
                Some(b"dump") => encode::end(out),
                _ => encode::client_error(out, "usage: stats detail on|off|dump"),
            },
            b"conns" => encode::end(out),
            _ => encode::error(out),
        }
    }

    fn stats_settings(&self, out: &mut Out) {
        let info = &self.info;
        // The whole server's limit (`-m`), not this shard's share.
        stat(out, "maxbytes", info.limit_maxbytes);
        stat(out, "maxconns", info.max_connections);
        stat(out, "tcpport", u64::from(info.tcp_port));
        stat(out, "udpport", u64::from(info.udp_port));
        stat(out, "verbosity", 0);
        stat_str(out, "evictions", "on");
        stat(out, "num_threads", u64::from(info.threads));
        stat_str(out, "cas_enabled", "yes");
        stat(out, "tcp_backlog", 1024);
        stat_str(out, "binding_protocol", "ascii");
        stat(out, "item_size_max", info.item_size_max);
        stat_str(out, "flush_enabled", "yes");
        encode::end(out);
    }
}
