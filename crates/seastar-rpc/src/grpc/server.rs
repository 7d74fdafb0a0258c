//! tonic services over hyper's HTTP/2 server connection, on a shard.

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

use super::{BoxError, GrpcTimeout};

/// tower's `Service` seen as hyper's (`call(&self)`): each request goes to
/// a clone, as tonic's own server does.
#[derive(Debug, Clone)]
struct Hyperized<S>(S);

impl<S> hyper::service::Service<Request<Incoming>> for Hyperized<S>
where
    S: Service<Request<Incoming>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: Request<Incoming>) -> S::Future {
        // tonic's routes and our timeout wrapper are always ready.
        self.0.clone().call(req)
    }
}

/// Serves one HTTP/2 connection with `service` (e.g. tonic
/// [`Routes`]) until the client closes it or `stop` resolves, then
/// finishes the streams in flight (graceful shutdown: GOAWAY), giving up
/// and closing the connection after `grace` (a client that does not
/// answer h2's shutdown ping would otherwise hold it open).
pub async fn serve_connection<S, B>(
    stream: TcpStream,
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
{
    let svc = Hyperized(GrpcTimeout::new(service));
    let conn = hyper::server::conn::http2::Builder::new(ShardExecutor)
        .timer(ShardTimer)
        .serve_connection(super::io::Cooperative(stream), svc);
    let mut conn = pin!(conn);
    match select(conn.as_mut(), pin!(stop)).await {
        Either::Left((r, _)) => r,
        Either::Right(((), _)) => {
            conn.as_mut().graceful_shutdown();
            match select(conn, pin!(timer::sleep(grace))).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => {
                    tracing::debug!("grpc: grace period over; closing the connection");
                    Ok(())
                }
            }
        }
    }
}

/// How long a stopping server waits for a connection's streams by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

struct Inner {
    routes: Routes,
    grace: Duration,
    stop: AbortSource,
    gate: Gate,
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
        GrpcServer {
            inner: Rc::new(Inner {
                routes,
                grace,
                stop: AbortSource::new(),
                gate: Gate::new(),
            }),
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
                Either::Left((Ok((conn, _)), _)) => {
                    let _ = conn.set_nodelay(true);
                    self.spawn_connection(conn);
                }
                Either::Left((Err(e), _)) => {
                    tracing::error!(error = %e, "grpc: accept failed; no longer accepting");
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
        spawn_local(async move {
            let _guard = guard;
            let stop = async {
                let _ = inner.stop.aborted().await;
            };
            if let Err(e) = serve_connection(conn, inner.routes.clone(), stop, inner.grace).await {
                tracing::debug!(error = %e, "grpc: connection ended with an error");
            }
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
