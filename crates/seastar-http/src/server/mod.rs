//! [`Server`]: serves a [`Handler`] over one shard's listener with hyper.
//!
//! One `Server` runs per shard (each shard has its own `SO_REUSEPORT`
//! listener, or receives connections from a distributing one); every
//! connection is a task on that shard driving a hyper connection through
//! `seastar-net`'s adapters, with `ShardTimer` for timeouts and
//! `ShardExecutor` for HTTP/2 stream tasks, so no tokio runtime exists.
//!
//! HTTP/1.1 with keep-alive and pipelining: the responses to all requests
//! found in one read leave in one write (see `coalesce` for why this is
//! not hyper's `pipeline_flush`).
//! With feature `http2`, a connection that opens with the HTTP/2 preface
//! is served as HTTP/2 (cleartext, prior knowledge).
//!
//! Limits: a header read timeout against slow clients (the connection is
//! closed), a cap on the header block (hyper answers 431), a body size
//! limit (413: at once when `Content-Length` says so, else when the
//! handler reads past it), and an optional cap on requests per connection.
//! A malformed request gets 400 from hyper and ends only its own
//! connection.
//!
//! Graceful stop: when the `shutdown` future passed to [`Server::serve`]
//! resolves, the listener is dropped (no new connections), idle
//! connections close, and busy ones finish their in-flight request and
//! close; after [`Server::shutdown_timeout`] the stragglers are dropped.

mod coalesce;
mod conn;
#[cfg(feature = "http2")]
mod h2;
mod sharded;

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{Either, select};
use seastar_core::sync::{AbortSource, Gate};
use seastar_net::hyper::ShardTimer;
use seastar_net::{TcpListener, TcpStream};

use crate::Handler;
use crate::metrics::HttpMetrics;

pub use sharded::{ServeError, serve_sharded};

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) max_header_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_body_size: Option<u64>,
    pub(crate) max_requests_per_connection: Option<u64>,
    pub(crate) keep_alive: bool,
    pub(crate) pipeline_flush: bool,
    pub(crate) nodelay: bool,
    pub(crate) shutdown_timeout: Duration,
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) http2: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            header_read_timeout: Some(Duration::from_secs(30)),
            max_header_size: 64 * 1024,
            max_headers: 100,
            max_body_size: Some(8 * 1024 * 1024),
            max_requests_per_connection: None,
            keep_alive: true,
            pipeline_flush: true,
            nodelay: true,
            shutdown_timeout: Duration::from_secs(30),
            http2: true,
        }
    }
}

/// What one shard's server did, returned by [`Server::serve`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Connections accepted.
    pub connections: u64,
    /// Requests handed to the handler (or answered 413 before it).
    pub requests: u64,
    /// Connections that ended with an error (malformed request, timeout,
    /// reset); the server kept serving the others.
    pub connection_errors: u64,
    /// Connections still open at the end of the shutdown timeout, dropped.
    pub dropped_at_stop: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: Cell<u64>,
    pub(crate) requests: Cell<u64>,
    pub(crate) errors: Cell<u64>,
    pub(crate) dropped: Cell<u64>,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) handler: Rc<dyn Handler>,
    pub(crate) metrics: HttpMetrics,
    pub(crate) stats: Counters,
    stop: AbortSource,
    kill: AbortSource,
}

/// An HTTP server for one shard; see the [module docs](self).
///
/// ```
/// use seastar_http::{Request, Router, Server, routing::get};
/// use seastar_net::{ListenOptions, TcpListener};
///
/// seastar_core::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
///         .await
///         .unwrap();
///     let addr = listener.local_addr().unwrap();
///     let router = Router::new().route("/", get(|_r: Request| async { "hi\n" }));
///     let stop = seastar_core::sync::AbortSource::new();
///     let server = seastar_core::spawn_local(Server::new(router).serve(listener, stop.aborted()));
///
///     let client = seastar_http::Client::new();
///     let resp = client.get(&format!("http://{addr}/")).await.unwrap();
///     assert_eq!(resp.status(), 200);
///     drop(resp);
///
///     stop.request_abort();
///     let stats = server.await.unwrap();
///     assert_eq!(stats.requests, 1);
/// });
/// ```
pub struct Server {
    handler: Rc<dyn Handler>,
    config: Config,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish()
    }
}

impl Server {
    /// A server answering every request with `handler` (usually a
    /// [`Router`](crate::Router)), with the default limits: 30 s header
    /// read timeout, 64 KiB of headers (100 at most), 8 MiB bodies, no
    /// request cap, keep-alive and pipelined flushing on.
    pub fn new(handler: impl Handler) -> Server {
        Server {
            handler: Rc::new(handler),
            config: Config::default(),
        }
    }

    /// Closes a connection whose request head has not fully arrived this
    /// long after it started (slow or idle clients); `None` turns it off.
    pub fn header_read_timeout(mut self, t: impl Into<Option<Duration>>) -> Server {
        self.config.header_read_timeout = t.into();
        self
    }

    /// Largest request head in bytes (at least 8 KiB); larger gets 431.
    pub fn max_header_size(mut self, bytes: usize) -> Server {
        self.config.max_header_size = bytes.max(8192);
        self
    }

    /// Most header fields in one request; more gets 431.
    pub fn max_headers(mut self, n: usize) -> Server {
        self.config.max_headers = n;
        self
    }

    /// Largest request body in bytes (`None`: unlimited); larger gets 413.
    pub fn max_body_size(mut self, bytes: impl Into<Option<u64>>) -> Server {
        self.config.max_body_size = bytes.into();
        self
    }

    /// Closes a connection after this many requests (`None`: never).
    pub fn max_requests_per_connection(mut self, n: impl Into<Option<u64>>) -> Server {
        self.config.max_requests_per_connection = n.into().map(|n| n.max(1));
        self
    }

    /// HTTP/1.1 keep-alive (on by default); off closes after each response.
    pub fn keep_alive(mut self, on: bool) -> Server {
        self.config.keep_alive = on;
        self
    }

    /// Writes the responses to pipelined requests together (on by default);
    /// off sends each response as soon as hyper flushes it.
    pub fn pipeline_flush(mut self, on: bool) -> Server {
        self.config.pipeline_flush = on;
        self
    }

    /// `TCP_NODELAY` on accepted connections (on by default).
    pub fn nodelay(mut self, on: bool) -> Server {
        self.config.nodelay = on;
        self
    }

    /// How long a graceful stop waits for busy connections before dropping them.
    pub fn shutdown_timeout(mut self, t: Duration) -> Server {
        self.config.shutdown_timeout = t;
        self
    }

    /// Serves HTTP/2 to connections that open with its preface (on by
    /// default with feature `http2`).
    #[cfg(feature = "http2")]
    pub fn http2(mut self, on: bool) -> Server {
        self.config.http2 = on;
        self
    }

    /// Accepts and serves connections until `shutdown` resolves, then stops
    /// gracefully (see the [module docs](self)); returns what it did.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> ServeStats {
        let shared = Rc::new(Shared {
            config: self.config,
            handler: self.handler,
            metrics: HttpMetrics::new(),
            stats: Counters::default(),
            stop: AbortSource::new(),
            kill: AbortSource::new(),
        });
        let gate = Gate::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let accept = std::pin::pin!(listener.accept());
            match select(accept, shutdown.as_mut()).await {
                Either::Left((Ok((stream, peer)), _)) => {
                    let Ok(guard) = gate.enter() else { break };
                    let c = &shared.stats.connections;
                    c.set(c.get() + 1);
                    let shared = shared.clone();
                    seastar_core::spawn_local(async move {
                        serve_connection(stream, peer, &shared).await;
                        drop(guard);
                    })
                    .detach();
                }
                Either::Left((Err(e), _)) => {
                    if e.kind() != std::io::ErrorKind::NotConnected {
                        tracing::error!(error = %e, "accept failed; no longer accepting");
                    }
                    break;
                }
                Either::Right(((), _)) => break,
            }
        }
        drop(listener);
        shared.stop.request_abort();
        let closing = std::pin::pin!(gate.close());
        let limit = std::pin::pin!(seastar_core::timer::sleep(shared.config.shutdown_timeout));
        if let Either::Right(((), closing)) = select(closing, limit).await {
            let left = gate.holders() as u64;
            tracing::warn!(connections = left, "shutdown timeout: dropping connections");
            shared.stats.dropped.set(left);
            shared.kill.request_abort();
            closing.await;
        }
        let s = &shared.stats;
        ServeStats {
            connections: s.connections.get(),
            requests: s.requests.get(),
            connection_errors: s.errors.get(),
            dropped_at_stop: s.dropped.get(),
        }
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: &Rc<Shared>) {
    if shared.config.nodelay {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY");
        }
    }
    #[cfg(feature = "http2")]
    if shared.config.http2 {
        let (is_h2, io) = match h2::sniff(stream, shared.config.header_read_timeout).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection ended before a request");
                return;
            }
        };
        if is_h2 {
            let conn = hyper::server::conn::http2::Builder::new(seastar_net::hyper::ShardExecutor)
                .timer(ShardTimer)
                .max_header_list_size(shared.config.max_header_size as u32)
                .serve_connection(io, service(shared));
            return drive(conn, peer, shared, |c| c.graceful_shutdown(), |_| Ok(())).await;
        }
        return serve_http1(io, peer, shared).await;
    }
    serve_http1(stream, peer, shared).await
}

fn service(shared: &Rc<Shared>) -> conn::ConnService {
    conn::ConnService {
        shared: shared.clone(),
        served: Cell::new(0),
    }
}

async fn serve_http1<I>(io: I, peer: SocketAddr, shared: &Rc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let c = &shared.config;
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(ShardTimer)
        .header_read_timeout(c.header_read_timeout)
        .keep_alive(c.keep_alive)
        .max_buf_size(c.max_header_size)
        .max_headers(c.max_headers)
        // Coalescing is done by `coalesce`, which also survives closes.
        .pipeline_flush(false);
    let (io, pending) = coalesce::wrap(io, c.pipeline_flush);
    let conn = b.serve_connection(io, service(shared));
    // Every poll of the connection ends by sending what it wrote.
    drive(
        conn,
        peer,
        shared,
        |c| c.graceful_shutdown(),
        |cx| pending.push(cx),
    )
    .await;
    if let Err(e) = pending.finish().await {
        tracing::debug!(%peer, error = %e, "sending the last responses");
    }
}

/// Runs a hyper connection: on stop asks it to finish gracefully, on kill
/// drops it; `after_poll` runs after every poll of it (the HTTP/1 write
/// coalescing).
async fn drive<C, E>(
    conn: C,
    peer: SocketAddr,
    shared: &Rc<Shared>,
    graceful: fn(Pin<&mut C>),
    mut after_poll: impl FnMut(&mut Context<'_>) -> std::io::Result<()>,
) where
    C: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut stop = std::pin::pin!(shared.stop.aborted());
    let mut kill = std::pin::pin!(shared.kill.aborted());
    let mut stopping = false;
    let result = std::future::poll_fn(|cx| {
        if !stopping && stop.as_mut().poll(cx).is_ready() {
            stopping = true;
            graceful(conn.as_mut());
        }
        if stopping && kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        let r = conn.as_mut().poll(cx);
        if let Err(e) = after_poll(cx) {
            return Poll::Ready(Some(Err(e.to_string())));
        }
        r.map(|r| Some(r.map_err(|e| e.to_string())))
    })
    .await;
    if let Some(Err(e)) = result {
        shared.stats.errors.set(shared.stats.errors.get() + 1);
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
