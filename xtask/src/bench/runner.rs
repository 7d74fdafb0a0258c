//! The side-by-side runner for server suites: fresh server per run, A B A B,
//! pinned server and load, server CPU from /proc, noise from /proc/stat.

use super::proc;
use super::report::{CaseInfo, CaseReport, SideReport};
use super::server::{Server, free_port};
use super::stats::Stat;
use crate::cmd;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// A server to start: `{port}` in the arguments is replaced by a free port.
#[derive(Debug, Clone)]
pub struct ServerCmd {
    /// Who this is (`seastar`, `tokio`, ...).
    pub name: String,
    /// Executable (relative paths are taken from the workspace root).
    pub program: PathBuf,
    /// Arguments, with `{port}` placeholders.
    pub args: Vec<String>,
}

/// What a load tool measured in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSample {
    /// Operations per second.
    pub throughput: f64,
    /// Operations completed, if the tool says (else throughput × window).
    pub ops: Option<f64>,
    /// Median latency, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile latency, µs.
    pub p99_us: Option<f64>,
}

/// A load generator: `{addr}`, `{port}` and `{duration}` (seconds) are substituted.
#[derive(Debug, Clone)]
pub struct LoadCmd {
    /// Executable.
    pub program: PathBuf,
    /// Arguments with placeholders.
    pub args: Vec<String>,
    /// Parses the tool's stdout.
    pub parse: fn(&str) -> Result<LoadSample>,
}

/// One server case: ours and the peer under the same load.
#[derive(Debug, Clone)]
pub struct ServerCase {
    /// Name, metric, unit, pinning (metric is higher-is-better throughput).
    pub info: CaseInfo,
    /// Our server.
    pub ours: ServerCmd,
    /// The peer's server.
    pub peer: ServerCmd,
    /// The load.
    pub load: LoadCmd,
}

/// Durations and repetitions.
#[derive(Debug, Clone)]
pub struct RunOpts {
    /// Runs per side.
    pub runs: usize,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Discarded warm-up seconds per run.
    pub warmup_s: f64,
    /// Where server logs go.
    pub log_dir: PathBuf,
    /// Only the cases whose name contains this text (`--only`).
    pub only: Option<String>,
}

impl RunOpts {
    /// Whether the case named `name` is to run (`--only`).
    pub fn wants(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|only| name.contains(only))
    }
}

/// A run whose other-process CPU exceeds this share of one core is redone once.
const NOISY_SHARE: f64 = 0.10;

struct Measurement {
    sample: LoadSample,
    /// The server's CPU in the measured window.
    cpu: proc::ProcessCpu,
    noise_s: f64,
    wall_s: f64,
}

fn substitute(args: &[String], vars: &[(&str, String)]) -> Vec<String> {
    args.iter()
        .map(|a| {
            vars.iter()
                .fold(a.clone(), |a, (k, v)| a.replace(&format!("{{{k}}}"), v))
        })
        .collect()
}

fn pinned(cpu: Option<&str>, program: &PathBuf, args: Vec<String>) -> Command {
    let mut c = Command::new(program);
    c.args(args).current_dir(cmd::root());
    match cpu {
        Some(cpu) => cmd::pin(cpu, &c),
        None => c,
    }
}

fn load_vars(port: &str, secs: f64) -> [(&'static str, String); 3] {
    [
        ("addr", format!("127.0.0.1:{port}")),
        ("port", port.to_string()),
        ("duration", format!("{secs}")),
    ]
}

fn run_load(
    case: &ServerCase,
    port: u16,
    secs: f64,
    commands: &mut Vec<String>,
) -> Result<LoadSample> {
    let cpu = case.info.pinned.then_some("1");
    let shown = substitute(&case.load.args, &load_vars("{port}", secs));
    remember(commands, &pinned(cpu, &case.load.program, shown));
    let args = substitute(&case.load.args, &load_vars(&port.to_string(), secs));
    let mut c = pinned(cpu, &case.load.program, args);
    let out = cmd::output(&mut c)?;
    (case.load.parse)(&out).with_context(|| format!("cannot parse the load's output: {out}"))
}

fn remember(commands: &mut Vec<String>, c: &Command) {
    let line = cmd::show(c);
    if !commands.contains(&line) {
        commands.push(line);
    }
}

fn measure(
    case: &ServerCase,
    side: &ServerCmd,
    opts: &RunOpts,
    tag: &str,
    commands: &mut Vec<String>,
) -> Result<Measurement> {
    let port = free_port()?;
    let args = substitute(&side.args, &[("port", port.to_string())]);
    let cpu = case.info.pinned.then_some("0");
    let c = pinned(cpu, &side.program, args);
    remember(commands, &pinned(cpu, &side.program, side.args.clone()));
    let log = opts.log_dir.join(format!("{tag}.log"));
    let mut server = Server::start(c, port, &log)?;
    if opts.warmup_s > 0.0 {
        run_load(case, port, opts.warmup_s, &mut Vec::new()).context("warm-up")?;
    }
    let (cpu0, busy0, kids0) = (
        server.cpu()?,
        proc::system_busy_seconds()?,
        proc::reaped_children_cpu_seconds(),
    );
    let start = Instant::now();
    let sample = run_load(case, port, opts.duration_s, commands)?;
    let wall_s = start.elapsed().as_secs_f64();
    let (cpu1, busy1, kids1) = (
        server.cpu()?,
        proc::system_busy_seconds()?,
        proc::reaped_children_cpu_seconds(),
    );
    server.stop()?;
    let cpu = cpu1 - cpu0;
    let load_s = kids1 - kids0;
    let noise_s = (busy1 - busy0 - cpu.total_s() - load_s).max(0.0);
    Ok(Measurement {
        sample,
        cpu,
        noise_s,
        wall_s,
    })
}

#[derive(Default)]
struct Runs {
    value: Vec<f64>,
    cpu: Vec<f64>,
    per_cpu: Vec<f64>,
    user_us_per_op: Vec<f64>,
    system_us_per_op: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    noise: Vec<f64>,
}

impl Runs {
    fn push(&mut self, m: &Measurement) {
        self.value.push(m.sample.throughput);
        let cpu_s = m.cpu.total_s();
        self.cpu.push(cpu_s);
        let ops = m.sample.ops.unwrap_or(m.sample.throughput * m.wall_s);
        self.per_cpu
            .push(if cpu_s > 0.0 { ops / cpu_s } else { f64::NAN });
        if ops > 0.0 {
            self.user_us_per_op.push(m.cpu.user_s * 1e6 / ops);
            self.system_us_per_op.push(m.cpu.system_s * 1e6 / ops);
        }
        self.p50.extend(m.sample.p50_us);
        self.p99.extend(m.sample.p99_us);
        self.noise.push(m.noise_s);
    }

    fn report(self, name: &str) -> SideReport {
        SideReport {
            name: name.to_string(),
            value: Stat::new(self.value),
            cpu_seconds: Stat::new(self.cpu),
            per_cpu_second: Stat::new(self.per_cpu),
            user_us_per_op: Stat::new(self.user_us_per_op),
            system_us_per_op: Stat::new(self.system_us_per_op),
            p50_us: Stat::new(self.p50),
            p99_us: Stat::new(self.p99),
            noise_cpu_seconds: Stat::new(self.noise),
        }
    }
}

/// Runs one case: for each run, ours then the peer, each on a fresh server.
/// A run disturbed by other processes is redone once; `notes` gets a line if it
/// was still disturbed.
/// `None` when `--only` leaves the case out.
pub fn run_case(
    case: &ServerCase,
    opts: &RunOpts,
    notes: &mut Vec<String>,
) -> Result<Option<CaseReport>> {
    if !opts.wants(&case.info.name) {
        return Ok(None);
    }
    if opts.runs == 0 {
        bail!("--runs must be at least 1");
    }
    std::fs::create_dir_all(&opts.log_dir)?;
    let mut commands = Vec::new();
    let (mut ours, mut peer) = (Runs::default(), Runs::default());
    for run in 1..=opts.runs {
        for (side, runs) in [(&case.ours, &mut ours), (&case.peer, &mut peer)] {
            let slug: String = case
                .info
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let tag = format!("{slug}-{}-{run}", side.name);
            let mut m = measure(case, side, opts, &tag, &mut commands)?;
            if m.noise_s > NOISY_SHARE * m.wall_s {
                eprintln!(
                    "xtask: {tag}: other processes used {:.2} CPU-s; redoing the run",
                    m.noise_s
                );
                m = measure(case, side, opts, &tag, &mut commands)?;
                if m.noise_s > NOISY_SHARE * m.wall_s {
                    notes.push(format!(
                        "{} / {} run {run}: disturbed (other processes used {:.2} CPU-s in {:.1} s), kept after one redo",
                        case.info.name, side.name, m.noise_s, m.wall_s
                    ));
                }
            }
            eprintln!(
                "  {:<28} {:<10} run {run}: {:>12.0} {}  server CPU {:.2} s  p50 {} µs  p99 {} µs",
                case.info.name,
                side.name,
                m.sample.throughput,
                case.info.unit,
                m.cpu.total_s(),
                m.sample.p50_us.map_or("-".into(), |v| format!("{v:.1}")),
                m.sample.p99_us.map_or("-".into(), |v| format!("{v:.1}")),
            );
            runs.push(&m);
        }
    }
    Ok(Some(CaseReport::new(
        case.info.clone(),
        ours.report(&case.ours.name),
        peer.report(&case.peer.name),
        commands,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_cases_by_name() {
        let mut opts = RunOpts {
            runs: 1,
            duration_s: 1.0,
            warmup_s: 0.0,
            log_dir: PathBuf::new(),
            only: None,
        };
        assert!(opts.wants("https hello vs nginx"));
        opts.only = Some("https".into());
        assert!(opts.wants("https hello vs nginx"));
        assert!(!opts.wants("http hello, 64 conns vs nginx"));
    }

    #[test]
    fn substitutes_placeholders() {
        let args = ["--addr".to_string(), "{addr}".into(), "-d{duration}".into()];
        let out = substitute(
            &args,
            &[("addr", "127.0.0.1:9".into()), ("duration", "2.5".into())],
        );
        assert_eq!(out, ["--addr", "127.0.0.1:9", "-d2.5"]);
    }
}
