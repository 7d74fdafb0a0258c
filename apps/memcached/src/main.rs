//! `memcached`: a drop-in memcached server, one shard per core.
//!
//! ```text
//! cargo xtask run memcached -- -p 11211 -U 11211 -m 1024 -t 2
//! ```
//!
//! Prints one line when listening (`memcached: listening on ADDR (tcp)...`),
//! serves until SIGINT/SIGTERM, then stops accepting, lets every connection
//! finish the read it is serving, prints `memcached: stopped cleanly` and
//! exits 0. Flags: see [`memcached::cli`].

use clap::Parser;
use memcached::cli::Args;
use memcached::server::{self, Bound, Report, ServeError};
use seastar_http::admin::{Admin, AdminArgs};

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Plain text (no colour codes) into a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| args.log_filter().into()),
        )
        .init();
    if let Err(e) = args.admin.token() {
        fail(&e);
    }
    let admin_args = args.admin.clone();
    let (config, runtime_args) = match args.resolve() {
        Ok(v) => v,
        Err(e) => fail(&e),
    };
    let runtime = match runtime_args.builder().and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => fail(&e),
    };
    let native = config.native.is_some();
    let admin = Admin::new("memcached", env!("CARGO_PKG_VERSION"))
        .runtime_args(&runtime_args)
        .option("tcp", config.tcp)
        .option(
            "udp",
            config.udp.map_or("off".to_owned(), |a| a.to_string()),
        )
        .option("memory-limit-bytes", config.memory_limit)
        .option("conn-limit", config.max_connections)
        .option("max-item-size", config.item_size_max)
        .requests_metrics(&["memcached_cmd_get_total", "memcached_cmd_set_total"])
        .shard_view(admin_view)
        .shutdown_timeout(config.shutdown_timeout);
    let result = runtime.run(with_admin(admin_args, admin, server::serve(config, move |b: &Bound| {
        let udp = b.udp.map_or_else(|| "off".to_owned(), |a| a.to_string());
        if native {
            println!(
                "memcached: listening on {udp} (udp, native stack), tcp off, {} shards, backend {}",
                b.shards,
                seastar_core::runtime::backend_summary()
            );
            return;
        }
        println!(
            "memcached: listening on {} (tcp), udp {udp}, {} shards, backend {}",
            b.tcp,
            b.shards,
            seastar_core::runtime::backend_summary()
        );
        if let Some(p) = b.prometheus {
            println!("memcached: prometheus metrics at http://{p}/metrics");
        }
    })));
    match result {
        Ok(report) => {
            for (shard, s) in report.shards.iter().enumerate() {
                println!(
                    "shard {shard}: accepted {} connections, rejected {}",
                    s.accepted, s.rejected
                );
            }
            println!("memcached: stopped cleanly");
        }
        Err(e) => fail(&e),
    }
}

/// Runs `serve` with the admin API and dashboard beside it when
/// `--admin-port` asks for them; they stop with it.
async fn with_admin(
    args: AdminArgs,
    admin: Admin,
    serve: impl std::future::Future<Output = Result<Report, ServeError>>,
) -> Result<Report, ServeError> {
    let server = match args.start(admin).await {
        Ok(s) => s,
        Err(e) => {
            return Err(ServeError::Bind {
                proto: "admin",
                addr: args.addr().expect("started only with a port"),
                source: std::io::Error::other(e.to_string()),
            });
        }
    };
    if let Some(s) = &server {
        println!("memcached: admin API and dashboard at http://{}/", s.addr());
    }
    let served = serve.await;
    if let Some(s) = server {
        seastar_core::request_stop();
        if let Err(e) = s.stopped().await {
            tracing::warn!(error = %e, "admin server");
        }
    }
    served
}

/// Each shard's figures for the admin API: items, hit ratio (of all
/// retrievals so far) and evictions, from the shard's `memcached_*`
/// metrics.
fn admin_view() -> Vec<(String, f64)> {
    let snap = seastar_core::metrics::local_snapshot();
    let value = |name: &str| {
        snap.samples
            .iter()
            .find(|s| s.name == name)
            .map_or(0.0, |s| match s.value {
                seastar_core::metrics::Value::Counter(n) => n as f64,
                seastar_core::metrics::Value::Gauge(g) => g,
                _ => 0.0,
            })
    };
    let (hits, misses) = (
        value("memcached_get_hits_total"),
        value("memcached_get_misses_total"),
    );
    let ratio = if hits + misses > 0.0 {
        hits / (hits + misses)
    } else {
        0.0
    };
    vec![
        ("items".to_owned(), value("memcached_curr_items")),
        ("hit_ratio".to_owned(), ratio),
        ("evictions".to_owned(), value("memcached_evictions_total")),
        ("bytes".to_owned(), value("memcached_bytes")),
    ]
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("memcached: {e}");
    std::process::exit(1);
}
