//! The peer of `rpc server --tls-cert` in the `rpc` bench suite's TLS
//! cases: the `echo.Echo` gRPC service of bench/peers `tonic-echo`, served
//! by tonic's transport on a tokio current_thread runtime over
//! tokio-rustls, with the same TLS as seastar-net's (rustls on `ring`, key
//! exchange X25519 then P-256 then P-384, TLS 1.3 only, ALPN `h2`).
//!
//! Connections are accepted and their handshakes done one after another
//! (the suite measures calls on one connection, not handshakes).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use clap::Parser;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

#[allow(clippy::all, missing_debug_implementations, dead_code)]
#[path = "../../../../apps/rpc/src/proto/echo.rs"]
mod echo;

use echo::Payload;
use echo::echo_server::{Echo, EchoServer};

/// gRPC echo server on tonic + tokio current_thread over tokio-rustls.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    listen: bench_peers::Listen,
    /// Certificate chain, PEM (leaf first).
    #[arg(long)]
    cert: PathBuf,
    /// Private key, PEM.
    #[arg(long)]
    key: PathBuf,
}

#[derive(Debug, Default)]
struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// A TLS connection as tonic wants it (no connection info).
struct Tls(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for Tls {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn config(args: &Args) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    let certs = CertificateDer::pem_file_iter(&args.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.key)?;
    // The provider seastar-net uses (see hyper-rustls-hello).
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let acceptor = TlsAcceptor::from(config(&args)?);
    bench_peers::current_thread_runtime()?.block_on(async move {
        let listener = TcpListener::bind(args.listen.addr()).await?;
        let incoming =
            futures::stream::unfold((listener, acceptor), |(listener, acceptor)| async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    // A failed handshake (the harness's readiness probe)
                    // is skipped.
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let item: Result<Tls, std::io::Error> = Ok(Tls(tls));
                        return Some((item, (listener, acceptor)));
                    }
                }
            });
        tonic::transport::Server::builder()
            .add_service(EchoServer::new(EchoService))
            .serve_with_incoming(incoming)
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
