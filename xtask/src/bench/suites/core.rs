//! Suite `core`: seastar-core's criterion benches, as ratios against their anchors.
//!
//! Convention for bench authors: each criterion group is one operation
//! (`spawn_await`, `yield`, ...) holding a function named `seastar` and one
//! function per peer, named after it (`tokio`, `crossbeam`, ...). The ratio is
//! peer time / seastar time, so above 1 means seastar is faster.
//!
//! glommio is a peer too, from its own package outside the workspace
//! (`bench/peers/glommio-core`, so glommio is no dependency of any crate of
//! ours): its bench names its functions `glommio` in groups named as ours,
//! runs in the same run right after ours, and writes into the same
//! criterion directory, so its groups merge with ours.

use crate::bench::Ctx;
use crate::bench::criterion::{self, Estimate};
use crate::bench::peers;
use crate::bench::report::{CaseInfo, CaseReport, SideReport};
use crate::bench::stats::Stat;
use crate::cmd;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

const PACKAGE: &str = "seastar-core";
const OURS: &str = "seastar";
/// The glommio peer's package (its own workspace), from the workspace root.
const GLOMMIO_MANIFEST: &str = "bench/peers/glommio-core/Cargo.toml";
/// Its target directory, under the workspace's (its lock file differs).
const GLOMMIO_TARGET: &str = "bench-glommio";

/// `cargo bench` of the glommio peer package with `args` after `--`,
/// writing criterion's results under `criterion_dir`.
fn glommio_bench(
    ctx: &Ctx,
    criterion_dir: &std::path::Path,
    args: &[&str],
) -> std::process::Command {
    let manifest = ctx.meta.workspace_root.join(GLOMMIO_MANIFEST);
    let target = ctx.meta.target_directory.join(GLOMMIO_TARGET);
    let mut c = cmd::cargo([
        "bench".as_ref(),
        "--manifest-path".as_ref(),
        manifest.as_os_str(),
    ]);
    c.arg("--target-dir").arg(&target).args(args);
    c.env("CRITERION_HOME", criterion_dir);
    c
}

/// criterion's arguments: short for `--quick`, its defaults otherwise;
/// `--only` becomes criterion's filter (a regex of benchmark ids, so plain
/// text matches as a substring).
fn criterion_args(ctx: &Ctx) -> Vec<&str> {
    let mut args = if ctx.quick {
        vec![
            "--warm-up-time",
            "0.5",
            "--measurement-time",
            "1",
            "--sample-size",
            "10",
            "--noplot",
        ]
    } else {
        vec![]
    };
    args.extend(ctx.only.as_deref());
    args
}

/// Median ns per (group, function), one map per run.
type RunResults = Vec<BTreeMap<(String, String), f64>>;

/// The command that measured each (group, function).
type Commands = BTreeMap<(String, String), String>;

/// Runs the benches (pinned to CPU 0) `ctx.runs` times and reports each group's
/// peers against `seastar`.
pub fn run(ctx: &Ctx, notes: &mut Vec<String>) -> Result<Vec<CaseReport>> {
    let pkg = ctx
        .meta
        .package(PACKAGE)
        .context("no seastar-core package in the workspace")?;
    let benches: Vec<&str> = pkg.targets_of("bench").collect();
    if benches.is_empty() {
        bail!(
            "seastar-core has no bench targets yet (crates/seastar-core/benches/*.rs): nothing to measure"
        );
    }
    peers::ensure_taskset()?;
    // Build unpinned (both cores), then run pinned.
    // All features: some benches (alloc) need theirs.
    cmd::run(&mut cmd::cargo([
        "bench",
        "-p",
        PACKAGE,
        "--all-features",
        "--no-run",
    ]))?;
    let criterion_dir = ctx.meta.target_directory.join("criterion");
    // A peer that does not build is reported, not fatal.
    let glommio = match cmd::run(&mut glommio_bench(ctx, &criterion_dir, &["--no-run"])) {
        Ok(()) => true,
        Err(e) => {
            notes.push(format!("glommio peer not measured: {e:#}"));
            false
        }
    };
    let mut runs: RunResults = Vec::new();
    let mut commands: Commands = BTreeMap::new();
    for run in 1..=ctx.runs {
        eprintln!("=== core: run {run} of {} ===", ctx.runs);
        let mut results = BTreeMap::new();
        let ours = benches.iter().map(|bench| {
            let mut c = cmd::cargo([
                "bench",
                "-p",
                PACKAGE,
                "--all-features",
                "--bench",
                bench,
                "--",
            ]);
            c.args(criterion_args(ctx));
            c
        });
        let peers = glommio.then(|| {
            let mut c = glommio_bench(ctx, &criterion_dir, &["--bench", "glommio", "--"]);
            c.args(criterion_args(ctx));
            c
        });
        for c in ours.chain(peers) {
            // Coarse file timestamps may lag a little; the benches take far longer.
            let since = SystemTime::now() - Duration::from_secs(1);
            let mut c = cmd::pin("0", &c);
            cmd::run(&mut c)?;
            for Estimate {
                group,
                function,
                median_ns,
            } in criterion::collect(&criterion_dir, Some(since))?
            {
                commands
                    .entry((group.clone(), function.clone()))
                    .or_insert_with(|| cmd::show(&c));
                results.insert((group, function), median_ns);
            }
        }
        runs.push(results);
    }
    if runs.iter().all(BTreeMap::is_empty) {
        bail!(
            "the benches {} wrote no criterion results under {} (expected \
             <group>/<function>/new/estimates.json; are they criterion benches?)",
            benches.join(", "),
            criterion_dir.display()
        );
    }
    notes.push(format!(
        "criterion, process pinned to CPU 0 (`taskset -c 0`); two-thread benches place \
         both sides explicitly (ours: shards 0 and 1 on CPUs 0 and 1; anchors: client thread \
         on CPU 0, server thread on CPU 1; `unpinned` groups: both sides float over CPUs 0-1); \
         each group runs its `{OURS}` and peer functions back to back in one process (glommio's \
         in its own process right after, same run: `{GLOMMIO_MANIFEST}`, its two-executor \
         groups pinned as ours, client on CPU 0, server on CPU 1, over `shared_channel`; \
         `idle_poll` groups spin 200 us before parking, `poll_mode` groups an hour); value = \
         median time per operation; ratio = peer time / {OURS} time, per run"
    ));
    let cases = cases(&runs, &commands, notes);
    if cases.is_empty() {
        bail!(
            "criterion results found, but no group has both a `{OURS}` function and a peer \
             function: name them `{OURS}` and `tokio` (etc.) inside one group per operation"
        );
    }
    Ok(cases)
}

/// One case per (group, peer function), ratios = peer time / seastar time per run.
fn cases(runs: &RunResults, commands: &Commands, notes: &mut Vec<String>) -> Vec<CaseReport> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (group, function) in runs.iter().flat_map(BTreeMap::keys) {
        let fns = groups.entry(group).or_default();
        if !fns.contains(&function.as_str()) {
            fns.push(function);
        }
    }
    let series = |group: &str, function: &str| -> Vec<f64> {
        runs.iter()
            .map(|r| {
                r.get(&(group.to_string(), function.to_string()))
                    .copied()
                    .unwrap_or(f64::NAN)
            })
            .collect()
    };
    let mut out = Vec::new();
    for (group, functions) in groups {
        if !functions.contains(&OURS) {
            notes.push(format!(
                "group `{group}` has no `{OURS}` function ({}): skipped",
                functions.join(", ")
            ));
            continue;
        }
        let peers: Vec<&str> = functions.iter().copied().filter(|f| *f != OURS).collect();
        if peers.is_empty() {
            notes.push(format!(
                "group `{group}` has no peer function to compare with"
            ));
        }
        for peer in peers {
            let info = CaseInfo {
                name: group.to_string(),
                metric: "time per operation".into(),
                unit: "ns".into(),
                higher_is_better: false,
                pinned: true,
            };
            let side = |name: &str| SideReport {
                name: name.to_string(),
                value: Stat::new(series(group, name)),
                ..SideReport::default()
            };
            // Ours and the peer's (one command when one process ran both).
            let mut commands: Vec<String> = [OURS, peer]
                .iter()
                .filter_map(|f| commands.get(&(group.to_string(), f.to_string())).cloned())
                .collect();
            commands.dedup();
            out.push(CaseReport::new(info, side(OURS), side(peer), commands));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(entries: &[(&str, &str, f64)]) -> BTreeMap<(String, String), f64> {
        entries
            .iter()
            .map(|(g, f, v)| ((g.to_string(), f.to_string()), *v))
            .collect()
    }

    #[test]
    fn one_case_per_peer_with_peer_over_ours() {
        let runs = vec![
            run(&[
                ("yield", "seastar", 20.0),
                ("yield", "tokio", 440.0),
                ("yield", "glommio", 25.0),
            ]),
            run(&[
                ("yield", "seastar", 22.0),
                ("yield", "tokio", 440.0),
                ("odd", "tokio", 1.0),
            ]),
        ];
        let mut notes = Vec::new();
        let cases = cases(&runs, &BTreeMap::new(), &mut notes);
        let names: Vec<_> = cases
            .iter()
            .map(|c| (c.info.name.as_str(), c.peer.name.as_str()))
            .collect();
        assert_eq!(names, [("yield", "glommio"), ("yield", "tokio")]);
        let tokio = &cases[1];
        assert_eq!(tokio.ratio.runs, [22.0, 20.0]);
        assert_eq!(tokio.ratio.median, Some(21.0));
        // glommio is missing from run 2: only one ratio.
        assert_eq!(cases[0].ratio.runs, [1.25]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("`odd`"));
    }

    #[test]
    fn a_case_names_the_commands_of_both_sides() {
        let runs = vec![run(&[
            ("yield", "seastar", 20.0),
            ("yield", "tokio", 440.0),
            ("yield", "glommio", 25.0),
        ])];
        let key = |f: &str| ("yield".to_string(), f.to_string());
        let commands: Commands = [
            (key("seastar"), "cargo bench -p seastar-core".to_string()),
            (key("tokio"), "cargo bench -p seastar-core".to_string()),
            (
                key("glommio"),
                "cargo bench --manifest-path glommio".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let cases = cases(&runs, &commands, &mut Vec::new());
        assert_eq!(cases[0].peer.name, "glommio");
        assert_eq!(
            cases[0].commands,
            [
                "cargo bench -p seastar-core",
                "cargo bench --manifest-path glommio"
            ]
        );
        assert_eq!(cases[1].peer.name, "tokio");
        assert_eq!(cases[1].commands, ["cargo bench -p seastar-core"]);
    }
}
