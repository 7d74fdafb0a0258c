//! `io_tester`: a file I/O workload generator over seastar-io.
//!
//! ```text
//! io_tester --file /data/io.bin --file-size 1G --duration 10s \
//!     --job name=lat,shares=1000,op=randread,size=4k,depth=1 \
//!     --job name=bg,shares=100,op=randread,size=128k,depth=32 --smp 1
//! ```
//!
//! Prints a progress line per second (stderr) and, at the end, a table per
//! job (IOPS, MB/s, p50/p99/p99.9 latency) or, with `--json`, one JSON
//! object. The scheduler's disk model comes from `--io-properties` (a file
//! `iotune` wrote) or `SEASTAR_IO_PROPERTIES`, else the defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use io_tester::job::{Job, parse_size};
use io_tester::run::{Plan, run};
use seastar_core::runtime::RuntimeArgs;
use seastar_io::sched::{self, IoConfig, IoPropertiesFile};

/// Runs file I/O jobs through seastar-io's I/O scheduler.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The file to run against (created if missing).
    #[arg(long)]
    file: PathBuf,
    /// Size of the file (it is filled up to this size first).
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    file_size: u64,
    /// How long to run, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// A job: name=N,class=C,shares=S,op=randread|seqread|randwrite|seqwrite,size=4k,depth=D (repeatable).
    #[arg(long = "job", required = true)]
    jobs: Vec<Job>,
    /// The disk model (JSON, as iotune writes it); default: the file
    /// `SEASTAR_IO_PROPERTIES` names, else 100k/50k read/write IOPS and
    /// 2/1 GB/s.
    #[arg(long)]
    io_properties: Option<PathBuf>,
    /// The scheduler's latency goal in microseconds (disk time in flight);
    /// default 2000.
    #[arg(long)]
    latency_goal_us: Option<u64>,
    /// Disk time in microseconds the busy classes may have in flight while
    /// an interactive class (depth 1 or 2) is active; default 50.
    #[arg(long)]
    contended_goal_us: Option<u64>,
    /// A cap on requests in flight per shard; default: none (the latency
    /// goal alone bounds them).
    #[arg(long)]
    max_requests: Option<usize>,
    /// Use buffered I/O instead of O_DIRECT.
    #[arg(long)]
    buffered: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let v: f64 = num.parse().map_err(|_| format!("bad duration `{s}`"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "m" => v * 60.0,
        _ => return Err(format!("bad duration unit in `{s}`")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Plain text when the logs go to a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let mut config = IoConfig::from_env();
    if let Some(p) = &args.io_properties {
        match IoPropertiesFile::load(p) {
            Ok(f) => {
                let abs = std::fs::canonicalize(args.file.parent().unwrap_or(&args.file))
                    .unwrap_or_default();
                if let Some(d) = f.for_path(&abs).or(f.disks.first()) {
                    config.properties = d.clone();
                }
            }
            Err(e) => fail(&e),
        }
    }
    if let Some(us) = args.latency_goal_us {
        config.latency_goal = Duration::from_micros(us);
    }
    if let Some(us) = args.contended_goal_us {
        config.contended_goal = Duration::from_micros(us);
    }
    config.max_requests = args.max_requests.or(config.max_requests);
    sched::configure(config);
    let runtime = match args.runtime.builder().and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => fail(&e),
    };
    let plan = Plan {
        file: args.file,
        file_size: args.file_size,
        duration: args.duration,
        jobs: args.jobs,
        direct: !args.buffered,
        progress: !args.quiet,
    };
    match runtime.run(run(plan)) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string(&report).expect("report"));
            } else {
                print!("{}", report.table());
            }
            if report.jobs.iter().any(|j| j.errors > 0) {
                std::process::exit(2);
            }
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("io_tester: {e}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    seastar_core::help_test!(super::Args);
}
