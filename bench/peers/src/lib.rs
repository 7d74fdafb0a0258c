//! Benchmark peers and load clients for `cargo xtask bench`.
//!
//! Binaries: `tokio-echo` (the peer of apps/echo: a tokio current_thread TCP
//! echo server), `epoll-echo` (a bare hand-written epoll echo: the floor) and
//! `echo-load` (ping-pong echo load with an HDR histogram), `hyper-hello`
//! (the peer of apps/httpd), `tonic-echo` and `tonic-load` (gRPC),
//! `memcached-floor` (a bare epoll get/set responder: apps/memcached's floor).
//! This package is never published; it exists only to be measured against.

pub mod epoll;

use std::net::SocketAddr;

/// `--port` and `--address`, the flags of every peer server.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Listen {
    /// Port to listen on.
    #[arg(long)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: std::net::IpAddr,
}

impl Listen {
    /// The socket address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

/// Serves `handle(connection)` for every connection accepted on `listen`,
/// each on its own task of one tokio current_thread runtime (a LocalSet).
pub fn serve_local<F, Fut>(listen: Listen, handle: F) -> std::io::Result<()>
where
    F: Fn(tokio::net::TcpStream) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    current_thread_runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen.addr()).await?;
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                loop {
                    let (stream, _) = listener.accept().await?;
                    tokio::task::spawn_local(handle(stream));
                }
            })
            .await
    })
}

/// A current_thread tokio runtime with IO and timers, as the peers use.
pub fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Parses `host:port`, with a clear message.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("bad address `{s}`: {e}"))
}
