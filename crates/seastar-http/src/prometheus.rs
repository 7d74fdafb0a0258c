//! Prometheus endpoint (feature `prometheus`): every shard's metrics in the
//! text exposition format 0.0.4.
//!
//! [`handler`] gathers the metrics of every shard by message passing
//! ([`seastar_core::metrics::gather`]: each shard reads only its own
//! registry) and renders them with a `shard` label
//! ([`seastar_core::metrics::prometheus::render`]). Mount it on any router,
//! usually at `/metrics` ([`route`]); a scrape costs one round trip to each
//! shard, the rendering runs on the shard that took the request.
//!
//! ```
//! use seastar_http::{Router, prometheus};
//!
//! let router = prometheus::route(Router::new());
//! # let _ = router;
//! ```
//!
//! An app that serves metrics on a port of their own (`--prometheus-port`)
//! starts an [`Endpoint`].

use std::net::SocketAddr;

use http::{HeaderValue, StatusCode, header};
use seastar_core::metrics::prometheus::{CONTENT_TYPE, text};
use seastar_core::{JoinHandle, promise, spawn_local};
use seastar_net::ListenOptions;

use crate::routing::get;
use crate::{IntoResponse, Request, Response, Router, ServeError, ServeStats, Server};

/// Answers with every shard's metrics (`500` if a shard could not be
/// reached, e.g. while stopping).
pub async fn handler(_req: Request) -> Response {
    match text().await {
        Ok(body) => {
            let mut r = body.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "prometheus: could not gather metrics");
            crate::response::error(StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable")
        }
    }
}

/// `router` with [`handler`] at `GET /metrics`.
pub fn route(router: Router) -> Router {
    router.route("/metrics", get(handler))
}

/// A `/metrics` server on every shard, on its own address, stopping with
/// the runtime's [`stop_signal`](seastar_core::stop_signal).
///
/// ```
/// use seastar_core::Runtime;
/// use seastar_http::prometheus::Endpoint;
///
/// Runtime::builder().shards(2).handle_signals(false).build().unwrap().run(async {
///     let ep = Endpoint::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
///     assert_ne!(ep.addr().port(), 0);
///     seastar_core::request_stop();
///     ep.stopped().await.unwrap();
/// });
/// ```
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    task: JoinHandle<Result<Vec<ServeStats>, ServeError>>,
}

impl Endpoint {
    /// Binds `addr` on every shard and serves `GET /metrics` there.
    /// Returns once every shard listens (and has taken its listener, so
    /// another [`serve_sharded`](crate::serve_sharded) may start right
    /// after).
    ///
    /// # Errors
    ///
    /// If a shard cannot bind `addr`.
    pub async fn start(addr: SocketAddr) -> Result<Endpoint, ServeError> {
        Endpoint::start_with_shutdown_timeout(addr, std::time::Duration::from_secs(30)).await
    }

    /// [`start`](Self::start) with the time a stop waits for open
    /// scrapes before dropping them ([`Server::shutdown_timeout`]; 30 s
    /// for `start`), so that an app's stop stays within its own bound.
    ///
    /// # Errors
    ///
    /// If a shard cannot bind `addr`.
    pub async fn start_with_shutdown_timeout(
        addr: SocketAddr,
        shutdown_timeout: std::time::Duration,
    ) -> Result<Endpoint, ServeError> {
        let (bound, on_bound) = promise::promise();
        let task = spawn_local(crate::serve_sharded(
            addr,
            ListenOptions::default(),
            move || Server::new(route(Router::new())).shutdown_timeout(shutdown_timeout),
            move |a| bound.set_value(a),
        ));
        match on_bound.await {
            // `serve_sharded` has issued the calls that take each shard's
            // listener (in order, before anything submitted from here).
            Ok(addr) => Ok(Endpoint { addr, task }),
            Err(_) => Err(match task.await {
                Ok(Err(e)) => e,
                _ => ServeError::Bind {
                    addr,
                    source: std::io::Error::other("the metrics endpoint stopped"),
                },
            }),
        }
    }

    /// The address the endpoint listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the endpoint to stop (after the runtime's stop signal);
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
