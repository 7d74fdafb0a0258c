//! `httpd`: an HTTP server on every shard.
//!
//! ```text
//! cargo xtask run httpd                      # http://127.0.0.1:10000/
//! cargo xtask run httpd -- --root ./public --port 8080 --smp 2
//! ```
//!
//! Routes: `GET /` answers `Hello, world!` (the benchmark route);
//! `POST /echo` streams the request body back as it arrives; everything
//! else is the directory given with `--root` (static files with ETag,
//! Range, index.html) or, without it, a small built-in demo site (`/index.html`,
//! `/api/shard`, `/api/numbers?n=N` streamed as JSON).
//!
//! Metrics (the runtime's, seastar-net's and `seastar_http_*`, every shard
//! labelled): `--prometheus-port P` serves them at `http://ADDR:P/metrics`
//! (printed as `httpd: prometheus metrics at ...`), `--collectd-address
//! HOST:PORT` pushes them to collectd every `--collectd-interval` seconds.
//!
//! Limits against hostile clients (defaults in `--help`): `--max-connections`
//! per shard (beyond it a new connection is closed at once and counted),
//! `--idle-timeout` (no byte either way while no handler runs: closed),
//! `--body-read-timeout` (no request body byte in time: 408 and close),
//! `--max-output-buffer` (response bytes held for a client that does not
//! read), `--max-body-size`, and `--no-follow-symlinks-outside-root` (403
//! for a path under `--root` that a link leads out of; followed by default,
//! as nginx does). A malformed chunked body gets 400 and the connection
//! closes, as nginx answers.
//!
//! HTTPS: `--tls-cert FILE --tls-key FILE` (PEM: the certificate chain and
//! its key) also serve the same routes over TLS on `--tls-port` (default
//! 10443, 0: any free port), every shard, ALPN choosing HTTP/2 or
//! HTTP/1.1; printed as `httpd: listening on https://ADDR/ ...`. Plain
//! HTTP is served as before (HTTP/1.1 only) on `--port`.
//!
//! Prints `httpd: listening on http://ADDR/ ...` once every shard listens; on
//! SIGINT/SIGTERM it stops accepting, finishes in-flight requests, drops
//! the connections still open after `--shutdown-timeout` seconds, prints
//! each shard's counts and `httpd: stopped cleanly`, and exits 0.

mod demo;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::join;
use http_body::Frame;
use http_body_util::BodyExt;
use std::future::Future;

use clap::Parser;
use seastar_core::runtime::RuntimeArgs;
use seastar_core::shard_count;
use seastar_http::prometheus::Endpoint;
use seastar_http::routing::{get, post};
use seastar_http::{
    Body, IntoResponse, Request, Response, Router, ServeError, Server, StaticFiles,
};
use seastar_net::tls::TlsServerConfig;
use seastar_net::{ListenOptions, ListenerMode, collectd};

#[derive(Parser, Debug)]
#[command(
    about = "HTTP server on every shard: hello route, streaming echo, static files",
    long_about = None
)]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 10000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// How connections reach the shards: `distribute` (shard 0 hands each
    /// to the least-loaded shard) or `per-shard` (one SO_REUSEPORT listener
    /// per shard; the kernel spreads them).
    #[arg(long, value_name = "MODE", default_value_t = ListenerMode::Distribute)]
    listener: ListenerMode,
    /// Directory to serve; without it, a built-in demo site.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_body_size: u64,
    /// Most open connections per shard; one accepted beyond it is closed at once.
    #[arg(long, default_value_t = 16384)]
    max_connections: usize,
    /// Seconds without a byte either way (and no request being handled)
    /// after which a connection is closed; 0 turns it off.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = seconds)]
    idle_timeout: f64,
    /// Seconds without a request body byte after which the request gets
    /// 408 and its connection closes; 0 turns it off.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = seconds)]
    body_read_timeout: f64,
    /// Response bytes a connection holds for a client that does not read
    /// them; past it the connection waits (and reads no more requests).
    #[arg(long, value_name = "BYTES", default_value_t = seastar_http::server::DEFAULT_MAX_OUTPUT_BUFFER)]
    max_output_buffer: usize,
    /// Refuse (403) paths under `--root` that a symbolic link leads out of
    /// it; by default links are followed wherever they point, as nginx does.
    #[arg(long)]
    no_follow_symlinks_outside_root: bool,
    /// Serve every shard's metrics for Prometheus on this port, at
    /// `/metrics` on `--address` (0: any free port). Off by default.
    #[arg(long, value_name = "PORT")]
    prometheus_port: Option<u16>,
    /// Push every shard's metrics to collectd (network plugin) at
    /// `host:port`. Off by default.
    #[arg(long, value_name = "HOST:PORT")]
    collectd_address: Option<String>,
    /// Seconds between collectd pushes.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    collectd_interval: f64,
    /// PEM certificate chain for HTTPS (with `--tls-key`); without it, no HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert` (both or neither: without them,
    /// no HTTPS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Port HTTPS listens on, on `--address` (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 10443)]
    tls_port: u16,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    admin: seastar_http::admin::AdminArgs,
}

/// The benchmark route's body (the same bytes as the peers' in `cargo xtask bench http`).
const HELLO: &str = "Hello, world!\n";

fn router(root: Option<PathBuf>, follow_symlinks_outside: bool) -> Router {
    let r = Router::new()
        .route("/", get(|_r: Request| async { HELLO }))
        .route("/echo", post(echo));
    match root {
        Some(root) => r.fallback(get(
            StaticFiles::new(root).follow_symlinks_outside_root(follow_symlinks_outside)
        )),
        None => demo::routes(r),
    }
}

/// `POST /echo`: the body streamed back as it arrives. The answer waits
/// for the first body frame, so a body that is malformed (400) or does
/// not come (408) from the start is answered as such, not as a 200 cut
/// short.
async fn echo(r: Request) -> Response {
    let mut body = r.into_body();
    match body.frame().await {
        None => Response::new(Body::empty()),
        Some(Err(e)) => e.into_response(),
        Some(Ok(first)) => Response::new(Body::new(FirstThen {
            first: Some(first),
            rest: body,
        })),
    }
}

/// A body that yields a frame already read, then the rest.
struct FirstThen {
    first: Option<Frame<Bytes>>,
    rest: Body,
}

impl http_body::Body for FirstThen {
    type Data = Bytes;
    type Error = seastar_http::BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(f) = self.first.take() {
            return Poll::Ready(Some(Ok(f)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }
}

/// A duration option in seconds: finite, not negative.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds")),
    }
}

/// `Some(seconds)`, or `None` for 0 (off).
fn timeout(s: f64) -> Option<Duration> {
    (s > 0.0).then(|| Duration::from_secs_f64(s))
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Plain text (no colour codes) into a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Some(root) = &args.root {
        if !root.is_dir() {
            fail(&format!("--root {} is not a directory", root.display()));
        }
    }
    let collectd = args.collectd_address.as_deref().map(|a| {
        collectd::Config::resolve(a, "httpd", args.collectd_interval).unwrap_or_else(|e| fail(&e))
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let config = TlsServerConfig::from_pem_files(cert, key)
                .and_then(|c| c.build())
                .unwrap_or_else(|e| fail(&e));
            Some((SocketAddr::new(args.address, args.tls_port), config))
        }
        _ => None,
    };
    let prometheus = args
        .prometheus_port
        .map(|p| SocketAddr::new(args.address, p));
    if let Err(e) = args.admin.token() {
        fail(&e);
    }
    let admin_args = args.admin.clone();
    let admin = seastar_http::admin::Admin::new("httpd", env!("CARGO_PKG_VERSION"))
        .runtime_args(&args.runtime)
        .option("address", args.address)
        .option("port", args.port)
        .option("listener", args.listener)
        .option(
            "root",
            args.root
                .as_ref()
                .map_or("(demo site)".into(), |r| r.display().to_string()),
        )
        .option("max-connections", args.max_connections)
        .option("tls", args.tls_cert.is_some())
        .shutdown_timeout(args.runtime.shutdown_timeout());
    let runtime = match args.runtime.builder().and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => fail(&e),
    };
    let addr = SocketAddr::new(args.address, args.port);
    let listener = args.listener;
    let root = args.root.clone();
    let max_body = args.max_body_size;
    let max_connections = args.max_connections;
    let idle = timeout(args.idle_timeout);
    let body_read = timeout(args.body_read_timeout);
    let max_output = args.max_output_buffer;
    let follow = !args.no_follow_symlinks_outside_root;
    let shutdown_timeout = args.runtime.shutdown_timeout();
    let site = match &args.root {
        Some(r) => format!("serving {}", r.display()),
        None => "built-in demo site".to_owned(),
    };
    let result = runtime.run(async move {
        // The exporters first: the endpoint has taken its listeners when
        // `start` returns, so the main server's shards can follow.
        let endpoint = match prometheus {
            Some(a) => {
                let ep = Endpoint::start_with_shutdown_timeout(a, shutdown_timeout).await?;
                println!("httpd: prometheus metrics at http://{}/metrics", ep.addr());
                Some(ep)
            }
            None => None,
        };
        let admin = match admin_args.start(admin).await {
            Ok(a) => a,
            Err(e) => {
                let addr = admin_args.addr().unwrap_or(addr);
                return Err(ServeError::Bind { addr, source: std::io::Error::other(e.to_string()) });
            }
        };
        if let Some(a) = &admin {
            println!("httpd: admin API and dashboard at http://{}/", a.addr());
        }
        let pusher = match collectd {
            Some(c) => {
                Some(
                    collectd::Client::start(c.clone()).map_err(|source| ServeError::Bind {
                        addr: c.address,
                        source,
                    })?,
                )
            }
            None => None,
        };
        let make = move || {
            Server::new(router(root.clone(), follow))
                .max_body_size(max_body)
                .max_connections(max_connections)
                .idle_timeout(idle)
                .body_read_timeout(body_read)
                .max_output_buffer(max_output)
                .shutdown_timeout(shutdown_timeout)
        };
        let listen_opts = ListenOptions::default().policy(listener.into());
        let make_plain = {
            let make = make.clone();
            // HTTP/1.1 only in clear text, as before HTTPS came.
            move || make().http2(false)
        };
        let plain = seastar_http::serve_sharded(addr, listen_opts.clone(), make_plain, |local| {
            println!(
                "httpd: listening on http://{local}/ ({} shards, backend {}, {site})",
                shard_count(),
                seastar_core::runtime::backend()
            );
        });
        let served = match tls {
            None => plain.await.map(|s| (s, Vec::new())),
            Some((tls_addr, config)) => {
                let make_tls = move || make().tls(config.clone());
                let secure =
                    seastar_http::serve_sharded(tls_addr, listen_opts, make_tls, |local| {
                        println!(
                            "httpd: listening on https://{local}/ (TLS, HTTP/2 and HTTP/1.1, {} shards)",
                            shard_count()
                        );
                    });
                let (plain, secure) = join(stop_on_error(plain), stop_on_error(secure)).await;
                plain.and_then(|p| secure.map(|s| (p, s)))
            }
        };
        if let Some(p) = pusher {
            p.stop();
        }
        if let Some(a) = admin {
            seastar_core::request_stop();
            if let Err(e) = a.stopped().await {
                tracing::warn!(error = %e, "admin server");
            }
        }
        if let Some(ep) = endpoint {
            // It stops on the same stop signal; make sure it has one even
            // if the main server ended by itself (a bind error).
            seastar_core::request_stop();
            if let Err(e) = ep.stopped().await {
                tracing::warn!(error = %e, "prometheus endpoint");
            }
        }
        served
    });
    match result {
        Ok((stats, tls_stats)) => {
            for (shard, s) in tls_stats.iter().enumerate() {
                println!(
                    "tls shard {shard}: {} connections, {} requests, {} failed handshakes, {} connection errors, {} refused, {} closed idle, {} dropped at stop",
                    s.connections,
                    s.requests,
                    s.tls_handshake_errors,
                    s.connection_errors,
                    s.refused,
                    s.idle_closed,
                    s.dropped_at_stop
                );
            }
            for (shard, s) in stats.iter().enumerate() {
                println!(
                    "shard {shard}: {} connections, {} requests, {} connection errors, {} refused, {} closed idle, {} dropped at stop, {} handler panics",
                    s.connections,
                    s.requests,
                    s.connection_errors,
                    s.refused,
                    s.idle_closed,
                    s.dropped_at_stop,
                    s.handler_panics
                );
            }
            println!("httpd: stopped cleanly");
        }
        Err(e) => fail(&e),
    }
}

/// Awaits a server; if it could not serve (a bind error), asks the
/// runtime to stop so the other server ends too.
async fn stop_on_error<T>(f: impl Future<Output = Result<T, ServeError>>) -> Result<T, ServeError> {
    let r = f.await;
    if r.is_err() {
        seastar_core::request_stop();
    }
    r
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("httpd: {e}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    seastar_core::help_test!(super::Args);
}
