//! `seawreck`: an HTTP/1.1 load generator on seastar-rs.
//!
//! | module | what it holds |
//! |---|---|
//! | [`response`] | incremental response framing (pure) |
//! | [`stats`] | per-shard counters and latency histogram, merged into a [`Report`](stats::Report) |
//! | [`load`] | the connection loops: closed loop (with pipelining) and open loop (`--rate`) |

pub mod load;
pub mod response;
pub mod stats;
