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
use memcached::server::{self, Bound};

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| args.log_filter().into()),
        )
        .init();
    let (config, runtime_args) = match args.resolve() {
        Ok(v) => v,
        Err(e) => fail(&e),
    };
    let runtime = match runtime_args.builder().and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => fail(&e),
    };
    let result = runtime.run(server::serve(config, |b: &Bound| {
        let udp = b.udp.map_or_else(|| "off".to_owned(), |a| a.to_string());
        println!(
            "memcached: listening on {} (tcp), udp {udp}, {} shards, backend {}",
            b.tcp,
            b.shards,
            seastar_core::runtime::backend_summary()
        );
        if let Some(p) = b.prometheus {
            println!("memcached: prometheus metrics at http://{p}/metrics");
        }
    }));
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

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("memcached: {e}");
    std::process::exit(1);
}
