//! `seawreck`: HTTP/1.1 load generator.
//!
//! ```text
//! cargo xtask run seawreck -- http://127.0.0.1:10000/ --connections 64 --duration 10s
//! cargo xtask run seawreck -- http://127.0.0.1:10000/ --rate 50000 --smp 2 --json
//! ```
//!
//! Connections are spread over the shards (`--smp`). Closed loop by
//! default: each connection sends its next request (`--pipeline N`
//! requests per write) as soon as the last response arrived. `--rate R`
//! is an open loop: R requests per second in total, each connection on its
//! own schedule, latency counted from the scheduled time. A progress line
//! goes to stderr every second; at the end, requests/s, errors by kind and
//! latency percentiles from an HDR histogram (`--json`: one JSON line).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Parser;
use seastar_core::runtime::RuntimeArgs;
use seastar_core::{shard_count, shard_id, smp, timer};
use seawreck::load::{self, Plan};
use seawreck::stats::{Report, ShardStats};

#[derive(Parser, Debug)]
#[command(about = "HTTP/1.1 load generator on seastar-rs")]
struct Args {
    /// URL to load (http:// only).
    url: String,
    /// Open connections (spread over the shards).
    #[arg(short, long, default_value_t = 64)]
    connections: usize,
    /// How long to run: `10s`, `500ms`, `2m`, or seconds.
    #[arg(short, long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Total requests per second (open loop); without it, closed loop.
    #[arg(short, long)]
    rate: Option<f64>,
    /// Requests per write on each connection (HTTP/1.1 pipelining).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Request method.
    #[arg(short, long, default_value = "GET")]
    method: String,
    /// Extra request header `Name: value` (repeatable); none by default.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Request body; default: none (an empty body).
    #[arg(long)]
    body: Option<String>,
    /// Longest wait for a connect or a response.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print the report as one JSON line.
    #[arg(long)]
    json: bool,
    /// No progress lines.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num.parse().map_err(|_| format!("bad duration `{s}`"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("bad duration unit in `{s}` (ms, s, m, h)")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("duration must be positive: `{s}`"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Address, `Host` value and request target of an `http://` URL.
fn target(url: &str) -> Result<(SocketAddr, String, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL `{url}`: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("only http:// URLs are supported, not `{url}`"));
    }
    let auth = uri
        .authority()
        .ok_or_else(|| format!("no host in `{url}`"))?;
    let port = auth.port_u16().unwrap_or(80);
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok((addr, auth.as_str().to_owned(), path))
}

fn request(args: &Args, host: &str, path: &str) -> Vec<u8> {
    let mut r = format!("{} {path} HTTP/1.1\r\nHost: {host}\r\n", args.method);
    for h in &args.headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if let Some(b) = &args.body {
        r.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    if let Some(b) = &args.body {
        bytes.extend_from_slice(b.as_bytes());
    }
    bytes
}

fn main() {
    let args = Args::parse();
    if args.connections == 0 || args.pipeline == 0 {
        fail(&"--connections and --pipeline must be at least 1");
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        fail(&"--rate must be positive");
    }
    let (addr, host, path) = target(&args.url).unwrap_or_else(|e| fail(&e));
    let runtime = args
        .runtime
        .builder()
        .and_then(|b| b.handle_signals(true).build())
        .unwrap_or_else(|e| fail(&e));
    let shards = runtime.shards();
    let plan = Plan {
        addr,
        request: request(&args, &host, &path),
        head: args.method.eq_ignore_ascii_case("HEAD"),
        pipeline: args.pipeline,
        interval: args
            .rate
            .map(|r| Duration::from_secs_f64(args.connections as f64 / r)),
        timeout: args.timeout,
        duration: args.duration,
    };
    let connections = args.connections;
    let quiet = args.quiet;
    let merged = runtime.run(async move {
        let progress = seastar_core::spawn_local(progress(quiet));
        let runs = smp::invoke_on_all(move || {
            let plan = plan.clone();
            async move {
                let mine = connections / shard_count()
                    + usize::from(shard_id() < connections % shard_count());
                load::run_shard(plan, mine).await;
                load::take_shard_stats()
            }
        })
        .await;
        drop(progress);
        let mut all = ShardStats::default();
        for s in runs.unwrap_or_else(|e| fail(&e)) {
            all.merge(&s);
        }
        all
    });
    let report = Report::new(
        &args.url,
        args.connections,
        args.pipeline,
        args.rate,
        args.duration.as_secs_f64(),
        &merged,
    );
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("serializable"));
    } else {
        print!(
            "seawreck: {} connections on {shards} shards, {} per write{}\n{}",
            args.connections,
            args.pipeline,
            args.rate
                .map_or(String::new(), |r| format!(", {r} req/s target")),
            report.text()
        );
    }
}

/// A line per second on stderr: requests in the last second, errors so far.
async fn progress(quiet: bool) {
    let start = timer::now();
    let mut last = 0u64;
    for second in 1u64.. {
        timer::sleep_until(start + Duration::from_secs(second)).await;
        let counts =
            smp::invoke_on_all(|| async { (load::shard_responses(), load::shard_errors()) })
                .await
                .unwrap_or_default();
        let total: u64 = counts.iter().map(|c| c.0).sum();
        let errors: u64 = counts.iter().map(|c| c.1).sum();
        if !quiet {
            eprintln!(
                "[{second:>4}s] {:>10} requests/s, {errors} errors",
                total - last
            );
        }
        last = total;
    }
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("seawreck: {e}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    seastar_core::help_test!(super::Args);
}
