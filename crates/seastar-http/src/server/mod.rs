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
//! With feature `tls`, [`Server::tls`] serves HTTPS instead: the handshake
//! runs first in the connection's task, then ALPN picks HTTP/2 or HTTP/1.1
//! (see `tls`); everything below applies to TLS connections too.
//!
//! Limits (every one on the builder, see `options`): a header read timeout
//! against slow clients (the connection is closed), an idle timeout (no
//! byte either way while no handler runs: closed), a body read timeout
//! (no body byte in time: 408), a cap on the header block (hyper answers
//! 431), a body size limit (413: at once when `Content-Length` says so,
//! else when the handler reads past it), an output budget per connection
//! (a client that does not read its responses stops being served, see
//! `coalesce`), an optional cap on requests per connection and on open
//! connections (beyond it a new one is closed at once), and HTTP/2 limits
//! on streams, buffers and windows with keep-alive pings.
//! A malformed request gets 400 from hyper and ends only its own
//! connection; so does a malformed chunked body (400 written by the server
//! when hyper could not answer, see `watch`). A handler that panics
//! gets its request a 500 and its connection closed; a panic anywhere
//! else in a connection task ends that task, and the connection's slot
//! is released by a drop guard either way.
//!
//! Graceful stop: when the `shutdown` future passed to [`Server::serve`]
//! resolves, the listener is dropped (no new connections), idle
//! connections close, and busy ones finish their in-flight request and
//! close; after [`Server::shutdown_timeout`] the stragglers are dropped:
//! their tasks end and their sockets close, whatever the client does, so
//! `serve` returns within the timeout.

mod coalesce;
mod conn;
#[cfg(feature = "http2")]
mod h2;
mod head;
mod http1;
mod options;
mod sharded;
#[cfg(feature = "tls")]
mod tls;
mod watch;

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::future::{Either, select};
use seastar_core::sync::{AbortSource, Aborted, Gate, GateGuard};
use seastar_core::timer::sleep;
use seastar_net::{TcpListener, TcpStream};

use crate::Handler;
use crate::metrics::{Closed, HttpMetrics};

pub(crate) use options::Config;
pub use options::{DEFAULT_BODY_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_OUTPUT_BUFFER};
pub use sharded::{ServeError, serve_sharded};
pub(crate) use watch::ConnWatch;

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
    /// Connections closed at once because [`Server::max_connections`]
    /// were open.
    pub refused: u64,
    /// Handlers that panicked (each answered 500).
    pub handler_panics: u64,
    /// Connections closed by [`Server::idle_timeout`].
    pub idle_closed: u64,
    /// TLS connections whose handshake failed or timed out (each closed;
    /// always 0 without feature `tls`).
    pub tls_handshake_errors: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: Cell<u64>,
    pub(crate) requests: Cell<u64>,
    pub(crate) errors: Cell<u64>,
    pub(crate) dropped: Cell<u64>,
    pub(crate) refused: Cell<u64>,
    pub(crate) panics: Cell<u64>,
    pub(crate) idle_closed: Cell<u64>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) tls_errors: Cell<u64>,
    /// Connections open now.
    pub(crate) open: Cell<usize>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// A connection's place in the server: counted open and holding the
/// stop gate until dropped, which happens however its task ends (done,
/// killed at stop, or unwound by a panic).
struct ConnSlot {
    shared: Rc<Shared>,
    _gate: GateGuard,
}

impl ConnSlot {
    fn new(shared: &Rc<Shared>, gate: GateGuard) -> ConnSlot {
        let open = &shared.stats.open;
        open.set(open.get() + 1);
        ConnSlot {
            shared: shared.clone(),
            _gate: gate,
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let open = &self.shared.stats.open;
        open.set(open.get() - 1);
    }
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) handler: Rc<dyn Handler>,
    pub(crate) metrics: HttpMetrics,
    pub(crate) stats: Counters,
    stop: AbortSource,
    kill: AbortSource,
    /// Set when the server takes TLS connections.
    #[cfg(feature = "tls")]
    tls: Option<seastar_net::tls::TlsAcceptor>,
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

    /// Accepts and serves connections until `shutdown` resolves, then stops
    /// gracefully (see the [module docs](self)); returns what it did.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> ServeStats {
        #[cfg(feature = "tls")]
        let tls = tls::acceptor(&self.config.tls, self.config.http2);
        let shared = Rc::new(Shared {
            #[cfg(feature = "tls")]
            tls,
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
                    bump(&shared.stats.connections);
                    let cap = shared.config.max_connections;
                    if cap.is_some_and(|cap| shared.stats.open.get() >= cap) {
                        bump(&shared.stats.refused);
                        shared.metrics.closed(Closed::Refused, 1);
                        tracing::debug!(%peer, "max connections open: closing a new one");
                        drop(stream);
                        continue;
                    }
                    let Ok(guard) = gate.enter() else { break };
                    let slot = ConnSlot::new(&shared, guard);
                    #[cfg(feature = "tls")]
                    if let Some(acceptor) = &shared.tls {
                        tls::spawn(slot, stream, peer, acceptor.clone());
                        continue;
                    }
                    spawn_connection(slot, stream, peer);
                }
                Either::Left((Err(e), _)) => {
                    if !TcpListener::is_closed_error(&e) {
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
        let limit = std::pin::pin!(sleep(shared.config.shutdown_timeout));
        if let Either::Right(((), closing)) = select(closing, limit).await {
            let left = gate.holders() as u64;
            tracing::warn!(connections = left, "shutdown timeout: dropping connections");
            shared.stats.dropped.set(left);
            shared.metrics.closed(Closed::DroppedAtStop, left);
            shared.kill.request_abort();
            // Every connection task now ends at its next poll (the kill
            // wakes it), so this wait is short.
            closing.await;
        }
        let s = &shared.stats;
        ServeStats {
            connections: s.connections.get(),
            requests: s.requests.get(),
            connection_errors: s.errors.get(),
            dropped_at_stop: s.dropped.get(),
            refused: s.refused.get(),
            handler_panics: s.panics.get(),
            idle_closed: s.idle_closed.get(),
            tls_handshake_errors: s.tls_errors.get(),
        }
    }
}

/// Serves a plain connection in a task of its own: HTTP/1 in the task's
/// own future (it is all an idle connection costs, see `http1`), or, with
/// HTTP/2 on, after reading enough to tell which protocol it speaks.
fn spawn_connection(slot: ConnSlot, stream: TcpStream, peer: SocketAddr) {
    let shared = slot.shared.clone();
    if shared.config.nodelay {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY");
        }
    }
    #[cfg(feature = "http2")]
    if shared.config.http2 {
        let timeout = shared.config.header_read_timeout;
        let serve = async move {
            // A stop ends the wait at once: not a whole request line was
            // read (a client sending a few bytes cannot hold the stop).
            let sniff = std::pin::pin!(h2::sniff(stream, timeout));
            let stop = std::pin::pin!(shared.stop.aborted());
            let (is_h2, io) = match select(sniff, stop).await {
                Either::Left((Ok(v), _)) => v,
                Either::Left((Err(e), _)) => {
                    tracing::debug!(%peer, error = %e, "connection ended before a request");
                    return;
                }
                Either::Right(_) => {
                    tracing::debug!(%peer, "stopping: closed before a request");
                    return;
                }
            };
            if is_h2 {
                // Boxed: hyper's HTTP/2 connection is large, and every
                // connection's future would be that large otherwise.
                return Box::pin(h2::serve(io, peer, &shared)).await;
            }
            http1::serve(io, peer, shared, true).await
        };
        return ConnTask::spawn(slot, Box::pin(serve));
    }
    ConnTask::spawn(slot, http1::serve(stream, peer, shared, false));
}

/// A connection's task: serves it until it ends or, past the shutdown
/// timeout, the server's kill fires; then its future (its socket,
/// hyper's buffers) is dropped, whatever it was waiting for, and last its
/// slot.
struct ConnTask<F> {
    serve: F,
    kill: Aborted,
    /// `kill` was polled (pending): it holds this task's waker, and the
    /// kill's flag alone says whether polling it again can finish it
    /// (about 50 instructions less per wake, callgrind).
    kill_armed: bool,
    slot: ConnSlot,
}

impl<F: Future<Output = ()> + Unpin + 'static> ConnTask<F> {
    fn spawn(slot: ConnSlot, serve: F) {
        let kill = slot.shared.kill.aborted();
        seastar_core::spawn_local(ConnTask {
            serve,
            kill,
            kill_armed: false,
            slot,
        })
        .detach();
    }
}

impl<F: Future<Output = ()> + Unpin> Future for ConnTask<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Pin::new(&mut this.serve).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if this.kill_armed && !this.slot.shared.kill.abort_requested() {
            return Poll::Pending;
        }
        let polled = Pin::new(&mut this.kill).poll(cx);
        this.kill_armed = polled.is_pending();
        polled
    }
}
