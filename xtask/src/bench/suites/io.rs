//! Suite `io`: seastar-io's direct file I/O against fio, and the I/O
//! scheduler's fairness.
//!
//! Random 4 KiB `O_DIRECT` reads of one file (1 GiB; 256 MiB with
//! `--quick`) at depth 1, 32 and 128: `apps/io_tester` (one shard, one job)
//! against `fio` (Debian's, io_uring engine), interleaved (ours, fio, ours,
//! fio, ...), both pinned to the same CPU. The headline is IOPS; CPU per
//! I/O is the whole process's user + system time (reaped-children rusage)
//! divided by the I/Os done. One more case repeats depth 32 with our
//! reactor in poll mode (`--poll-mode`: it spins instead of sleeping
//! between completions), to show what the sleep/wake cycle costs in IOPS
//! and what polling costs in CPU. fio's latencies are its completion latencies
//! (`clat`, from submission to completion); ours are measured by the
//! workers around each request, so they include the queueing in the
//! scheduler and the task wake-up.
//!
//! `apps/iotune` measures the disk first; its `io_properties` file gives
//! the scheduler its disk model (and so its in-flight bound) in every run.
//!
//! Fairness (ours only, noted rather than charted):
//! - two classes with shares 100 and 400, each keeping 128 random 4 KiB
//!   reads outstanding (together more than the scheduler lets into the
//!   disk, so both wait in its queues): the ratio of their bandwidths
//!   (target 4 ± 15%);
//! - a latency class (shares 1000, depth 1) alone, then beside a
//!   saturating background class (shares 100, depth 64): its p99 beside
//!   the background over its p99 alone (target ≤ 2), at the default latency
//!   goal and at a tight one.

use super::last_json_line;
use crate::bench::Ctx;
use crate::bench::proc;
use crate::bench::report::{CaseInfo, CaseReport, SideReport};
use crate::bench::stats::Stat;
use crate::cmd;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Both sides run on this CPU (the virtual disk's interrupts land on CPU 1
/// on the reference machine, so both see the same wake-up path).
const CPU: &str = "1";
const DEPTHS: [usize; 3] = [1, 32, 128];

/// One measured run of one side.
struct Sample {
    iops: f64,
    ops: f64,
    cpu_s: f64,
    noise_s: f64,
    p50_us: f64,
    p99_us: f64,
}

#[derive(Default)]
struct Side {
    iops: Vec<f64>,
    cpu: Vec<f64>,
    per_cpu: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    noise: Vec<f64>,
}

impl Side {
    fn push(&mut self, s: &Sample) {
        self.iops.push(s.iops);
        self.cpu.push(s.cpu_s);
        self.per_cpu.push(if s.cpu_s > 0.0 {
            s.ops / s.cpu_s
        } else {
            f64::NAN
        });
        self.p50.push(s.p50_us);
        self.p99.push(s.p99_us);
        self.noise.push(s.noise_s);
    }

    fn report(self, name: &str) -> SideReport {
        SideReport {
            name: name.into(),
            value: Stat::new(self.iops),
            cpu_seconds: Stat::new(self.cpu),
            per_cpu_second: Stat::new(self.per_cpu),
            p50_us: Stat::new(self.p50),
            p99_us: Stat::new(self.p99),
            noise_cpu_seconds: Stat::new(self.noise),
            // Reaped CPU comes as one sum: no user/kernel split.
            ..SideReport::default()
        }
    }
}

/// Runs `c` to completion; returns its stdout, its CPU seconds (it and its
/// reaped descendants) and the CPU other processes used meanwhile.
fn run_measured(c: &mut Command) -> Result<(String, f64, f64)> {
    let (kids0, busy0) = (
        proc::reaped_children_cpu_seconds(),
        proc::system_busy_seconds()?,
    );
    let out = cmd::output(c)?;
    let (kids1, busy1) = (
        proc::reaped_children_cpu_seconds(),
        proc::system_busy_seconds()?,
    );
    let cpu = kids1 - kids0;
    Ok((out, cpu, (busy1 - busy0 - cpu).max(0.0)))
}

#[derive(serde::Deserialize)]
struct TesterJob {
    requests: u64,
    iops: f64,
    bandwidth: f64,
    p50_us: f64,
    p99_us: f64,
}

#[derive(serde::Deserialize)]
struct TesterReport {
    direct: bool,
    jobs: Vec<TesterJob>,
}

fn parse_tester(out: &str) -> Result<TesterReport> {
    let r: TesterReport = last_json_line(out, "bad io_tester JSON")?;
    if r.jobs.iter().any(|j| j.requests == 0) {
        bail!("io_tester: a job completed no request");
    }
    Ok(r)
}

/// fio's JSON: IOPS, I/Os done, completion-latency percentiles.
fn parse_fio(out: &str) -> Result<(f64, f64, f64, f64)> {
    let start = out.find('{').context("no JSON from fio")?;
    let v: serde_json::Value = serde_json::from_str(&out[start..]).context("bad fio JSON")?;
    let read = &v["jobs"][0]["read"];
    let iops = read["iops"].as_f64().context("fio: no read.iops")?;
    let ios = read["total_ios"]
        .as_f64()
        .context("fio: no read.total_ios")?;
    let pct = |p: &str| {
        read["clat_ns"]["percentile"][p]
            .as_f64()
            .unwrap_or(f64::NAN)
            / 1000.0
    };
    if ios == 0.0 {
        bail!("fio completed no I/O");
    }
    Ok((iops, ios, pct("50.000000"), pct("99.000000")))
}

struct Setup {
    tester: PathBuf,
    fio: PathBuf,
    file: PathBuf,
    size_mib: u64,
    props: PathBuf,
    secs: f64,
}

impl Setup {
    fn tester(&self, secs: f64, jobs: &[String], extra: &[&str]) -> Command {
        let mut c = Command::new(&self.tester);
        c.arg("--file")
            .arg(&self.file)
            .arg("--file-size")
            .arg(format!("{}M", self.size_mib))
            .arg("--io-properties")
            .arg(&self.props)
            .args([
                "--duration",
                &format!("{secs}s"),
                "--smp",
                "1",
                "--json",
                "--quiet",
            ])
            .args(extra);
        for j in jobs {
            c.args(["--job", j]);
        }
        cmd::pin(CPU, &c)
    }

    fn fio(&self, depth: usize) -> Command {
        let mut c = Command::new(&self.fio);
        c.args([
            "--name=randread",
            "--rw=randread",
            "--bs=4k",
            "--direct=1",
            "--ioengine=io_uring",
        ])
        .arg(format!("--filename={}", self.file.display()))
        .arg(format!("--size={}M", self.size_mib))
        .arg(format!("--iodepth={depth}"))
        .arg(format!("--runtime={}", self.secs))
        .args(["--time_based", "--output-format=json"]);
        cmd::pin(CPU, &c)
    }
}

fn depth_case(
    s: &Setup,
    depth: usize,
    extra: &[&str],
    runs: usize,
    notes: &mut Vec<String>,
) -> Result<CaseReport> {
    let (mut ours, mut peer) = (Side::default(), Side::default());
    let job = format!("name=randread,op=randread,size=4k,depth={depth}");
    let mut commands = Vec::new();
    for run in 0..runs {
        let mut c = s.tester(s.secs, std::slice::from_ref(&job), extra);
        if run == 0 {
            commands.push(cmd::show(&c));
        }
        let (out, cpu_s, noise_s) = run_measured(&mut c)?;
        let r = parse_tester(&out)?;
        if !r.direct {
            notes.push(format!(
                "{}: no O_DIRECT on this file system",
                s.file.display()
            ));
        }
        let j = &r.jobs[0];
        ours.push(&Sample {
            iops: j.iops,
            ops: j.requests as f64,
            cpu_s,
            noise_s,
            p50_us: j.p50_us,
            p99_us: j.p99_us,
        });
        let mut c = s.fio(depth);
        if run == 0 {
            commands.push(cmd::show(&c));
        }
        let (out, cpu_s, noise_s) = run_measured(&mut c)?;
        let (iops, ops, p50_us, p99_us) = parse_fio(&out)?;
        peer.push(&Sample {
            iops,
            ops,
            cpu_s,
            noise_s,
            p50_us,
            p99_us,
        });
    }
    let mode = if extra.contains(&"--poll-mode") {
        ", ours polling"
    } else {
        ""
    };
    let info = CaseInfo {
        name: format!("4 KiB random read, O_DIRECT, depth {depth}{mode}"),
        metric: "throughput".into(),
        unit: "IOPS".into(),
        higher_is_better: true,
        pinned: true,
    };
    Ok(CaseReport::new(
        info,
        ours.report("seastar-io"),
        peer.report("fio"),
        commands,
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "median {:.2} (min {min:.2}, max {max:.2}, {} runs)",
        median(v.to_vec()),
        v.len()
    )
}

fn fairness(s: &Setup, runs: usize, notes: &mut Vec<String>) -> Result<()> {
    let secs = s.secs.min(5.0);
    let shares = [
        "name=lo,shares=100,op=randread,size=4k,depth=128".to_string(),
        "name=hi,shares=400,op=randread,size=4k,depth=128".to_string(),
    ];
    let mut ratios = Vec::new();
    for _ in 0..runs {
        let r = parse_tester(&cmd::output(&mut s.tester(secs, &shares, &[]))?)?;
        ratios.push(r.jobs[1].bandwidth / r.jobs[0].bandwidth);
    }
    let ok = ratios.iter().all(|r| (r / 4.0 - 1.0).abs() <= 0.15);
    notes.push(format!(
        "fairness, shares 100 vs 400, each class 128 x 4 KiB random reads deep: bandwidth ratio {} (target 4 +/- 15%: {})",
        spread(&ratios),
        if ok { "met" } else { "missed" }
    ));
    let lat = "name=lat,shares=1000,op=randread,size=4k,depth=1".to_string();
    let bg = "name=bg,shares=100,op=randread,size=4k,depth=64".to_string();
    for (label, extra) in [
        ("defaults (2 ms goal, 50 us contended goal)", vec![]),
        (
            "without latency protection (contended goal = goal)",
            vec!["--contended-goal-us", "2000"],
        ),
    ] {
        let (mut solo, mut mixed, mut bg_iops) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let r = parse_tester(&cmd::output(&mut s.tester(
                secs,
                std::slice::from_ref(&lat),
                &extra,
            ))?)?;
            solo.push(r.jobs[0].p99_us);
            let r = parse_tester(&cmd::output(&mut s.tester(
                secs,
                &[lat.clone(), bg.clone()],
                &extra,
            ))?)?;
            mixed.push(r.jobs[0].p99_us);
            bg_iops.push(r.jobs[1].iops);
        }
        let ratio: Vec<f64> = mixed.iter().zip(&solo).map(|(m, s)| m / s).collect();
        notes.push(format!(
            "fairness, {label}: latency class (depth 1) p99 alone {:.0} us, beside a 64-deep background class {:.0} us \
             (background {:.0} IOPS); ratio {} (target <= 2: {})",
            median(solo.clone()),
            median(mixed.clone()),
            median(bg_iops),
            spread(&ratio),
            if median(ratio.clone()) <= 2.0 { "met" } else { "missed" }
        ));
    }
    Ok(())
}

/// Where the data file lives: `SEASTAR_IO_BENCH_DIR`, else /var/tmp (a
/// disk-backed file system on the reference machine, where O_DIRECT works).
fn data_dir() -> PathBuf {
    std::env::var_os("SEASTAR_IO_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/seastar-io-bench"))
}

fn iotune(ctx: &Ctx, dir: &Path, props: &Path, notes: &mut Vec<String>) -> Result<()> {
    let (mib, secs) = if ctx.quick { ("64", "1") } else { ("512", "3") };
    let mut c = Command::new(ctx.meta.release_dir().join("iotune"));
    c.arg("--dir").arg(dir).arg("--output").arg(props).args([
        "--file-size-mib",
        mib,
        "--duration",
        secs,
    ]);
    cmd::output(&mut cmd::pin(CPU, &c)).context("iotune")?;
    let text =
        std::fs::read_to_string(props).with_context(|| format!("read {}", props.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let d = &v["disks"][0];
    let f = |k: &str| d[k].as_f64().unwrap_or(f64::NAN);
    notes.push(format!(
        "disk model (iotune, {secs} s per figure): read {:.0} IOPS, {:.0} MB/s; write {:.0} IOPS, {:.0} MB/s",
        f("read_iops"),
        f("read_bandwidth") / 1e6,
        f("write_iops"),
        f("write_bandwidth") / 1e6
    ));
    Ok(())
}

/// Runs the io cases.
pub fn run(ctx: &Ctx, notes: &mut Vec<String>) -> Result<Vec<CaseReport>> {
    crate::bench::peers::ensure_taskset()?;
    let fio = cmd::ensure_tool("fio", "fio")?;
    cmd::run(&mut cmd::cargo([
        "build",
        "--release",
        "-p",
        "io_tester",
        "-p",
        "iotune",
    ]))?;
    let dir = data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let props = ctx.out_dir.join("io_properties.json");
    iotune(ctx, &dir, &props, notes)?;
    let size_mib = if ctx.quick { 256 } else { 1024 };
    let setup = Setup {
        tester: ctx.meta.release_dir().join("io_tester"),
        fio,
        file: dir.join(format!("data-{size_mib}m")),
        size_mib,
        props,
        secs: if ctx.quick { 2.0 } else { 10.0 },
    };
    // Creates and fills the file (io_tester writes it once).
    cmd::output(&mut setup.tester(0.01, &["name=prepare".to_string()], &[]))
        .context("prepare the data file")?;
    notes.push(format!(
        "file {} ({size_mib} MiB); ours and fio pinned to CPU {CPU}, interleaved, {} s per run; CPU per I/O = \
         process user+system time / I/Os; fio p50/p99 are its completion latencies",
        setup.file.display(),
        setup.secs
    ));
    let started = Instant::now();
    let mut cases = Vec::new();
    for depth in DEPTHS {
        cases.push(depth_case(&setup, depth, &[], ctx.runs, notes)?);
    }
    // The same at depth 32 with our reactor polling instead of sleeping
    // between completions: what the wake-ups cost, paid for in CPU.
    cases.push(depth_case(&setup, 32, &["--poll-mode"], ctx.runs, notes)?);
    for c in &cases {
        let us = |s: &SideReport| s.per_cpu_second.median.map_or(f64::NAN, |v| 1e6 / v);
        notes.push(format!(
            "{}: CPU per I/O ours {:.1} us, fio {:.1} us",
            c.info.name,
            us(&c.ours),
            us(&c.peer)
        ));
    }
    fairness(&setup, ctx.runs, notes)?;
    notes.push(format!(
        "measured in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_io_tester_and_fio_json() {
        let t = parse_tester(
            "io_tester: preparing\n{\"direct\":true,\"jobs\":[{\"requests\":10,\"iops\":5.0,\"bandwidth\":20480.0,\"p50_us\":1.5,\"p99_us\":3.0}]}\n",
        )
        .unwrap();
        assert!(t.direct);
        assert_eq!((t.jobs[0].requests, t.jobs[0].p99_us), (10, 3.0));
        assert!(parse_tester("{\"direct\":true,\"jobs\":[{\"requests\":0,\"iops\":0,\"bandwidth\":0,\"p50_us\":0,\"p99_us\":0}]}").is_err());
        let fio = r#"note: both iodepth >= 1 and synchronous I/O engine
{"jobs":[{"read":{"iops":1000.5,"total_ios":5000,"clat_ns":{"percentile":{"50.000000":18000,"99.000000":90000}}}}]}"#;
        assert_eq!(parse_fio(fio).unwrap(), (1000.5, 5000.0, 18.0, 90.0));
        assert!(parse_fio("no json").is_err());
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
        assert!(spread(&[1.0, 2.0, 3.0]).starts_with("median 2.00 (min 1.00, max 3.00"));
    }
}
