//! The results of a suite: JSON (the record) and Markdown (the table).

use super::machine::Machine;
use super::stats::{Stat, ratios};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Everything one `cargo xtask bench <suite>` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteReport {
    /// Suite name.
    pub suite: String,
    /// Whether this was a `--quick` smoke run.
    pub quick: bool,
    /// Runs per side and case.
    pub runs: usize,
    /// Start of the run, UTC (`YYYY-MM-DD HH:MM`).
    pub date: String,
    /// Where it ran.
    pub machine: Machine,
    /// Remarks: overrides, disturbed runs, missing peers.
    pub notes: Vec<String>,
    /// One entry per case (and per peer, for suites with several peers).
    pub cases: Vec<CaseReport>,
}

/// What a case measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseInfo {
    /// Case name, e.g. `echo 64 B, 64 conns` or a criterion group.
    pub name: String,
    /// What `value` measures, e.g. `throughput` or `time per operation`.
    pub metric: String,
    /// Unit of `value`.
    pub unit: String,
    /// True for throughput, false for time.
    pub higher_is_better: bool,
    /// Whether server and load were pinned to separate cores.
    pub pinned: bool,
}

/// One case: ours against one peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseReport {
    /// What is measured.
    #[serde(flatten)]
    pub info: CaseInfo,
    /// Our side.
    pub ours: SideReport,
    /// The peer's side.
    pub peer: SideReport,
    /// Per-run ratio of `value` (> 1: ours is better).
    pub ratio: Stat,
    /// Per-run ratio of operations per server CPU-second (> 1: ours is better).
    pub ratio_per_cpu: Stat,
    /// The commands run (servers, load, benches).
    pub commands: Vec<String>,
}

/// One side of a case (ours or the peer).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SideReport {
    /// Who this is, e.g. `seastar` or `tokio`.
    pub name: String,
    /// The metric, one value per run.
    pub value: Stat,
    /// Server CPU seconds (utime + stime, all threads) in the measured window.
    pub cpu_seconds: Stat,
    /// Operations per server CPU-second.
    pub per_cpu_second: Stat,
    /// Server CPU per operation spent in user space, µs (empty where the
    /// suite does not split it).
    #[serde(default)]
    pub user_us_per_op: Stat,
    /// Server CPU per operation spent in the kernel, µs: for a loopback
    /// server mostly TCP work, the part no user-space code can win.
    #[serde(default)]
    pub system_us_per_op: Stat,
    /// Median latency reported by the load tool, µs.
    pub p50_us: Stat,
    /// 99th percentile latency reported by the load tool, µs.
    pub p99_us: Stat,
    /// CPU seconds used by other processes during the window.
    pub noise_cpu_seconds: Stat,
}

impl CaseReport {
    /// Builds a case and computes its ratios from the two sides' runs.
    pub fn new(info: CaseInfo, ours: SideReport, peer: SideReport, commands: Vec<String>) -> Self {
        let ratio = Stat::new(ratios(
            &ours.value.runs,
            &peer.value.runs,
            info.higher_is_better,
        ));
        let ratio_per_cpu = Stat::new(ratios(
            &ours.per_cpu_second.runs,
            &peer.per_cpu_second.runs,
            true,
        ));
        CaseReport {
            info,
            ours,
            peer,
            ratio,
            ratio_per_cpu,
            commands,
        }
    }
}

/// Formats a number compactly: 1.23M, 45.6k, 190, 12.3, 0.42.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), num)
}

/// `1.23× (0.98–1.40)` for a ratio stat.
pub fn ratio_cell(s: &Stat) -> String {
    match (s.median, s.min, s.max) {
        (Some(m), Some(lo), Some(hi)) if s.runs.len() > 1 => format!("{m:.2}× ({lo:.2}–{hi:.2})"),
        (Some(m), _, _) => format!("{m:.2}×"),
        _ => "–".into(),
    }
}

/// `0.95 + 5.80` (user + kernel µs per op, medians), or `–`.
fn split(side: &SideReport) -> String {
    match (side.user_us_per_op.median, side.system_us_per_op.median) {
        (Some(u), Some(k)) => format!("{u:.2} + {k:.2}"),
        _ => "–".into(),
    }
}

fn latency(side: &SideReport) -> String {
    format!("{} / {}", opt(side.p50_us.median), opt(side.p99_us.median))
}

/// Renders the suite as a Markdown section headed `## <suite>`.
pub fn markdown(r: &SuiteReport) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(s, "## {}\n", r.suite);
    let kind = if r.quick {
        "quick smoke run (not for judging speed)"
    } else {
        "full run"
    };
    let _ = writeln!(s, "{} UTC, {kind}, {} run(s) per side.  ", r.date, r.runs);
    let _ = writeln!(
        s,
        "Machine: {} cores, {}, Linux {}.\n",
        m.cores, m.cpu_model, m.kernel
    );
    let _ = writeln!(
        s,
        "Values are medians over runs; ratios are per run, median (min–max); \
         a ratio above 1 means ours is better.\n"
    );
    let cpu = r.cases.iter().any(|c| !c.ours.per_cpu_second.is_empty());
    let split_cpu = r.cases.iter().any(|c| !c.ours.user_us_per_op.is_empty());
    let lat = r
        .cases
        .iter()
        .any(|c| !c.ours.p50_us.is_empty() || !c.peer.p50_us.is_empty());
    let mut head = vec![
        "case",
        "metric",
        "ours",
        "peer",
        "value",
        "peer value",
        "ratio",
    ];
    if cpu {
        head.extend(["ours per CPU-s", "peer per CPU-s", "ratio per CPU-s"]);
    }
    if split_cpu {
        head.extend(["ours µs/op user + kernel", "peer µs/op user + kernel"]);
    }
    if lat {
        head.extend(["ours p50/p99 µs", "peer p50/p99 µs"]);
    }
    if cpu {
        head.push("other CPU-s");
    }
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
    for c in &r.cases {
        let pin = if c.info.pinned { "" } else { " (unpinned)" };
        let mut row = vec![
            format!("{}{pin}", c.info.name),
            format!("{} ({})", c.info.metric, c.info.unit),
            c.ours.name.clone(),
            c.peer.name.clone(),
            opt(c.ours.value.median),
            opt(c.peer.value.median),
            ratio_cell(&c.ratio),
        ];
        if cpu {
            row.push(opt(c.ours.per_cpu_second.median));
            row.push(opt(c.peer.per_cpu_second.median));
            row.push(ratio_cell(&c.ratio_per_cpu));
        }
        if split_cpu {
            row.push(split(&c.ours));
            row.push(split(&c.peer));
        }
        if lat {
            row.push(latency(&c.ours));
            row.push(latency(&c.peer));
        }
        if cpu {
            let noise = c
                .ours
                .noise_cpu_seconds
                .max
                .into_iter()
                .chain(c.peer.noise_cpu_seconds.max);
            row.push(opt(noise.reduce(f64::max)));
        }
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\nNotes:\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn side(name: &str, values: &[f64], per_cpu: &[f64]) -> SideReport {
        SideReport {
            name: name.into(),
            value: Stat::new(values.to_vec()),
            per_cpu_second: Stat::new(per_cpu.to_vec()),
            ..SideReport::default()
        }
    }

    pub(crate) fn sample() -> SuiteReport {
        let mut ours = side("seastar", &[150e3, 160e3, 140e3], &[200e3, 210e3, 190e3]);
        ours.p50_us = Stat::new(vec![12.0]);
        ours.p99_us = Stat::new(vec![30.5]);
        let peer = side("tokio", &[100e3, 100e3, 100e3], &[100e3, 100e3, 100e3]);
        let info = CaseInfo {
            name: "echo 64 B, 1 conn".into(),
            metric: "throughput".into(),
            unit: "msg/s".into(),
            higher_is_better: true,
            pinned: true,
        };
        let case = CaseReport::new(info, ours, peer, vec![]);
        SuiteReport {
            suite: "net".into(),
            quick: false,
            runs: 3,
            date: "2026-11-22 03:00".into(),
            machine: Machine {
                cores: 2,
                cpu_model: "AMD EPYC".into(),
                kernel: "6.18.0".into(),
            },
            notes: vec!["a note".into()],
            cases: vec![case],
        }
    }

    #[test]
    fn case_ratios() {
        let c = &sample().cases[0];
        assert_eq!(c.ratio.median, Some(1.5));
        assert_eq!((c.ratio.min, c.ratio.max), (Some(1.4), Some(1.6)));
        assert_eq!(c.ratio_per_cpu.median, Some(2.0));
    }

    #[test]
    fn markdown_table() {
        let md = markdown(&sample());
        assert!(md.starts_with("## net\n"));
        assert!(md.contains("Machine: 2 cores, AMD EPYC, Linux 6.18.0."));
        assert!(md.contains(
            "| echo 64 B, 1 conn | throughput (msg/s) | seastar | tokio | 150.0k | 100.0k | \
             1.50× (1.40–1.60) | 200.0k | 100.0k | 2.00× (1.90–2.10) | 12.0 / 30.5 | – / – | – |"
        ));
        assert!(md.contains("- a note"));
        assert!(
            !md.contains("user + kernel"),
            "no split column without data"
        );
    }

    #[test]
    fn markdown_splits_user_and_kernel_time() {
        let mut r = sample();
        let c = &mut r.cases[0];
        c.ours.user_us_per_op = Stat::new(vec![0.9, 1.0, 1.1]);
        c.ours.system_us_per_op = Stat::new(vec![5.5, 5.75, 6.0]);
        let md = markdown(&r);
        assert!(md.contains("| ours µs/op user + kernel | peer µs/op user + kernel |"));
        assert!(md.contains("| 2.00× (1.90–2.10) | 1.00 + 5.75 | – | 12.0 / 30.5 |"));
        // Older records (without the split) still load.
        let mut old = serde_json::to_value(sample()).unwrap();
        for side in ["ours", "peer"] {
            let side = old["cases"][0][side].as_object_mut().unwrap();
            assert!(side.remove("user_us_per_op").is_some());
            assert!(side.remove("system_us_per_op").is_some());
        }
        let back: SuiteReport = serde_json::from_value(old).unwrap();
        assert!(back.cases[0].ours.user_us_per_op.is_empty());
    }

    #[test]
    fn json_round_trip() {
        let r = sample();
        let json = serde_json::to_string_pretty(&r).unwrap();
        let back: SuiteReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.cases[0].ratio, r.cases[0].ratio);
        assert!(json.contains("\"ratio_per_cpu\""));
    }

    #[test]
    fn numbers() {
        assert_eq!(num(1_234_567.0), "1.23M");
        assert_eq!(num(45_600.0), "45.6k");
        assert_eq!(num(190.4), "190");
        assert_eq!(num(0.421), "0.42");
    }
}
