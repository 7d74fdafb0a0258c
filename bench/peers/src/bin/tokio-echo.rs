//! The peer of apps/echo: a TCP echo server on a tokio current_thread runtime,
//! one task per connection, TCP_NODELAY, echoing whatever it reads.

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// TCP echo server on tokio's current_thread runtime.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    listen: bench_peers::Listen,
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
    bench_peers::serve_local(args.listen, |stream| async move {
        let _ = echo(stream).await;
    })
}
