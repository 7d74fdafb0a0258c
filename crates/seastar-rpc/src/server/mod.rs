//! [`RpcServer`]: verbs, handlers, and the connection loop that serves them.
//!
//! One server per shard (start it with [`Sharded`](seastar_core::smp::Sharded)
//! and [`RpcServer::listen`] on each shard, which binds the shard's own
//! `SO_REUSEPORT` listener). Each connection: the negotiation, a reader
//! that dispatches frames, one task per call, and a writer that batches
//! responses. What a client can make the server hold is bounded by
//! [`ServerOptions`]: calls and request bytes in flight, unsent reply bytes
//! (the reader pauses at each bound, so TCP holds the client back),
//! negotiation and idle time, and connections open; a stop waits for the
//! calls in flight at most [`ServerOptions::shutdown_timeout`]. The rules a
//! connection enforces are in `conn.rs`'s module docs.
//!
//! # Metrics
//!
//! Through the `metrics` facade, with handles made when the server is
//! created on its shard: `seastar_rpc_calls_total` with label `outcome`
//! (`ok`: answered `Ok`; `error`: any other answer, the handler's `Err`,
//! a bad argument, a panic, a timeout; `cancelled`: no answer, the client
//! cancelled or its connection ended), and the histogram
//! `seastar_rpc_call_duration_seconds` of answered calls, from the request
//! read to the answer queued.

mod conn;
mod options;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{Either, LocalBoxFuture, select};
use seastar_core::smp::StopHook;
use seastar_core::sync::{AbortSource, Aborted};
use seastar_core::{spawn_local, timer};
use seastar_net::{Connections, ListenOptions, Registration, TcpListener, TcpStream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::conn::{Core, Transport};
use crate::error::RpcError;
use crate::frame::Status;
use crate::stream::{Sink, Source, StreamState};
pub use options::{DEFAULT_OUTPUT_BUDGET, ServerOptions};

/// What a handler produced, ready for the wire.
struct Reply {
    status: Status,
    payload: Vec<u8>,
}

impl Reply {
    fn error(status: Status, msg: impl Display) -> Reply {
        Reply {
            status,
            payload: msg.to_string().into_bytes(),
        }
    }
}

type UnaryFn = dyn Fn(Bytes) -> LocalBoxFuture<'static, Reply>;
type StreamFn = dyn Fn(Bytes, Rc<Core>, Rc<StreamState>) -> LocalBoxFuture<'static, Reply>;

#[derive(Clone)]
enum Handler {
    Unary(Rc<UnaryFn>),
    Stream(Rc<StreamFn>),
}

/// Counters of what the server refused, cut short or cancelled (this
/// shard), from [`RpcServer::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerStats {
    /// Connections closed at accept: [`ServerOptions::max_connections`] were open.
    pub refused: u64,
    /// Connections closed for not negotiating within [`ServerOptions::negotiation_timeout`].
    pub first_bytes_timeouts: u64,
    /// Connections closed after [`ServerOptions::idle_timeout`] with nothing to do.
    pub idle_closed: u64,
    /// Connections closed because their replies stayed over
    /// [`ServerOptions::output_budget`] for the idle timeout.
    pub stalled_closed: u64,
    /// Calls cancelled because their connection ended (client end of
    /// stream, protocol error, idle or stalled connection).
    pub cancelled_calls: u64,
    /// Requests refused for reusing the id of a call in flight.
    pub duplicate_ids: u64,
    /// Connections dropped at the stop deadline with work left.
    pub dropped_at_stop: u64,
    /// TLS connections whose handshake failed (garbage, a bad or missing
    /// client certificate, a closed connection); always 0 without TLS.
    #[serde(default)]
    pub tls_handshake_errors: u64,
}

#[derive(Default)]
struct Counters {
    refused: Cell<u64>,
    first_bytes_timeouts: Cell<u64>,
    idle_closed: Cell<u64>,
    stalled_closed: Cell<u64>,
    cancelled_calls: Cell<u64>,
    duplicate_ids: Cell<u64>,
    dropped_at_stop: Cell<u64>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    tls_handshake_errors: Cell<u64>,
}

/// The server's metric handles (see the module docs).
struct CallMetrics {
    ok: metrics::Counter,
    error: metrics::Counter,
    cancelled: metrics::Counter,
    duration: metrics::Histogram,
}

/// The calls counter.
const CALLS_TOTAL: &str = "seastar_rpc_calls_total";
/// The answered calls' durations.
const CALL_DURATION: &str = "seastar_rpc_call_duration_seconds";

impl CallMetrics {
    fn new() -> CallMetrics {
        metrics::describe_counter!(CALLS_TOTAL, "native RPC calls ended, by outcome");
        metrics::describe_histogram!(
            CALL_DURATION,
            metrics::Unit::Seconds,
            "native RPC calls answered: from the request read to the answer queued"
        );
        CallMetrics {
            ok: metrics::counter!(CALLS_TOTAL, "outcome" => "ok"),
            error: metrics::counter!(CALLS_TOTAL, "outcome" => "error"),
            cancelled: metrics::counter!(CALLS_TOTAL, "outcome" => "cancelled"),
            duration: metrics::histogram!(CALL_DURATION),
        }
    }

    /// Counts a call that ended with `reply` (`None`: cancelled) after
    /// `took`.
    fn ended(&self, reply: Option<&Reply>, took: Duration) {
        match reply {
            Some(r) => {
                if r.status == Status::Ok {
                    self.ok.increment(1);
                } else {
                    self.error.increment(1);
                }
                self.duration.record(took.as_secs_f64());
            }
            None => self.cancelled.increment(1),
        }
    }
}

struct Inner {
    opts: ServerOptions,
    calls: CallMetrics,
    handlers: RefCell<HashMap<u32, Handler>>,
    conns: Rc<Connections>,
    /// Stop accepting; connections let their calls finish.
    stop: AbortSource,
    /// The stop's deadline passed: connections end at once.
    kill: AbortSource,
    accepting: Cell<usize>,
    stats: Counters,
}

/// A native RPC server on one shard.
///
/// ```
/// use seastar_rpc::{RpcClient, RpcServer, ServerOptions};
///
/// seastar_core::block_on(async {
///     let server = RpcServer::new(ServerOptions::default());
///     server.register(1, |name: String| async move { Ok::<_, String>(format!("Hello {name}!")) });
///     let addr = server.listen("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
///     let client = RpcClient::connect(addr).await.unwrap();
///     let reply: String = client.call::<_, _, String>(1, &"rpc".to_string()).await.unwrap();
///     assert_eq!(reply, "Hello rpc!");
///     drop(client);
///     server.stop().await;
/// });
/// ```
#[derive(Clone)]
pub struct RpcServer {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for RpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcServer")
            .field("verbs", &self.inner.handlers.borrow().len())
            .field("connections", &self.inner.conns.len())
            .finish()
    }
}

impl RpcServer {
    /// A server with no verbs yet.
    pub fn new(opts: ServerOptions) -> RpcServer {
        RpcServer {
            inner: Rc::new(Inner {
                opts,
                calls: CallMetrics::new(),
                handlers: RefCell::default(),
                conns: Rc::default(),
                stop: AbortSource::new(),
                kill: AbortSource::new(),
                accepting: Cell::new(0),
                stats: Counters::default(),
            }),
        }
    }

    /// Serves `verb` with `handler`: the argument is deserialized into
    /// `Req`, `Ok` is serialized back, and `Err(e)` reaches the client as
    /// [`CallError::Handler(e)`](crate::CallError::Handler). A call that is
    /// cancelled or runs past its timeout has its future dropped.
    /// Registering a verb again replaces its handler.
    pub fn register<Req, Resp, E, F, Fut>(&self, verb: u32, handler: F)
    where
        Req: DeserializeOwned + 'static,
        Resp: Serialize + 'static,
        E: Serialize + 'static,
        F: Fn(Req) -> Fut + 'static,
        Fut: Future<Output = Result<Resp, E>> + 'static,
    {
        let f = move |payload: Bytes| -> LocalBoxFuture<'static, Reply> {
            let req: Req = match codec::decode(&payload) {
                Ok(r) => r,
                Err(e) => {
                    return std::future::ready(Reply::error(Status::BadRequest, e)).boxed_local();
                }
            };
            let fut = handler(req);
            async move {
                let (status, body) = match fut.await {
                    Ok(resp) => (Status::Ok, codec::encode(&resp)),
                    Err(e) => (Status::Handler, codec::encode(&e)),
                };
                match body {
                    Ok(payload) => Reply { status, payload },
                    Err(e) => Reply::error(Status::Internal, e),
                }
            }
            .boxed_local()
        };
        self.inner
            .handlers
            .borrow_mut()
            .insert(verb, Handler::Unary(Rc::new(f)));
    }

    /// Serves streaming `verb`: the handler gets the opening argument, a
    /// [`Source`] of the client's items and a [`Sink`] to the client. When
    /// it returns, the stream ends with its status (`Err(e)` reaches the
    /// client's source as [`RpcError::Server`] with `e`'s text).
    pub fn register_stream<Req, In, Out, E, F, Fut>(&self, verb: u32, handler: F)
    where
        Req: DeserializeOwned + 'static,
        In: DeserializeOwned + 'static,
        Out: Serialize + 'static,
        E: Display + 'static,
        F: Fn(Req, Source<In>, Sink<Out>) -> Fut + 'static,
        Fut: Future<Output = Result<(), E>> + 'static,
    {
        let f = move |payload: Bytes,
                      core: Rc<Core>,
                      state: Rc<StreamState>|
              -> LocalBoxFuture<'static, Reply> {
            let req: Req = match codec::decode(&payload) {
                Ok(r) => r,
                Err(e) => {
                    return std::future::ready(Reply::error(Status::BadRequest, e)).boxed_local();
                }
            };
            let source = Source::open(core.clone(), state.clone());
            let sink = Sink::new(core, state);
            let fut = handler(req, source, sink);
            async move {
                match fut.await {
                    Ok(()) => Reply {
                        status: Status::Ok,
                        payload: Vec::new(),
                    },
                    Err(e) => Reply::error(Status::Handler, e),
                }
            }
            .boxed_local()
        };
        self.inner
            .handlers
            .borrow_mut()
            .insert(verb, Handler::Stream(Rc::new(f)));
    }

    /// Binds `addr` on this shard and serves connections in the
    /// background until [`stop`](Self::stop); returns the bound address.
    pub async fn listen(
        &self,
        addr: SocketAddr,
        opts: ListenOptions,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr, opts).await?;
        let local = listener.local_addr()?;
        let server = self.clone();
        spawn_local(async move { server.serve(listener).await }).detach();
        Ok(local)
    }

    /// Accepts and serves connections from `listener` until
    /// [`stop`](Self::stop) or an accept error.
    pub async fn serve(&self, listener: TcpListener) {
        let inner = &self.inner;
        if inner.stop.abort_requested() {
            return;
        }
        inner.accepting.set(inner.accepting.get() + 1);
        loop {
            let accept = std::pin::pin!(listener.accept());
            match select(accept, inner.stop.aborted()).await {
                Either::Left((Ok((conn, peer)), _)) => {
                    if inner.conns.len() >= inner.opts.max_connections {
                        let refused = &inner.stats.refused;
                        refused.set(refused.get() + 1);
                        tracing::debug!(%peer, limit = inner.opts.max_connections,
                            "rpc: connection refused: too many open");
                        drop(conn);
                        continue;
                    }
                    let _ = conn.set_nodelay(true);
                    #[cfg(feature = "tls")]
                    if let Some(acceptor) = &inner.opts.tls {
                        self.spawn_tls_connection(conn, acceptor.clone());
                        continue;
                    }
                    self.spawn_connection(conn);
                }
                Either::Left((Err(e), _)) => {
                    if TcpListener::is_closed_error(&e) {
                        // Distributing: shard 0's listener closed (stopping).
                        tracing::debug!("rpc: listener closed");
                    } else {
                        tracing::error!(error = %e, "rpc: accept failed; no longer accepting");
                    }
                    break;
                }
                Either::Right(_) => break,
            }
        }
        inner.accepting.set(inner.accepting.get() - 1);
    }

    /// Serves one accepted connection in the background (tracked for
    /// [`stop`](Self::stop); not counted against
    /// [`max_connections`](ServerOptions::max_connections), which
    /// [`serve`](Self::serve) enforces).
    pub fn spawn_connection(&self, conn: TcpStream) {
        let conn = Rc::new(conn);
        let slot = Connections::register(&self.inner.conns, conn.clone());
        let inner = self.inner.clone();
        let io = Transport::Tcp(conn);
        self.spawn_serving(slot, move || conn::serve_connection(inner, io));
    }

    /// Serves one accepted connection over TLS in the background: the
    /// handshake with `acceptor` (within the negotiation timeout), then
    /// the protocol as [`spawn_connection`](Self::spawn_connection) does.
    #[cfg(feature = "tls")]
    pub fn spawn_tls_connection(&self, conn: TcpStream, acceptor: seastar_net::tls::TlsAcceptor) {
        let shadow = match crate::tls::shadow(&conn) {
            Ok(s) => Rc::new(s),
            Err(e) => {
                tracing::warn!(error = %e, "rpc: cannot track a TLS connection; closed");
                return;
            }
        };
        let slot = Connections::register(&self.inner.conns, shadow);
        let inner = self.inner.clone();
        self.spawn_serving(slot, move || async move {
            let stats = &inner.stats;
            let handshake = timer::timeout(inner.opts.negotiation_timeout, acceptor.accept(conn));
            let session = match Box::pin(handshake).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let n = &stats.tls_handshake_errors;
                    n.set(n.get() + 1);
                    tracing::debug!(error = %e, "rpc: TLS handshake failed");
                    return Ok(());
                }
                Err(_) => {
                    let n = &stats.first_bytes_timeouts;
                    n.set(n.get() + 1);
                    return Err(RpcError::Timeout);
                }
            };
            let io = Transport::Tls(Box::new(crate::conn::tls::SharedTls::new(session)));
            conn::serve_connection(inner, io).await
        });
    }

    /// Runs a connection's future, made by `serve`, as a task holding its
    /// slot, until it ends or the stop deadline drops it.
    ///
    /// The task's future is a plain struct around the connection's future
    /// (see [`Serving`]): an `async` wrapper would keep its own copies of
    /// what it captured beside the pinned future, and an idle
    /// connection's cost is its task.
    fn spawn_serving<F: Future<Output = Result<(), RpcError>> + 'static>(
        &self,
        slot: Registration,
        serve: impl FnOnce() -> F + 'static,
    ) {
        let inner = self.inner.clone();
        spawn_local(Serving {
            serve: serve(),
            kill: inner.kill.aborted(),
            inner,
            _slot: slot,
        })
        .detach();
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.inner.conns.len()
    }

    /// What was refused, cut short or cancelled so far.
    pub fn stats(&self) -> ServerStats {
        let c = &self.inner.stats;
        ServerStats {
            refused: c.refused.get(),
            first_bytes_timeouts: c.first_bytes_timeouts.get(),
            idle_closed: c.idle_closed.get(),
            stalled_closed: c.stalled_closed.get(),
            cancelled_calls: c.cancelled_calls.get(),
            duplicate_ids: c.duplicate_ids.get(),
            dropped_at_stop: c.dropped_at_stop.get(),
            tls_handshake_errors: c.tls_handshake_errors.get(),
        }
    }

    /// Stops within [`ServerOptions::shutdown_timeout`]: see
    /// [`stop_within`](Self::stop_within).
    pub async fn stop(&self) {
        self.stop_within(self.inner.opts.shutdown_timeout).await;
    }

    /// Stops accepting, lets every connection finish its calls in flight
    /// (each sees end of stream after the frames already sent), and waits
    /// for them at most `timeout`; then drops the connections left (their
    /// calls are cancelled, their sockets shut) and returns how many there
    /// were. Resolves once no connection is left.
    pub async fn stop_within(&self, timeout: Duration) -> usize {
        let inner = &self.inner;
        inner.stop.request_abort();
        inner.conns.shutdown_all();
        let idle = pin!(inner.conns.wait_idle());
        if let Either::Left(_) = select(idle, pin!(timer::sleep(timeout))).await {
            return 0;
        }
        let left = inner.conns.len();
        tracing::warn!(
            left,
            "rpc: shutdown timeout; dropping the remaining connections"
        );
        inner.kill.request_abort();
        inner.conns.wait_idle().await;
        left
    }
}

pin_project_lite::pin_project! {
    /// A connection's task: its future, holding its slot in the server's
    /// connections, dropped when the stop's deadline passes (`kill`).
    struct Serving<F> {
        #[pin]
        serve: F,
        kill: Aborted,
        inner: Rc<Inner>,
        _slot: Registration,
    }
}

impl<F: Future<Output = Result<(), RpcError>>> Future for Serving<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        match this.serve.poll(cx) {
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "rpc: connection ended with an error");
                return Poll::Ready(());
            }
            Poll::Ready(Ok(())) => return Poll::Ready(()),
            Poll::Pending => {}
        }
        if Pin::new(this.kill).poll(cx).is_ready() {
            let dropped = &this.inner.stats.dropped_at_stop;
            dropped.set(dropped.get() + 1);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl StopHook for RpcServer {
    async fn stop(self: Rc<Self>) {
        RpcServer::stop(&self).await
    }
}
