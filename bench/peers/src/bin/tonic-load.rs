//! A tonic-on-tokio load client for `echo.Echo` (the gRPC side's stock
//! client, to cross-check `rpc bench --protocol grpc`): `--in-flight`
//! calls outstanding on one HTTP/2 connection, `--size` bytes each.

use std::time::{Duration, Instant};

use clap::Parser;

#[allow(clippy::all, missing_debug_implementations, dead_code)]
#[path = "../../../../apps/rpc/src/proto/echo.rs"]
mod echo;

use echo::Payload;
use echo::echo_client::EchoClient;

/// gRPC echo load on tonic + tokio current_thread.
#[derive(Debug, Parser)]
struct Args {
    /// Server address.
    #[arg(long)]
    addr: std::net::SocketAddr,
    /// Calls in flight.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Payload bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    bench_peers::current_thread_runtime()?.block_on(async {
        let channel = tonic::transport::Endpoint::try_from(format!("http://{}", args.addr))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let client = EchoClient::new(channel);
        let end = Instant::now() + Duration::from_secs_f64(args.duration);
        let start = Instant::now();
        let local = tokio::task::LocalSet::new();
        let calls = local
            .run_until(async {
                let tasks: Vec<_> = (0..args.in_flight.max(1))
                    .map(|_| {
                        let mut c = client.clone();
                        let data = vec![0x5a; args.size];
                        tokio::task::spawn_local(async move {
                            let mut n = 0u64;
                            while Instant::now() < end {
                                if c.echo(Payload { data: data.clone() }).await.is_ok() {
                                    n += 1;
                                }
                            }
                            n
                        })
                    })
                    .collect();
                let mut total = 0;
                for t in tasks {
                    total += t.await.unwrap_or(0);
                }
                total
            })
            .await;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{{\"calls\":{calls},\"duration_s\":{secs:.3},\"calls_per_sec\":{:.1}}}",
            calls as f64 / secs
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
