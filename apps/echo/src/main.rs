//! `echo`: a TCP echo server on every shard.
//!
//! Each shard serves connections handed over by the accepting shard (the
//! default, `--listener distribute`) or accepted by its own `SO_REUSEPORT`
//! listener (`--listener per-shard`), and
//! echoes every byte back. On SIGINT/SIGTERM it stops accepting, ends each
//! connection after the echo in progress (by shutting its read side), waits
//! for them at most `--shutdown-timeout` seconds (then drops those left,
//! e.g. clients that never read their echo), and exits 0.
//!
//! ```text
//! cargo xtask run echo -- --port 10001 --smp 2
//! ```

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use futures::future::{Either, select};
use seastar_core::runtime::RuntimeArgs;
use seastar_core::{shard_count, shard_id, spawn_local};
use seastar_net::{
    Connections, ListenOptions, ListenerMode, ListenerStats, SendBehind, ShardedListeners,
    TcpListener, TcpStream,
};

#[derive(Parser, Debug)]
#[command(about = "TCP echo server on every shard")]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 10001)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// How connections reach the shards: `distribute` (shard 0 hands each
    /// to the least-loaded shard) or `per-shard` (one SO_REUSEPORT listener
    /// per shard; the kernel spreads them).
    #[arg(long, value_name = "MODE", default_value_t = ListenerMode::Distribute)]
    listener: ListenerMode,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    admin: seastar_http::admin::AdminArgs,
}

/// Echoes until end of stream or an error. Reads are pooled (no buffer is
/// held while the client is silent, so an idle connection costs its task
/// and socket only); each echo is copied out of the shard's buffer, which
/// goes back at once, into one of its own size, sent behind the next read
/// (submitted together; a send that takes every byte wakes nobody, and an
/// idle connection keeps only those bytes until its next read). The next
/// echo waits for it, so one is in flight at most: the back-pressure on a
/// client that does not read.
async fn echo(conn: Rc<TcpStream>) {
    let mut sending: Option<SendBehind<Vec<u8>>> = None;
    loop {
        let (r, sent) = SendBehind::during(&mut sending, conn.read_pooled()).await;
        if let Some((Err(e), _)) = sent {
            tracing::debug!(shard = shard_id(), error = %e, "write failed; closing");
            return;
        }
        let data = match r {
            Ok(b) if b.is_empty() => break,
            Ok(b) => b.to_vec(),
            Err(e) => {
                tracing::debug!(shard = shard_id(), error = %e, "read failed; closing");
                break;
            }
        };
        if let Some(s) = sending.take()
            && let (Err(e), _) = s.finish().await
        {
            tracing::debug!(shard = shard_id(), error = %e, "write failed; closing");
            return;
        }
        sending = Some(conn.send_behind(data));
    }
    if let Some(s) = sending {
        let _ = s.finish().await;
    }
}

/// Accepts and echoes until a stop is requested; returns this shard's stats.
async fn serve(listener: TcpListener, shutdown_timeout: Duration) -> ListenerStats {
    // Named for the admin API while it serves.
    let listener = Rc::new(listener);
    let weak = Rc::downgrade(&listener);
    seastar_http::admin::register_listener("echo", move || weak.upgrade().map(|l| l.stats()));
    let conns = Rc::new(Connections::default());
    let mut stop = std::pin::pin!(seastar_core::stop_signal());
    loop {
        let accept = std::pin::pin!(listener.accept());
        match select(accept, stop.as_mut()).await {
            Either::Left((Ok((conn, _peer)), _)) => {
                if let Err(e) = conn.set_nodelay(true) {
                    tracing::debug!(shard = shard_id(), error = %e, "TCP_NODELAY");
                }
                let conn = Rc::new(conn);
                // Released however the task ends (a panic included).
                let slot = Connections::register(&conns, conn.clone());
                spawn_local(async move {
                    let _slot = slot;
                    echo(conn).await;
                })
                .detach();
            }
            Either::Left((Err(e), _)) => {
                if TcpListener::is_closed_error(&e) {
                    // Distributing: shard 0's listener closed (it is stopping).
                    tracing::debug!(shard = shard_id(), "listener closed");
                } else {
                    tracing::error!(shard = shard_id(), error = %e, "accept failed; no longer accepting");
                }
                break;
            }
            Either::Right(((), _)) => break,
        }
    }
    let stats = listener.stats();
    drop(listener);
    // Each connection ends after the echo in progress; one whose client
    // does not read its echo is aborted after the shutdown timeout.
    conns.drain(shutdown_timeout).await;
    stats
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Plain text when the logs go to a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let runtime = args.runtime.builder()?.build()?;
    let shutdown_timeout = args.runtime.shutdown_timeout();
    let addr = SocketAddr::new(args.address, args.port);
    args.admin.token()?;
    let admin_args = args.admin.clone();
    let admin = seastar_http::admin::Admin::new("echo", env!("CARGO_PKG_VERSION"))
        .runtime_args(&args.runtime)
        .option("address", args.address)
        .option("port", args.port)
        .option("listener", args.listener)
        .shutdown_timeout(shutdown_timeout);
    let mode = args.listener;
    let result: Result<Vec<ListenerStats>, String> = runtime.run(async move {
        let admin = admin_args.start(admin).await.map_err(|e| e.to_string())?;
        if let Some(a) = &admin {
            println!("echo: admin API and dashboard at http://{}/", a.addr());
        }
        let opts = ListenOptions::default().policy(mode.into());
        let bound = ShardedListeners::bind(addr, opts)
            .await
            .map_err(|e| e.to_string())?;
        let local = bound.local_addr();
        println!(
            "echo: listening on {local}, {} shards, backend {}, listener {mode}",
            shard_count(),
            seastar_core::runtime::backend_summary()
        );
        let served = bound
            .serve(move |listener| serve(listener, shutdown_timeout))
            .await
            .map_err(|e| e.to_string());
        if let Some(a) = admin {
            seastar_core::request_stop();
            if let Err(e) = a.stopped().await {
                tracing::warn!(error = %e, "admin server");
            }
        }
        served
    });
    match result {
        Ok(stats) => {
            for (shard, s) in stats.iter().enumerate() {
                println!("shard {shard}: accepted {} connections", s.accepted);
            }
            println!("echo: stopped cleanly");
            Ok(())
        }
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    seastar_core::help_test!(super::Args);
}
