//! Echo load client: N connections, each sends a message and waits for the
//! whole echo before sending the next (ping-pong). Reports messages per second
//! and round-trip latency percentiles from an HDR histogram. With
//! `--reconnect`, every message travels on a new connection (accept-heavy
//! load for comparing listener policies).

use bench_peers::{current_thread_runtime, parse_addr};
use clap::Parser;
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Ping-pong TCP echo load.
#[derive(Debug, Parser)]
struct Args {
    /// Server address, host:port.
    #[arg(long, value_parser = parse_addr)]
    addr: SocketAddr,
    /// Concurrent connections.
    #[arg(long, default_value_t = 1)]
    connections: u32,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// Short-lived connections: each message on a new connection (connect,
    /// one round trip, close with a reset so no TIME_WAIT piles up); the
    /// latency then includes the connect.
    #[arg(long)]
    reconnect: bool,
}

/// Where a load task's round trips travel.
enum Target {
    /// One connection, kept for the whole run.
    Kept(TcpStream),
    /// A new connection per round trip to this address, closed with a
    /// reset after it.
    Fresh(SocketAddr),
}

/// Round trips until `deadline`; latencies in ns (with `Fresh`, the
/// connect is part of each).
async fn round_trips(
    mut target: Target,
    size: usize,
    deadline: Instant,
) -> std::io::Result<Histogram<u64>> {
    let mut hist =
        Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds");
    let msg = vec![0x5au8; size];
    let mut buf = vec![0u8; size];
    loop {
        let start = Instant::now();
        if start >= deadline {
            return Ok(hist);
        }
        let mut fresh;
        let stream = match &mut target {
            Target::Kept(s) => s,
            Target::Fresh(addr) => {
                fresh = TcpStream::connect(*addr).await?;
                fresh.set_nodelay(true)?;
                fresh.set_zero_linger()?;
                &mut fresh
            }
        };
        stream.write_all(&msg).await?;
        stream.read_exact(&mut buf).await?;
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        hist.saturating_record(ns.max(1));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.connections == 0 || args.size == 0 || args.duration.is_nan() || args.duration <= 0.0 {
        return Err("--connections, --size and --duration must be positive".into());
    }
    let rt = current_thread_runtime()?;
    let local = tokio::task::LocalSet::new();
    let (hist, elapsed) = local.block_on(&rt, async {
        if args.reconnect {
            let start = Instant::now();
            let deadline = start + Duration::from_secs_f64(args.duration);
            let tasks: Vec<_> = (0..args.connections)
                .map(|_| {
                    tokio::task::spawn_local(round_trips(
                        Target::Fresh(args.addr),
                        args.size,
                        deadline,
                    ))
                })
                .collect();
            let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
            for t in tasks {
                total.add(t.await??)?;
            }
            return Ok((total, start.elapsed()));
        }
        // Connect everything first, so setup is not measured.
        let mut streams = Vec::new();
        for _ in 0..args.connections {
            let s = TcpStream::connect(args.addr).await?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(args.duration);
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|s| tokio::task::spawn_local(round_trips(Target::Kept(s), args.size, deadline)))
            .collect();
        let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
        for t in tasks {
            total.add(t.await??)?;
        }
        Ok::<_, Box<dyn std::error::Error>>((total, start.elapsed()))
    })?;
    let messages = hist.len();
    let secs = elapsed.as_secs_f64();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1e3;
    let rate = messages as f64 / secs;
    if args.json {
        let line = serde_json::json!({
            "connections": args.connections,
            "size": args.size,
            "duration_s": secs,
            "messages": messages,
            "msgs_per_sec": rate,
            "p50_us": us(0.5),
            "p99_us": us(0.99),
            "max_us": hist.max() as f64 / 1e3,
        });
        println!("{line}");
    } else {
        println!(
            "{messages} messages in {secs:.2} s over {} connection(s): {rate:.0} msgs/s, \
             p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            args.connections,
            us(0.5),
            us(0.99),
            hist.max() as f64 / 1e3
        );
    }
    Ok(())
}
