//! A tonic client transport on a shard: hyper's HTTP/2 client connection
//! over a seastar-net [`TcpStream`], reconnecting after a failure.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::LocalBoxFuture;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use seastar_core::spawn_local;
use seastar_core::sync::Semaphore;
use seastar_net::TcpStream;
use seastar_net::hyper::{ShardExecutor, ShardTimer};
use tower_service::Service;

use super::BoxError;

struct Inner {
    addr: SocketAddr,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
    sender: RefCell<Option<SendRequest<tonic::body::Body>>>,
    connecting: Semaphore,
}

/// A gRPC channel to one server for tonic-generated clients, on the
/// current shard. Calls are multiplexed as HTTP/2 streams on one
/// connection; after the connection fails the next call reconnects.
///
/// ```no_run
/// use seastar_rpc::grpc::GrpcChannel;
/// # mod echo_client { pub struct EchoClient<T>(T); impl<T> EchoClient<T> { pub fn with_origin(t: T, _: http::Uri) -> Self { Self(t) } } }
///
/// seastar_core::block_on(async {
///     let channel = GrpcChannel::connect("127.0.0.1:50051".parse().unwrap()).await.unwrap();
///     let origin = channel.origin();
///     let _client = echo_client::EchoClient::with_origin(channel, origin);
/// });
/// ```
#[derive(Clone)]
pub struct GrpcChannel {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for GrpcChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcChannel")
            .field("addr", &self.inner.addr)
            .finish()
    }
}

/// Where a channel connects: the address, and the TLS settings if any.
struct Dest<'a> {
    addr: SocketAddr,
    #[cfg(feature = "tls")]
    tls: Option<&'a crate::tls::ClientTls>,
    #[cfg(not(feature = "tls"))]
    _tls: std::marker::PhantomData<&'a ()>,
}

impl Inner {
    fn dest(&self) -> Dest<'_> {
        Dest {
            addr: self.addr,
            #[cfg(feature = "tls")]
            tls: self.tls.as_ref(),
            #[cfg(not(feature = "tls"))]
            _tls: std::marker::PhantomData,
        }
    }
}

async fn handshake(dest: Dest<'_>) -> Result<SendRequest<tonic::body::Body>, BoxError> {
    let stream = TcpStream::connect(dest.addr).await?;
    let _ = stream.set_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = dest.tls {
        let session = tls.connector.connect(&tls.server_name, stream).await?;
        return http2(session).await;
    }
    http2(stream).await
}

/// HTTP/2 over `io`, its connection driven by a task of its own.
async fn http2<T>(io: T) -> Result<SendRequest<tonic::body::Body>, BoxError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::Builder::new(ShardExecutor)
        .timer(ShardTimer)
        .handshake(super::io::Cooperative(io))
        .await?;
    spawn_local(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "grpc client: connection ended");
        }
    })
    .detach();
    Ok(sender)
}

impl GrpcChannel {
    /// Connects to `addr` (HTTP/2 with prior knowledge, no TLS).
    pub async fn connect(addr: SocketAddr) -> Result<GrpcChannel, BoxError> {
        let inner = Inner {
            addr,
            #[cfg(feature = "tls")]
            tls: None,
            sender: RefCell::new(None),
            connecting: Semaphore::new(1),
        };
        GrpcChannel::start(inner).await
    }

    /// Connects to `addr` over TLS (feature `tls`): sessions from
    /// `connector` (its configuration with ALPN `h2`), with a server whose
    /// certificate names `server_name` (sent as SNI). Reconnections
    /// handshake again.
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        addr: SocketAddr,
        connector: &seastar_net::tls::TlsConnector,
        server_name: &str,
    ) -> Result<GrpcChannel, BoxError> {
        let connector = crate::tls::grpc_connector(connector);
        let inner = Inner {
            addr,
            tls: Some(crate::tls::ClientTls::new(connector, server_name)),
            sender: RefCell::new(None),
            connecting: Semaphore::new(1),
        };
        GrpcChannel::start(inner).await
    }

    async fn start(inner: Inner) -> Result<GrpcChannel, BoxError> {
        let sender = handshake(inner.dest()).await?;
        *inner.sender.borrow_mut() = Some(sender);
        Ok(GrpcChannel {
            inner: Rc::new(inner),
        })
    }

    /// `http://addr` (`https://server-name:port` over TLS), for the
    /// generated clients' `with_origin`.
    pub fn origin(&self) -> Uri {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.inner.tls {
            let host = match tls.server_name.parse::<std::net::Ipv6Addr>() {
                Ok(_) => format!("[{}]", tls.server_name),
                Err(_) => tls.server_name.clone(),
            };
            return Uri::try_from(format!("https://{host}:{}", self.inner.addr.port()))
                .unwrap_or_else(|_| Uri::from_static("https://localhost"));
        }
        Uri::try_from(format!("http://{}", self.inner.addr))
            .expect("a socket address is a valid authority")
    }

    async fn sender(&self) -> Result<SendRequest<tonic::body::Body>, BoxError> {
        let live = || {
            let s = self.inner.sender.borrow();
            s.as_ref().filter(|s| !s.is_closed()).cloned()
        };
        if let Some(s) = live() {
            return Ok(s);
        }
        let _permit = self.inner.connecting.acquire(1).await?;
        if let Some(s) = live() {
            return Ok(s);
        }
        let s = handshake(self.inner.dest()).await?;
        *self.inner.sender.borrow_mut() = Some(s.clone());
        Ok(s)
    }
}

impl Service<Request<tonic::body::Body>> for GrpcChannel {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = LocalBoxFuture<'static, Result<Response<Incoming>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is awaited per call, on the (re)connected sender.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        async move {
            let mut sender = this.sender().await?;
            sender.ready().await?;
            Ok(sender.send_request(req).await?)
        }
        .boxed_local()
    }
}
