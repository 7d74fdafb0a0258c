//! Suite `memcached`: apps/memcached against stock memcached (Debian's
//! `memcached`), both loaded by `memaslap` (Debian's `libmemcached-tools`
//! ships it as `memcaslap`), 90% get / 10% set, 16-byte keys, 100-byte
//! values, 50 connections.
//!
//! Cases, each ours then stock, interleaved, a fresh server per run:
//! - one core: ours with one shard (`-t 1`) vs `memcached -t 1`, server on
//!   CPU 0 and the load on CPU 1; single-key gets;
//! - the same with 16-key multi-gets (`memaslap -d 16`): replies of one
//!   request are written together, the server rather than the client is
//!   the bound;
//! - both cores: two shards vs `-t 2`, server and load unpinned (sharing
//!   the two cores);
//! - the floor: ours with one shard against `memcached-floor` (bench/peers:
//!   a bare epoll responder with no store, every `get` a fixed hit), same
//!   load and pinning: the CPU per operation any server pays in the kernel;
//! - pipelined: 16 requests per write on each of the 50 connections (same
//!   mix, 10k keys), one core, loaded by `memcached-load` (apps/memcached's
//!   pipelining load generator; memaslap cannot pipeline). Stock memcached
//!   answers a pipelined read reply by reply; ours with one write.
//!
//! The headline is operations per server CPU-second (utime + stime from
//! /proc/PID/stat over the measured window): the load tool saturates its
//! core before a server does. memaslap's smallest key window is 1k keys per
//! connection, so the key space is 50k keys. Its latency report is a log2
//! histogram; p50/p99 here are the upper bounds of the buckets they fall in.

use super::{last_json_line, ours_override, strings};
use crate::bench::Ctx;
use crate::bench::report::{CaseInfo, CaseReport};
use crate::bench::runner::{LoadCmd, LoadSample, RunOpts, ServerCase, ServerCmd, run_case};
use crate::cmd;
use anyhow::{Context, Result, bail};
use std::path::Path;

const CONNECTIONS: u32 = 50;

/// memaslap's workload file: key and value sizes, then the command mix
/// (0 = set, 1 = get).
const WORKLOAD: &str = "key\n16 16 1\nvalue\n100 100 1\ncmd\n0 0.1\n1 0.9\n";

/// Our server: the `--ours-cmd` override, or apps/memcached built in release.
fn ours(ctx: &Ctx, threads: u32) -> Result<ServerCmd> {
    if let Some(cmd) = ours_override(ctx) {
        return Ok(cmd);
    }
    let Some(pkg) = ctx
        .meta
        .packages_under("apps/memcached")
        .find(|p| p.targets_of("bin").any(|b| b == "memcached"))
    else {
        bail!("apps/memcached has no `memcached` binary; nothing to compare");
    };
    // Both binaries: the server and the pipelining load generator.
    cmd::run(&mut cmd::cargo([
        "build",
        "--release",
        "-p",
        &pkg.name,
        "--bins",
    ]))?;
    let t = threads.to_string();
    Ok(ServerCmd {
        name: "seastar".into(),
        program: ctx.meta.release_dir().join("memcached"),
        args: strings(&[
            "-p",
            "{port}",
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-m",
            "64",
            "-t",
            &t,
        ]),
    })
}

/// Stock memcached from Debian (`-u nobody` lets it start as root).
fn stock(threads: u32) -> Result<ServerCmd> {
    let program = cmd::ensure_tool("memcached", "memcached")?;
    let t = threads.to_string();
    Ok(ServerCmd {
        name: "memcached".into(),
        program,
        args: strings(&[
            "-p",
            "{port}",
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-m",
            "64",
            "-t",
            &t,
            "-u",
            "nobody",
        ]),
    })
}

fn memaslap(program: &Path, config: &Path, threads: u32, division: u32) -> LoadCmd {
    let mut args = strings(&[
        "-s",
        "{addr}",
        "-F",
        &config.display().to_string(),
        "-t",
        "{duration}s",
        "-T",
        &threads.to_string(),
        "-c",
        &CONNECTIONS.to_string(),
        "--win_size=1k",
        "-S",
        "{duration}s",
    ]);
    if division > 1 {
        args.extend(strings(&["-d", &division.to_string()]));
    }
    LoadCmd {
        program: program.to_path_buf(),
        args,
        parse: parse_memaslap,
    }
}

/// Runs the memcached cases.
pub fn run(ctx: &Ctx, notes: &mut Vec<String>) -> Result<Vec<CaseReport>> {
    crate::bench::peers::ensure_taskset()?;
    let load = cmd::ensure_tool("memcaslap", "libmemcached-tools")?;
    let config = ctx.out_dir.join("memaslap-90get-100b.cfg");
    std::fs::write(&config, WORKLOAD).with_context(|| format!("write {}", config.display()))?;
    let opts = RunOpts {
        runs: ctx.runs,
        // memaslap takes whole seconds.
        duration_s: if ctx.quick { 2.0 } else { 10.0 },
        warmup_s: if ctx.quick { 1.0 } else { 2.0 },
        log_dir: ctx.out_dir.join("logs"),
        only: ctx.only.clone(),
    };
    notes.push(format!(
        "load: memaslap (libmemcached-tools), {CONNECTIONS} connections, 90% get / 10% set, \
         16 B keys (1k per connection), 100 B values; p50/p99 are log2-bucket upper bounds"
    ));
    let cases = [
        ("get/set, 1 core", 1, 1, 1, true),
        ("16-key multi-get/set, 1 core", 1, 1, 16, true),
        ("get/set, 2 cores", 2, 2, 1, false),
    ];
    // Built once: a rebuild between cases could pick up a half-edited tree.
    let ours1 = ours(ctx, 1)?;
    let with_threads = |t: u32| {
        let mut c = ours1.clone();
        if ctx.ours_cmd.is_none() {
            if let Some(last) = c.args.last_mut() {
                *last = t.to_string();
            }
        }
        c
    };
    let mut out = Vec::new();
    for (name, threads, load_threads, division, pinned) in cases {
        let info = CaseInfo {
            name: format!("memcached {name}"),
            metric: "throughput".into(),
            unit: "ops/s".into(),
            higher_is_better: true,
            pinned,
        };
        let case = ServerCase {
            info,
            ours: with_threads(threads),
            peer: stock(threads)?,
            load: memaslap(&load, &config, load_threads, division),
        };
        out.extend(run_case(&case, &opts, notes)?);
    }
    // The floor: the same load against a bare epoll responder that does
    // no work (bench/peers `memcached-floor`), to show how much of a
    // server's CPU per operation is the kernel's.
    let peers = crate::bench::peers::build(&ctx.meta)?;
    let case = ServerCase {
        info: CaseInfo {
            name: "memcached get/set, 1 core, vs bare epoll responder (the floor)".into(),
            metric: "throughput".into(),
            unit: "ops/s".into(),
            higher_is_better: true,
            pinned: true,
        },
        ours: with_threads(1),
        peer: ServerCmd {
            name: "floor".into(),
            program: peers.join("memcached-floor"),
            args: strings(&["--port", "{port}"]),
        },
        load: memaslap(&load, &config, 1, 1),
    };
    out.extend(run_case(&case, &opts, notes)?);
    let pipelining = LoadCmd {
        program: ctx.meta.release_dir().join("memcached-load"),
        args: strings(&[
            "--addr",
            "{addr}",
            "--connections",
            &CONNECTIONS.to_string(),
            "--depth",
            "16",
            "--duration",
            "{duration}",
        ]),
        parse: parse_memcached_load,
    };
    let case = ServerCase {
        info: CaseInfo {
            name: "memcached pipelined 16 per write, 1 core".into(),
            metric: "throughput".into(),
            unit: "ops/s".into(),
            higher_is_better: true,
            pinned: true,
        },
        ours: with_threads(1),
        peer: stock(1)?,
        load: pipelining,
    };
    out.extend(run_case(&case, &opts, notes)?);
    Ok(out)
}

#[derive(serde::Deserialize)]
struct MemcachedLoad {
    ops: u64,
    ops_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Parses the JSON line of `memcached-load` (latency: a batch's round trip).
pub fn parse_memcached_load(out: &str) -> Result<LoadSample> {
    let r: MemcachedLoad = last_json_line(out, "bad memcached-load JSON")?;
    if r.ops == 0 {
        bail!("memcached-load completed no operation");
    }
    Ok(LoadSample {
        throughput: r.ops_per_sec,
        ops: Some(r.ops as f64),
        p50_us: Some(r.p50_us),
        p99_us: Some(r.p99_us),
    })
}

/// Parses memaslap's output: `Run time: 10.0s Ops: N TPS: T ...` and the
/// last `Total Statistics` block's log2 latency histogram.
pub fn parse_memaslap(out: &str) -> Result<LoadSample> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("Run time:"))
        .context("no `Run time:` line")?;
    let field = |name: &str| -> Result<f64> {
        let rest = line
            .split(name)
            .nth(1)
            .with_context(|| format!("no `{name}` in {line:?}"))?;
        let word = rest.split_whitespace().next().unwrap_or("");
        word.parse()
            .with_context(|| format!("bad `{name}` value {word:?}"))
    };
    let ops = field("Ops:")?;
    let tps = field("TPS:")?;
    if ops == 0.0 {
        bail!("memaslap completed no operation");
    }
    let hist = total_histogram(out);
    Ok(LoadSample {
        throughput: tps,
        ops: Some(ops),
        p50_us: percentile(&hist, 0.50),
        p99_us: percentile(&hist, 0.99),
    })
}

/// `(upper bound µs, count)` per bucket of the last `Total Statistics`
/// block. memaslap prints rows `k: c0 c1 c2 c3` whose columns count
/// latencies in [2^(k+i), 2^(k+i+1)) µs.
fn total_histogram(out: &str) -> Vec<(f64, u64)> {
    let Some(start) = out.rfind("Total Statistics") else {
        return Vec::new();
    };
    let mut buckets = Vec::new();
    let mut seen = false;
    for line in out[start..].lines().skip(1) {
        let t = line.trim();
        if t.starts_with("Log2 Dist") {
            seen = true;
            continue;
        }
        if !seen {
            continue;
        }
        let Some((k, counts)) = t.split_once(':') else {
            break;
        };
        let Ok(k) = k.trim().parse::<i32>() else {
            break;
        };
        for (i, c) in counts.split_whitespace().enumerate() {
            let Ok(c) = c.parse::<u64>() else {
                break;
            };
            buckets.push((2f64.powi(k + i as i32 + 1), c));
        }
    }
    buckets
}

fn percentile(hist: &[(f64, u64)], q: f64) -> Option<f64> {
    let total: u64 = hist.iter().map(|b| b.1).sum();
    if total == 0 {
        return None;
    }
    let want = (q * total as f64).ceil() as u64;
    let mut seen = 0;
    for &(upper, c) in hist {
        seen += c;
        if seen >= want {
            return Some(upper);
        }
    }
    hist.last().map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "\
Total Statistics (182678 events)
   Min:        57
   Avg:      1144
   Log2 Dist:
       4:        0        0        1        5
       8:     3803   154995    15990     4345
      12:     1264      648      374      271

cmd_get: 164431
Run time: 4.2s Ops: 182728 TPS: 43681 Net_rate: 6.5M/s
";

    #[test]
    fn parses_memaslap_output() {
        let s = parse_memaslap(OUT).unwrap();
        assert_eq!((s.throughput, s.ops), (43681.0, Some(182728.0)));
        // Most events are in [512, 1024) µs.
        assert_eq!(s.p50_us, Some(1024.0));
        assert_eq!(s.p99_us, Some(8192.0));
        assert!(parse_memaslap("nothing").is_err());
        assert!(parse_memaslap("Run time: 1.0s Ops: 0 TPS: 0 Net_rate: 0").is_err());
    }

    #[test]
    fn parses_memcached_load_output() {
        let out = "{\"connections\":50,\"depth\":16,\"duration_s\":5.0,\"ops\":5584800,\
                   \"ops_per_sec\":1116322.8,\"p50_us\":396,\"p99_us\":1784}\n";
        let s = parse_memcached_load(out).unwrap();
        assert_eq!((s.ops, s.p99_us), (Some(5_584_800.0), Some(1784.0)));
        assert!(
            parse_memcached_load("{\"ops\":0,\"ops_per_sec\":0,\"p50_us\":0,\"p99_us\":0}")
                .is_err()
        );
    }

    #[test]
    fn no_histogram_means_no_latency() {
        let s = parse_memaslap("Run time: 1.0s Ops: 10 TPS: 10 Net_rate: 1M/s").unwrap();
        assert_eq!((s.p50_us, s.p99_us), (None, None));
    }
}
