//! The peer of apps/echo: a TCP echo server on a tokio current_thread runtime,
//! one task per connection, TCP_NODELAY, echoing whatever it reads.

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// TCP echo server on tokio's current_thread runtime.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on.
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: std::net::IpAddr,
}

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    bench_peers::current_thread_runtime()?.block_on(async {
        let listener = TcpListener::bind((args.address, args.port)).await?;
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                loop {
                    let (stream, _) = listener.accept().await?;
                    tokio::task::spawn_local(async move {
                        let _ = echo(stream).await;
                    });
                }
            })
            .await
    })
}
