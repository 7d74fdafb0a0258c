//! The admin REST API and the live per-shard dashboard (feature `admin`).
//!
//! An app that enables it ([`AdminArgs`]: `--admin-port PORT`, loopback
//! unless `--admin-address` says otherwise, an optional bearer token from
//! `--admin-token-file`) serves, on a port of its own:
//!
//! | path | what |
//! |---|---|
//! | `/` | the dashboard: one static page (inline script and styles, no CDN), polling the API once a second |
//! | `/api/v1/runtime` | app and framework versions, shards and their CPUs, backend, network stack, options in force, uptime |
//! | `/api/v1/shards` | per shard: busy fraction over the last 1 s / 10 s / 60 s, requests per second, latency percentiles, tasks run, ready tasks, polls, sleeps, stalls (with the last one's length and backtrace, named off the shard), cross-shard messages in and out, memory, the app's own figures, one minute of history |
//! | `/api/v1/groups` | scheduling groups: shares, runtime and ready tasks, per shard |
//! | `/api/v1/connections` | per shard: accepted, open, refused, bytes in and out; per listener the app named ([`register_listener`]) and shard: accepted, open, back-offs, how long its longest-idle open connection has been silent |
//! | `/api/v1/io` | per shard: the I/O queue's requests and cost in flight; per I/O class: shares, queued, dispatched, requests and bytes by direction, latency percentiles (p50/p90/p99 since the start, queueing included) |
//! | `/api/v1/metrics` | every shard's metrics registry as JSON |
//! | `/api/v1/openapi.json` | the OpenAPI 3 description of all of the above ([`api::OPENAPI_JSON`]) |
//!
//! Everything is read-only (other methods answer 405). Values are gathered
//! with [`invoke_on_all`](seastar_core::smp::invoke_on_all): each shard
//! reads its own counters, the shard that took the request assembles the
//! answer; there is no lock and no shared counter.
//!
//! Windows (busy fraction, requests per second, percentiles) come from a
//! per-shard sampler started with the server: once a second each shard
//! records its busy time, request counter and latency histogram into a
//! ring of the last minute's samples, so the API costs nothing between
//! requests and the app pays nothing while the admin port is off. (Each
//! sample takes a metrics snapshot of the shard, which restarts the
//! window of the `seastar_reactor_utilization` gauge.)
//!
//! ```
//! use seastar_core::Runtime;
//! use seastar_http::admin::{Admin, AdminServer};
//!
//! Runtime::builder().shards(2).handle_signals(false).build().unwrap().run(async {
//!     let admin = Admin::new("doc", "1.0").option("port", 8080);
//!     let server = AdminServer::start("127.0.0.1:0".parse().unwrap(), admin).await.unwrap();
//!     let url = format!("http://{}/api/v1/runtime", server.addr());
//!     let resp = seastar_http::Client::new().get(&url).await.unwrap();
//!     assert_eq!(resp.status(), 200);
//!     seastar_core::request_stop();
//!     server.stopped().await.unwrap();
//! });
//! ```

pub mod api;
mod args;
mod config;
mod listeners;
mod quantile;
mod sampler;
mod system;
mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use seastar_core::{JoinHandle, promise, smp, spawn_local};
use seastar_net::ListenOptions;

pub use args::AdminArgs;
pub use config::{Admin, ShardView};
pub use listeners::{local_listeners, register_listener};

use crate::{ServeError, ServeStats, Server};

/// Connections the admin server keeps open per shard; more are refused
/// (the dashboard needs one).
pub const MAX_CONNECTIONS: usize = 64;

/// A connection that has not sent a full request head this long after it
/// opened (or after its previous request) is closed unanswered: a silent
/// client holds a connection slot no longer.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A keep-alive connection idle this long between requests is closed
/// (the dashboard polls every second).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The admin server's limits: a client never decides what it holds.
/// Read-only GETs with small heads; [`HEADER_READ_TIMEOUT`],
/// [`IDLE_TIMEOUT`]; [`MAX_CONNECTIONS`] per shard.
fn limits(server: Server) -> Server {
    server
        .max_connections(MAX_CONNECTIONS)
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .idle_timeout(IDLE_TIMEOUT)
        .body_read_timeout(std::time::Duration::from_secs(10))
        .max_header_size(16 * 1024)
        .max_headers(64)
        .max_body_size(4096)
        .max_output_buffer(256 * 1024)
}

/// Why the admin server could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// `--admin-token-file` could not be read.
    #[error("cannot read the admin token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `--admin-token-file` holds only whitespace.
    #[error("the admin token file {0} is empty")]
    EmptyToken(PathBuf),
    /// The address could not be bound, or a shard did not answer.
    #[error("admin server: {0}")]
    Serve(#[from] ServeError),
}

/// The admin server, serving on every shard until the runtime's
/// [`stop_signal`](seastar_core::stop_signal).
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    task: JoinHandle<Result<Vec<ServeStats>, ServeError>>,
}

impl AdminServer {
    /// Starts every shard's sampler, binds `addr` on every shard and serves
    /// the API and the dashboard there. Returns once every shard listens.
    ///
    /// # Errors
    ///
    /// If a shard cannot bind `addr` or does not answer.
    pub async fn start(addr: SocketAddr, admin: Admin) -> Result<AdminServer, AdminError> {
        let cfg = Arc::new(admin.config);
        let sources = cfg.sources.clone();
        smp::broadcast(move || {
            let sources = sources.clone();
            async move { sampler::start(sources) }
        })
        .await
        .map_err(ServeError::from)?;
        let (bound, on_bound) = promise::promise();
        let timeout = cfg.shutdown_timeout;
        let make = move || limits(Server::new(api::service(cfg.clone()))).shutdown_timeout(timeout);
        let task = spawn_local(crate::serve_sharded(
            addr,
            ListenOptions::default(),
            make,
            move |a| bound.set_value(a),
        ));
        match on_bound.await {
            Ok(addr) => {
                tracing::info!(shard = seastar_core::shard_id(), %addr, "admin API and dashboard");
                Ok(AdminServer { addr, task })
            }
            Err(_) => Err(AdminError::Serve(match task.await {
                Ok(Err(e)) => e,
                _ => ServeError::Bind {
                    addr,
                    source: std::io::Error::other("the admin server stopped"),
                },
            })),
        }
    }

    /// The address the admin server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the server to stop (after the runtime's stop signal);
    /// each shard's request counts.
    ///
    /// # Errors
    ///
    /// If a shard stopped before answering.
    pub async fn stopped(self) -> Result<Vec<ServeStats>, ServeError> {
        match self.task.await {
            Ok(r) => r,
            Err(_) => Err(ServeError::Smp(seastar_core::smp::SubmitError::Stopped)),
        }
    }
}
