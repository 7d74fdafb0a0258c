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

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

use seastar_core::metrics::{self, Collector};
use seastar_core::{JoinHandle, promise, spawn_local};
use seastar_http::{Router, Server, prometheus};
use seastar_net::ListenOptions;
use seastar_net::collectd;

use super::shard::ShardState;
use super::{Config, ServeError};

/// `stats` counters that are levels, not counts.
const GAUGES: &[&str] = &["curr_connections", "bytes", "curr_items"];

thread_local! {
    /// This shard's state, for the collector.
    static SHARD: RefCell<Weak<ShardState>> = const { RefCell::new(Weak::new()) };
}

/// Makes `st` the shard's source of `memcached_*` metrics.
pub(super) fn register_shard(st: &Rc<ShardState>) {
    SHARD.with(|s| *s.borrow_mut() = Rc::downgrade(st));
    metrics::register_collector("memcached", collect);
}

fn collect(c: &mut Collector<'_>) {
    let Some(st) = SHARD.with(|s| s.borrow().upgrade()) else {
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
    http: Option<JoinHandle<Result<Vec<seastar_http::ServeStats>, seastar_http::ServeError>>>,
    collectd: Option<collectd::Client>,
}

impl Exporters {
    /// Starts what `config` asks for (on shard 0).
    pub(super) async fn start(config: &Config) -> Result<Exporters, ServeError> {
        let mut ex = Exporters::default();
        if let Some(addr) = config.prometheus {
            let (bound, on_bound) = promise::promise();
            let task = spawn_local(seastar_http::serve_sharded(
                addr,
                ListenOptions::default(),
                || Server::new(prometheus::route(Router::new())),
                move |a| bound.set_value(a),
            ));
            match on_bound.await {
                Ok(a) => {
                    ex.prometheus = Some(a);
                    ex.http = Some(task);
                }
                Err(_) => {
                    let reason = match task.await {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the endpoint stopped".to_owned(),
                    };
                    return Err(ServeError::Bind {
                        proto: "prometheus",
                        addr,
                        source: io::Error::other(reason),
                    });
                }
            }
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
        if let Some(t) = self.http.take() {
            seastar_core::request_stop();
            if let Ok(Err(e)) = t.await {
                tracing::warn!(error = %e, "prometheus endpoint");
            }
        }
    }
}
