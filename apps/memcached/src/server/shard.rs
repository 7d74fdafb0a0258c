//! One shard's share of the server: its [`Handler`] (store, stats), its
//! sockets until they are served, and the clock every request reads.
//!
//! A `ShardState` lives in a [`Sharded`](seastar_core::smp::Sharded)
//! service, one per shard, built on its shard and never moved. Everything
//! is `RefCell`-borrowed for the length of a synchronous step only: no
//! borrow is held across an `.await`, so a forwarded batch, the sweeper
//! timer and a local connection never meet inside a borrow.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use seastar_core::smp::StopHook;
use seastar_core::timer;

use super::Config;
use super::coalesce::Coalescer;
use super::routing::{Batch, Op, Replies};
use crate::handler::{DEFAULT_VERSION, Handler, HandlerConfig};
use crate::protocol::{Limits, Out, encode, parse};
use crate::stats::ServerInfo;
use crate::store::StoreConfig;

/// What every shard is built from (`Send`, cloned into the factory).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub config: Config,
    /// Shard 0's clock reading at start: `now` counts seconds from here.
    pub start: Instant,
    /// Unix time at `start`, for absolute exptimes and `stats time`.
    pub epoch: i64,
    pub shards: usize,
}

/// One shard's state (see the module doc).
pub(crate) struct ShardState {
    pub handler: RefCell<Handler>,
    pub limits: Limits,
    start: Instant,
    /// The last `now`: the loop clock it was read at and its seconds.
    last_now: Cell<(Instant, u32)>,
    epoch: i64,
    /// This shard's share of `-c`.
    pub max_conns: usize,
    /// Replies a connection builds before waiting for the client.
    pub output_budget: usize,
    /// Close connections without a request for this long.
    pub idle_timeout: Option<Duration>,
    /// How long a stop waits for the connections.
    pub shutdown_timeout: Duration,
    /// Reply bytes after which a UDP request stops executing.
    pub udp_reply_max: usize,
    /// TLS on the TCP port (`-Z`).
    pub tls: Option<super::tls::TlsConfig>,
    /// Bound by `serve` with `-U`, taken by the shard's UDP loop.
    pub udp: RefCell<Option<super::udp::Socket>>,
    /// This shard's batches for other shards, sent once per tick.
    pub coalescer: Coalescer,
}

impl StopHook for ShardState {}

impl ShardState {
    pub fn new(s: &Settings) -> Self {
        let c = &s.config;
        let shards = s.shards.max(1);
        let info = ServerInfo {
            pid: std::process::id(),
            version: DEFAULT_VERSION.to_string(),
            max_connections: c.max_connections as u64,
            limit_maxbytes: c.memory_limit as u64,
            threads: shards as u32,
            tcp_port: c.tcp.port(),
            udp_port: c.udp.map_or(0, |a| a.port()),
            item_size_max: c.item_size_max as u64,
            ..ServerInfo::default()
        };
        let handler = Handler::new(HandlerConfig {
            store: StoreConfig {
                mem_limit: c.memory_limit / shards,
                epoch: s.epoch,
                item_size_max: c.item_size_max,
            },
            info,
        });
        ShardState {
            handler: RefCell::new(handler),
            limits: Limits {
                max_item_size: c.item_size_max,
                ..Limits::default()
            },
            start: s.start,
            last_now: Cell::new((s.start, 0)),
            epoch: s.epoch,
            max_conns: c.max_connections.div_ceil(shards).max(1),
            output_budget: c.conn_output_budget,
            idle_timeout: c.idle_timeout,
            shutdown_timeout: c.shutdown_timeout,
            udp_reply_max: c.udp_reply_max,
            tls: c.tls.clone(),
            udp: RefCell::new(None),
            coalescer: Coalescer::default(),
        }
    }

    /// Seconds since server start, from the reactor's cached clock (the
    /// manual clock under tests).
    ///
    /// Recomputed only when the loop clock moved: every read of a busy
    /// connection asks, within one loop iteration (callgrind: about 80
    /// instructions per request for the subtraction and division).
    pub fn now(&self) -> u32 {
        let clock = timer::lowres_now();
        let (at, secs) = self.last_now.get();
        if clock == at {
            return secs;
        }
        let d = clock.saturating_duration_since(self.start);
        let secs = d.as_secs().min(u64::from(u32::MAX)) as u32;
        self.last_now.set((clock, secs));
        secs
    }

    /// The facts `stats` prints, brought up to date.
    pub fn server_info(&self) -> ServerInfo {
        let now = self.now();
        let mut info = self.handler.borrow().server_info().clone();
        info.uptime = u64::from(now);
        info.time = self.epoch + i64::from(now);
        if let Some((user, system)) = process_cpu_times() {
            info.rusage_user = user;
            info.rusage_system = system;
        }
        info
    }

    /// Executes the requests another shard forwarded here (see
    /// [`routing`](super::routing)); the replies come back in op order.
    pub fn run_batch(&self, mut batch: Batch) -> Replies {
        let now = self.now();
        let mut h = self.handler.borrow_mut();
        let mut out = Out::with_capacity(batch.ops.len() * 64);
        let mut ends = Vec::with_capacity(batch.ops.len());
        let mut pos = 0;
        for op in &batch.ops {
            let raw = &batch.bytes[pos..pos + op.len()];
            pos += op.len();
            match *op {
                Op::Request { .. } => match parse(raw, &self.limits) {
                    Ok(Some((req, _))) => {
                        h.execute(&req, now, &mut out);
                    }
                    // The sender parsed these very bytes with the same limits.
                    _ => encode::server_error(&mut out, "request lost in forwarding"),
                },
                Op::Get { cas, .. } => {
                    h.get_one(raw, cas, now, &mut out);
                }
                Op::Gat { cas, exptime, .. } => {
                    h.gat_one(raw, exptime, cas, now, &mut out);
                }
            }
            ends.push(out.len());
        }
        batch.clear();
        Replies { out, ends, batch }
    }
}

/// User and system CPU time of this process (`/proc/self/stat`, in clock
/// ticks of 1/100 s, the value `_SC_CLK_TCK` has on every Linux ABI).
fn process_cpu_times() -> Option<(Duration, Duration)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let tick = |t: u64| Duration::from_millis(t * 10);
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some((tick(user), tick(system)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_times_are_read_from_proc() {
        assert!(super::process_cpu_times().is_some());
    }
}
