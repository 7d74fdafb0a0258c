//! The peer of `httpd --tls-port` in the `http` bench suite's https case:
//! hyper 1.x on a tokio current_thread runtime over tokio-rustls, the same
//! hello handler (`Hello, world!\n`, `text/plain; charset=utf-8`) and
//! hyper settings as `hyper-hello`, and the same TLS as seastar-net's
//! (rustls on `ring`, key exchange X25519 then P-256 then P-384, session
//! tickets on, ALPN `http/1.1`). `--tls13-only` offers TLS 1.3 alone, as
//! the suite runs every server.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// hyper hello server over TLS on tokio's current_thread runtime.
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
    /// Offer TLS 1.3 only.
    #[arg(long)]
    tls13_only: bool,
}

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"Hello, world!\n")));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

fn config(args: &Args) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    let certs = CertificateDer::pem_file_iter(&args.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.key)?;
    // Deprecated for lacking post-quantum key exchange: seastar-net's
    // choice too (ring builds with a C compiler alone), so both sides match.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    let versions: &[&rustls::SupportedProtocolVersion] = if args.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}

fn main() {
    let args = Args::parse();
    let acceptor = match config(&args) {
        Ok(c) => TlsAcceptor::from(c),
        Err(e) => {
            eprintln!("hyper-rustls-hello: {e}");
            std::process::exit(1);
        }
    };
    let served = bench_peers::serve_local(args.listen, move |stream| {
        let acceptor = acceptor.clone();
        async move {
            let _ = stream.set_nodelay(true);
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .keep_alive(true)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(tls), service_fn(hello))
                .await;
        }
    });
    if let Err(e) = served {
        eprintln!("hyper-rustls-hello: {e}");
        std::process::exit(1);
    }
}
