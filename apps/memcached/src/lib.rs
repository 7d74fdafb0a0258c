//! A memcached-compatible cache: everything but the sockets.
//!
//! # Map
//!
//! - [`protocol`]: pure parser and encoder over bytes (text and meta
//!   protocols). [`protocol::parse`] turns the front of a read buffer into a
//!   borrowed [`protocol::Request`]; [`protocol::encode`] writes exact reply
//!   bytes into a `BytesMut`. No I/O, no state, fuzzed (`fuzz/`).
//! - [`store`]: one shard's items: hash table, LRU with a byte limit and
//!   eviction, CAS counter, memcached's expiry and `flush_all` rules. Time is
//!   a parameter (`now`, seconds since server start), so tests never sleep.
//! - [`stats`]: counters under memcached's names, mergeable across shards
//!   and rendered as `STAT name value` lines.
//! - [`handler`]: executes a request against a store and encodes the reply,
//!   honouring `noreply` and the meta `q` flag.
//! - [`server`]: the sharded TCP/UDP server on seastar-rs: one store per
//!   shard, keys routed to their owner ([`shard_of`]) in one batch per
//!   shard and read, all replies of a read sent with one write, each
//!   connection's replies bounded by its output budget.
//! - [`cli`]: memcached's command-line flags plus the runtime's.
//!
//! The connection loop is then:
//! read -> [`protocol::parse`] -> route to the owning shard
//! ([`shard_of`]) -> [`handler::Handler::execute`] -> write.
//!
//! ```
//! use memcached::handler::{Handler, HandlerConfig};
//! use memcached::protocol::{parse, Limits, Out};
//!
//! let mut h = Handler::new(HandlerConfig::default());
//! let mut out = Out::new();
//! let mut buf: &[u8] = b"set k 0 0 2\r\nhi\r\nget k\r\n";
//! while let Some((req, used)) = parse(buf, &Limits::default()).unwrap() {
//!     h.execute(&req, 0, &mut out);
//!     buf = &buf[used..];
//! }
//! assert_eq!(out.to_vec(), b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod handler;
pub mod protocol;
pub mod server;
pub mod stats;
pub mod store;

use std::hash::BuildHasher;

/// Seed of the shard-routing hash; distinct from the (randomly seeded)
/// per-shard tables so that keys of one shard still spread over all buckets.
const SHARD_SEED: u64 = 0x6d65_6d63_6163_6865;

/// The shard (0..`shards`) that owns `key`; stable for the process lifetime
/// and across shards, so every shard routes a key the same way.
///
/// ```
/// let s = memcached::shard_of(b"user:42", 4);
/// assert!(s < 4);
/// assert_eq!(s, memcached::shard_of(b"user:42", 4));
/// ```
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let h = foldhash::fast::FixedState::with_seed(SHARD_SEED).hash_one(key);
    // Multiply-shift range reduction uses the high bits of the hash.
    ((u128::from(h) * shards as u128) >> 64) as usize
}
