//! tonic services over hyper's HTTP/2 server connection, on a shard.
//!
//! Each connection is bounded by [`GrpcOptions`]: hyper's HTTP/2 limits
//! (streams, windows, send buffer per stream, header list size) whatever
//! the client announces, a first-bytes timeout (a connection that sends no
//! preface is closed), an idle timeout (no request in flight and no byte
//! moved: GOAWAY), and a connection cap per server.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{Either, select};
use http::{Request, Response};
use hyper::body::Incoming;
use seastar_core::smp::StopHook;
use seastar_core::sync::{AbortSource, Gate};
use seastar_core::{spawn_local, timer};
use seastar_net::hyper::{ShardExecutor, ShardTimer};
use seastar_net::{ListenOptions, TcpListener, TcpStream};
use tonic::service::Routes;
use tower_service::Service;

use super::activity::{Activity, Expired, Tracked, watchdog};
use super::io::{Cooperative, Watched};
use super::{BoxError, GrpcOptions, GrpcTimeout};

/// tower's `Service` seen as hyper's (`call(&self)`): each request goes to
/// a clone, as tonic's own server does, and counts as work in flight for
/// the idle timeout until its response future completes.
#[derive(Debug, Clone)]
struct Hyperized<S> {
    svc: S,
    activity: Rc<Activity>,
}

impl<S> hyper::service::Service<Request<Incoming>> for Hyperized<S>
where
    S: Service<Request<Incoming>> + Clone,
    S::Future: Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn call(&self, req: Request<Incoming>) -> Tracked<S::Future> {
        // tonic's routes and our timeout wrapper are always ready.
        Tracked {
            fut: self.svc.clone().call(req),
            _busy: self.activity.busy(),
        }
    }
}

/// How [`serve_connection_with`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed the connection (or hyper ended it).
    Closed,
    /// The stop future resolved; the streams in flight were given the grace period.
    Stopped,
    /// The client sent nothing within the first-bytes timeout; dropped.
    FirstBytesTimeout,
    /// Idle for the idle timeout; shut down (GOAWAY).
    Idle,
}

/// Serves one HTTP/2 connection (a [`TcpStream`], or any hyper I/O such
/// as a TLS session) with `service` (e.g. tonic [`Routes`]) until the
/// client closes it or `stop` resolves, then finishes the streams in
/// flight (graceful shutdown: GOAWAY), giving up and closing the
/// connection after `grace` (a client that does not answer h2's shutdown
/// ping would otherwise hold it open). A connection on which no request
/// ever reached the service closes at once on stop. The other limits are
/// [`GrpcOptions`]'s defaults; see [`serve_connection_with`].
pub async fn serve_connection<S, B, T>(
    stream: T,
    service: S,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> Result<(), hyper::Error>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Default + 'static,
    B::Error: Into<BoxError>,
    T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let opts = GrpcOptions::default().grace(grace);
    serve_connection_with(stream, service, stop, &opts)
        .await
        .map(|_| ())
}

/// Serves one HTTP/2 connection as [`serve_connection`] does, with the
/// limits and timeouts of `opts`; says how it ended.
pub async fn serve_connection_with<S, B, T>(
    stream: T,
    service: S,
    stop: impl Future<Output = ()>,
    opts: &GrpcOptions,
) -> Result<Ended, hyper::Error>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Default + 'static,
    B::Error: Into<BoxError>,
    T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let activity = Activity::new();
    let svc = Hyperized {
        svc: GrpcTimeout::new(service),
        activity: activity.clone(),
    };
    let io = Watched {
        io: Cooperative(stream),
        activity: activity.clone(),
    };
    let conn = hyper::server::conn::http2::Builder::new(ShardExecutor)
        .timer(ShardTimer)
        .max_concurrent_streams(opts.max_concurrent_streams)
        .max_send_buf_size(opts.max_send_buf_size)
        .initial_stream_window_size(opts.initial_stream_window)
        .initial_connection_window_size(opts.initial_connection_window)
        .max_header_list_size(opts.max_header_list_size)
        .serve_connection(io, svc);
    let mut conn = pin!(conn);
    let watch = pin!(watchdog(
        &activity,
        opts.first_bytes_timeout,
        opts.idle_timeout
    ));
    let ended = match select(conn.as_mut(), select(pin!(stop), watch)).await {
        Either::Left((r, _)) => return r.map(|()| Ended::Closed),
        Either::Right((Either::Left(_), _)) => Ended::Stopped,
        Either::Right((Either::Right((Expired::FirstBytes, _)), _)) => {
            return Ok(Ended::FirstBytesTimeout);
        }
        Either::Right((Either::Right((Expired::Idle, _)), _)) => Ended::Idle,
    };
    conn.as_mut().graceful_shutdown();
    if !activity.called() {
        // No request ever reached the service: nothing to finish. One poll
        // queues the GOAWAY; a client that would never answer its ping
        // (or never finish its first request) cannot hold the stop.
        if let Some(r) = futures::FutureExt::now_or_never(conn.as_mut()) {
            return r.map(|()| ended);
        }
        return Ok(ended);
    }
    match select(conn, pin!(timer::sleep(opts.grace))).await {
        Either::Left((r, _)) => r.map(|()| ended),
        Either::Right(_) => {
            tracing::debug!("grpc: grace period over; closing the connection");
            Ok(ended)
        }
    }
}

/// How long a stopping server waits for a connection's streams by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Counters of what a [`GrpcServer`] refused or cut short (this shard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrpcStats {
    /// Connections closed at accept: [`GrpcOptions::max_connections`] were open.
    pub refused: u64,
    /// Connections dropped for sending nothing within the first-bytes timeout.
    pub first_bytes_timeouts: u64,
    /// Connections shut down after the idle timeout.
    pub idle_closed: u64,
    /// TLS connections whose handshake failed (always 0 without TLS).
    pub tls_handshake_errors: u64,
}

struct Inner {
    routes: Routes,
    opts: GrpcOptions,
    stop: AbortSource,
    gate: Gate,
    open: Cell<usize>,
    refused: Cell<u64>,
    first_bytes_timeouts: Cell<u64>,
    idle_closed: Cell<u64>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    tls_handshake_errors: Cell<u64>,
}

/// Counts how a connection ended.
fn record(inner: &Inner, served: Result<Ended, hyper::Error>) {
    match served {
        Ok(Ended::FirstBytesTimeout) => {
            let n = &inner.first_bytes_timeouts;
            n.set(n.get() + 1);
        }
        Ok(Ended::Idle) => inner.idle_closed.set(inner.idle_closed.get() + 1),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "grpc: connection ended with an error"),
    }
}

/// Counts an open connection until dropped (even by a panic).
struct OpenSlot(Rc<Inner>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}

/// gRPC services on one shard: accepts HTTP/2 connections and serves
/// tonic [`Routes`] on them. Start one per shard (it is a [`StopHook`],
/// so [`Sharded`](seastar_core::smp::Sharded) can hold it).
///
/// ```no_run
/// use tonic::service::Routes;
/// use seastar_rpc::grpc::GrpcServer;
///
/// seastar_core::block_on(async {
///     let server = GrpcServer::new(Routes::default()); // add_service(...) your services
///     let addr = server.listen("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
///     println!("gRPC on {addr}");
///     server.stop().await;
/// });
/// ```
#[derive(Clone)]
pub struct GrpcServer {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("connections", &self.inner.gate.holders())
            .finish()
    }
}

impl GrpcServer {
    /// A server for `routes` (grace period on stop: [`DEFAULT_GRACE`]).
    pub fn new(routes: Routes) -> GrpcServer {
        GrpcServer::with_grace(routes, DEFAULT_GRACE)
    }

    /// A server for `routes` that, when stopping, waits at most `grace`
    /// for each connection's streams in flight.
    pub fn with_grace(routes: Routes, grace: Duration) -> GrpcServer {
        GrpcServer::with_options(routes, GrpcOptions::default().grace(grace))
    }

    /// A server for `routes` with the limits of `opts`.
    pub fn with_options(routes: Routes, opts: GrpcOptions) -> GrpcServer {
        GrpcServer {
            inner: Rc::new(Inner {
                routes,
                opts,
                stop: AbortSource::new(),
                gate: Gate::new(),
                open: Cell::new(0),
                refused: Cell::new(0),
                first_bytes_timeouts: Cell::new(0),
                idle_closed: Cell::new(0),
                tls_handshake_errors: Cell::new(0),
            }),
        }
    }

    /// Connections open.
    pub fn connections(&self) -> usize {
        self.inner.open.get()
    }

    /// What was refused or cut short so far.
    pub fn stats(&self) -> GrpcStats {
        GrpcStats {
            refused: self.inner.refused.get(),
            first_bytes_timeouts: self.inner.first_bytes_timeouts.get(),
            idle_closed: self.inner.idle_closed.get(),
            tls_handshake_errors: self.inner.tls_handshake_errors.get(),
        }
    }

    /// Binds `addr` on this shard and serves in the background; returns
    /// the bound address.
    pub async fn listen(
        &self,
        addr: SocketAddr,
        opts: ListenOptions,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr, opts).await?;
        let local = listener.local_addr()?;
        let this = self.clone();
        spawn_local(async move { this.serve(listener).await }).detach();
        Ok(local)
    }

    /// Accepts connections until [`stop`](Self::stop).
    pub async fn serve(&self, listener: TcpListener) {
        let Ok(_guard) = self.inner.gate.enter() else {
            return;
        };
        loop {
            let accept = pin!(listener.accept());
            match select(accept, self.inner.stop.aborted()).await {
                Either::Left((Ok((conn, peer)), _)) => {
                    let inner = &self.inner;
                    if inner.open.get() >= inner.opts.max_connections {
                        inner.refused.set(inner.refused.get() + 1);
                        tracing::debug!(%peer, limit = inner.opts.max_connections,
                            "grpc: connection refused: too many open");
                        drop(conn);
                        continue;
                    }
                    let _ = conn.set_nodelay(true);
                    self.spawn_connection(conn);
                }
                Either::Left((Err(e), _)) => {
                    if TcpListener::is_closed_error(&e) {
                        // Distributing: shard 0's listener closed (stopping).
                        tracing::debug!("grpc: listener closed");
                    } else {
                        tracing::error!(error = %e, "grpc: accept failed; no longer accepting");
                    }
                    break;
                }
                Either::Right(_) => break,
            }
        }
    }

    /// Serves one accepted connection in the background.
    pub fn spawn_connection(&self, conn: TcpStream) {
        let Ok(guard) = self.inner.gate.enter() else {
            return;
        };
        let inner = self.inner.clone();
        inner.open.set(inner.open.get() + 1);
        let slot = OpenSlot(inner.clone());
        spawn_local(async move {
            let _guards = (guard, slot);
            let stop = async {
                let _ = inner.stop.aborted().await;
            };
            let routes = inner.routes.clone();
            #[cfg(feature = "tls")]
            if let Some(acceptor) = &inner.opts.tls {
                let handshake =
                    timer::timeout(inner.opts.first_bytes_timeout, acceptor.accept(conn));
                let session = match select(pin!(handshake), pin!(stop)).await {
                    Either::Left((Ok(Ok(s)), _)) => s,
                    Either::Left((Ok(Err(e)), _)) => {
                        let n = &inner.tls_handshake_errors;
                        n.set(n.get() + 1);
                        tracing::debug!(error = %e, "grpc: TLS handshake failed");
                        return;
                    }
                    Either::Left((Err(_), _)) => {
                        let n = &inner.first_bytes_timeouts;
                        n.set(n.get() + 1);
                        return;
                    }
                    Either::Right(_) => return,
                };
                let stop = async {
                    let _ = inner.stop.aborted().await;
                };
                let served = serve_connection_with(session, routes, stop, &inner.opts).await;
                record(&inner, served);
                return;
            }
            let served = serve_connection_with(conn, routes, stop, &inner.opts).await;
            record(&inner, served);
        })
        .detach();
    }

    /// Stops accepting, lets each connection finish its streams in
    /// flight (GOAWAY), and waits for them.
    pub async fn stop(&self) {
        self.inner.stop.request_abort();
        self.inner.gate.close().await;
    }
}

impl StopHook for GrpcServer {
    async fn stop(self: Rc<Self>) {
        GrpcServer::stop(&self).await
    }
}
