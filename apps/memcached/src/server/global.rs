//! Commands that concern every shard: `stats` (merged) and `flush_all`.
//!
//! - `stats`: every shard's [`Stats`] gathered with `map_reduce` and summed
//!   (gauges such as `curr_items` and `curr_connections` add up too, since
//!   shards hold disjoint keys and connections), printed with the process
//!   facts of the answering shard (`pid`, `uptime`, `threads`, the whole
//!   `-m` as `limit_maxbytes`).
//! - `stats items` / `stats slabs`: the stores' summaries merged likewise.
//! - `stats reset`: on every shard; one `RESET`.
//! - `stats settings`, `stats detail`, `stats conns` and unknown
//!   sub-commands: answered by the local shard alone.
//! - `flush_all [delay]`: scheduled on every shard, counted once (by the
//!   shard that received it), answered once.

use std::rc::Rc;

use seastar_core::shard_id;
use seastar_core::smp::Sharded;

use super::shard::ShardState;
use crate::protocol::{Out, Request, encode};
use crate::stats::{Stats, StoreSummary};

/// A command for every shard, owned (it outlives the read buffer's borrow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Global {
    /// `stats [args]`.
    Stats(Vec<u8>),
    /// `flush_all [delay] [noreply]`.
    Flush { delay: i64, noreply: bool },
}

/// Runs `g` and appends its reply.
pub(crate) async fn run(
    shard: &Rc<ShardState>,
    service: &Sharded<ShardState>,
    g: Global,
    out: &mut Out,
) {
    match g {
        Global::Flush { delay, noreply } => {
            let me = shard_id();
            let all = service
                .invoke_on_all(move |st| async move {
                    if shard_id() != me {
                        let now = st.now();
                        st.handler.borrow_mut().store_mut().flush_all(delay, now);
                    }
                })
                .await;
            if let Err(e) = all {
                tracing::warn!(error = %e, "flush_all did not reach every shard");
            }
            let now = shard.now();
            let req = Request::FlushAll { delay, noreply };
            shard.handler.borrow_mut().execute(&req, now, out);
        }
        Global::Stats(args) => stats(shard, service, &args, out).await,
    }
}

async fn stats(shard: &Rc<ShardState>, service: &Sharded<ShardState>, args: &[u8], out: &mut Out) {
    let sub = args
        .split(|&b| b == b' ')
        .find(|w| !w.is_empty())
        .unwrap_or(b"");
    match sub {
        b"" => {
            let merged = service
                .map_reduce(
                    |st| async move { st.handler.borrow().store().stats().clone() },
                    |mut acc: Stats, s| {
                        acc += &s;
                        acc
                    },
                    Stats::default(),
                )
                .await;
            match merged {
                Ok(s) => s.render(&shard.server_info(), out),
                Err(e) => encode::server_error(out, &format!("stats: {e}")),
            }
        }
        b"items" | b"slabs" => {
            let merged = service
                .map_reduce(
                    |st| async move {
                        let now = st.now();
                        st.handler.borrow().store().summary(now)
                    },
                    |mut acc: StoreSummary, s| {
                        acc += &s;
                        acc
                    },
                    StoreSummary::default(),
                )
                .await;
            match merged {
                Ok(s) if sub == b"items" => s.render_items(out),
                Ok(s) => s.render_slabs(out),
                Err(e) => encode::server_error(out, &format!("stats: {e}")),
            }
        }
        b"reset" => {
            let all = service
                .invoke_on_all(|st| async move {
                    let now = st.now();
                    let mut scratch = Out::new();
                    let req = Request::Stats { args: b"reset" };
                    st.handler.borrow_mut().execute(&req, now, &mut scratch);
                })
                .await;
            match all {
                Ok(_) => encode::line(out, b"RESET"),
                Err(e) => encode::server_error(out, &format!("stats: {e}")),
            }
        }
        _ => {
            let now = shard.now();
            let req = Request::Stats { args };
            shard.handler.borrow_mut().execute(&req, now, out);
        }
    }
}
