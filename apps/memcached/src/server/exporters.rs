//! Metrics export: memcached's own counters as metrics, served to
//! Prometheus (`--prometheus-port`) and pushed to collectd
//! (`--collectd-address`, `--collectd-interval`).
//!
//! Each shard's [`Stats`](crate::stats::Stats) become `memcached_<name>`
//! metrics of that shard (`memcached_curr_items`, `memcached_bytes` and
//! `memcached_curr_connections` as gauges, every other counter as
//! `memcached_<name>_total`), next to the runtime's and seastar-net's
//! built-in metrics. They are read on their shard when a snapshot is taken,
//! so serving requests pays nothing for them.

use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

use seastar_core::metrics::{self, Collector};
use seastar_core::shard_local::{self, SlotKey};
use seastar_http::prometheus::Endpoint;
use seastar_net::collectd;

use super::shard::ShardState;
use super::{Config, ServeError};

/// `stats` counters that are levels, not counts.
const GAUGES: &[&str] = &["curr_connections", "bytes", "curr_items"];

/// This shard's state, for the collector, in the shard's slots (the
/// collector is registered for the process; a runtime without memcached
/// has no slot, and one after it sees none of its state).
struct Source(Weak<ShardState>);

/// Makes `st` the shard's source of `memcached_*` metrics.
pub(super) fn register_shard(st: &Rc<ShardState>) {
    shard_local::insert(SlotKey::SINGLETON, Source(Rc::downgrade(st)));
    metrics::register_collector("memcached", collect);
}

fn collect(c: &mut Collector<'_>) {
    let Some(st) = shard_local::get::<Source>(SlotKey::SINGLETON).and_then(|s| s.0.upgrade())
    else {
        return;
    };
    let Ok(handler) = st.handler.try_borrow() else {
        return;
    };
    for (name, value) in handler.store().stats().counters() {
        if GAUGES.contains(&name) {
            let help = format!("memcached `stats` {name} of this shard.");
            c.gauge(&format!("memcached_{name}"), &help, &[], value as f64);
        } else {
            let help = format!("memcached `stats` {name} of this shard.");
            c.counter(&format!("memcached_{name}_total"), &help, &[], value);
        }
    }
}

/// The exporters running on shard 0.
#[derive(Debug, Default)]
pub(super) struct Exporters {
    /// Where the Prometheus endpoint listens.
    pub prometheus: Option<SocketAddr>,
    http: Option<Endpoint>,
    collectd: Option<collectd::Client>,
}

impl Exporters {
    /// Starts what `config` asks for (on shard 0).
    pub(super) async fn start(config: &Config) -> Result<Exporters, ServeError> {
        let mut ex = Exporters::default();
        if let Some(addr) = config.prometheus {
            let ep = Endpoint::start(addr).await.map_err(|e| ServeError::Bind {
                proto: "prometheus",
                addr,
                source: io::Error::other(e.to_string()),
            })?;
            ex.prometheus = Some(ep.addr());
            ex.http = Some(ep);
        }
        if let Some(c) = &config.collectd {
            let client = collectd::Client::start(c.clone()).map_err(|source| ServeError::Bind {
                proto: "collectd",
                addr: c.address,
                source,
            })?;
            ex.collectd = Some(client);
        }
        Ok(ex)
    }

    /// Stops pushing and waits for the Prometheus endpoint, which stops on
    /// the same stop signal as the server.
    pub(super) async fn finish(mut self) {
        if let Some(c) = self.collectd.take() {
            c.stop();
        }
        if let Some(ep) = self.http.take() {
            seastar_core::request_stop();
            if let Err(e) = ep.stopped().await {
                tracing::warn!(error = %e, "prometheus endpoint");
            }
        }
    }
}
