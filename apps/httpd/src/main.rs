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
//! Prints `httpd: listening on http://ADDR/ ...` once every shard listens; on
//! SIGINT/SIGTERM it stops accepting, finishes in-flight requests, prints
//! each shard's counts and `httpd: stopped cleanly`, and exits 0.

mod demo;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use seastar_core::runtime::RuntimeArgs;
use seastar_core::shard_count;
use seastar_http::prometheus::Endpoint;
use seastar_http::routing::{get, post};
use seastar_http::{Body, Request, Router, ServeError, Server, StaticFiles};
use seastar_net::{ListenOptions, collectd};

#[derive(Parser, Debug)]
#[command(about = "HTTP server on every shard: hello route, streaming echo, static files")]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 10000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// Directory to serve; without it, a built-in demo site.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_body_size: u64,
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
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// The benchmark route's body (the same bytes as the peers' in `cargo xtask bench http`).
const HELLO: &str = "Hello, world!\n";

fn router(root: Option<PathBuf>) -> Router {
    let r = Router::new()
        .route("/", get(|_r: Request| async { HELLO }))
        .route(
            "/echo",
            post(|r: Request| async move { Body::new(r.into_body()) }),
        );
    match root {
        Some(root) => r.fallback(get(StaticFiles::new(root))),
        None => demo::routes(r),
    }
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
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
    let prometheus = args
        .prometheus_port
        .map(|p| SocketAddr::new(args.address, p));
    let runtime = match args.runtime.builder().and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => fail(&e),
    };
    let addr = SocketAddr::new(args.address, args.port);
    let root = args.root.clone();
    let max_body = args.max_body_size;
    let site = match &args.root {
        Some(r) => format!("serving {}", r.display()),
        None => "built-in demo site".to_owned(),
    };
    let result = runtime.run(async move {
        // The exporters first: the endpoint has taken its listeners when
        // `start` returns, so the main server's shards can follow.
        let endpoint = match prometheus {
            Some(a) => {
                let ep = Endpoint::start(a).await?;
                println!("httpd: prometheus metrics at http://{}/metrics", ep.addr());
                Some(ep)
            }
            None => None,
        };
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
        let make = move || Server::new(router(root.clone())).max_body_size(max_body);
        let served = seastar_http::serve_sharded(addr, ListenOptions::default(), make, |local| {
            println!(
                "httpd: listening on http://{local}/ ({} shards, backend {}, {site})",
                shard_count(),
                seastar_core::runtime::backend()
            );
        })
        .await;
        if let Some(p) = pusher {
            p.stop();
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
        Ok(stats) => {
            for (shard, s) in stats.iter().enumerate() {
                println!(
                    "shard {shard}: {} connections, {} requests, {} connection errors",
                    s.connections, s.requests, s.connection_errors
                );
            }
            println!("httpd: stopped cleanly");
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("httpd: {e}");
    std::process::exit(1);
}
