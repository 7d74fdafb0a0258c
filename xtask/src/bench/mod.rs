//! `cargo xtask bench <suite>`: ours against the peer a user would otherwise
//! pick, side by side in one run, with JSON, Markdown and an SVG chart.
//!
//! Outputs: `target/bench/<suite>.{json,md,svg}`; a full (non `--quick`) run
//! also rewrites the suite's section of `BENCHMARKS.md`.

mod benchmarks_md;
mod chart;
mod criterion;
mod machine;
mod peers;
mod proc;
mod report;
mod runner;
mod server;
mod stats;
mod suites;

use crate::cmd;
use crate::metadata::Metadata;
use anyhow::{Context, Result};
use clap::Args;
use machine::Machine;
use report::SuiteReport;
use std::path::PathBuf;

/// Options of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Suite to run; `list` prints the suites.
    suite: String,
    /// Smoke run for CI: one run per side, a few seconds each (not for judging speed).
    #[arg(long)]
    quick: bool,
    /// Runs per side (interleaved A B A B ...); `--quick` makes it 1.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Harness testing only: replace our server with this command line
    /// (`{port}` is substituted). Results are not written to BENCHMARKS.md.
    #[arg(long, hide = true)]
    ours_cmd: Option<String>,
    /// Runs only the cases whose name contains this text (core: criterion
    /// benches whose id contains it). Results are not written to BENCHMARKS.md.
    #[arg(long)]
    only: Option<String>,
}

/// What a suite gets to work with.
#[derive(Debug)]
pub struct Ctx {
    /// Smoke run.
    pub quick: bool,
    /// Runs per side.
    pub runs: usize,
    /// Override of our server command (program, args), for testing the harness.
    pub ours_cmd: Option<Vec<String>>,
    /// Only the cases whose name contains this text (`--only`).
    pub only: Option<String>,
    /// The workspace.
    pub meta: Metadata,
    /// `target/bench`.
    pub out_dir: PathBuf,
}

/// Runs a suite (or lists them) and writes its results.
pub fn run(args: &BenchArgs) -> Result<()> {
    if args.suite == "list" {
        for s in suites::SUITES {
            println!("{:<8} {}", s.name, s.about);
        }
        return Ok(());
    }
    let suite = suites::find(&args.suite)?;
    let meta = Metadata::load()?;
    let out_dir = meta.target_directory.join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let ours_cmd = args
        .ours_cmd
        .as_ref()
        .map(|s| s.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|v| !v.is_empty());
    let ctx = Ctx {
        quick: args.quick,
        runs: if args.quick { 1 } else { args.runs as usize },
        ours_cmd,
        only: args.only.clone(),
        meta,
        out_dir,
    };
    let date = machine::now_utc();
    let mut notes = Vec::new();
    if let Some(only) = &args.only {
        notes.push(format!(
            "partial run: only the cases whose name contains `{only}`"
        ));
    }
    if let Some(cmd) = &args.ours_cmd {
        notes.push(format!(
            "harness test: our server was replaced by `{cmd}`; these are not our figures"
        ));
    }
    let cases = (suite.run)(&ctx, &mut notes)?;
    let report = SuiteReport {
        suite: suite.name.into(),
        quick: ctx.quick,
        runs: ctx.runs,
        date,
        machine: Machine::this(),
        notes,
        cases,
    };
    write(&ctx, &report)
}

fn write(ctx: &Ctx, report: &SuiteReport) -> Result<()> {
    let base = ctx.out_dir.join(&report.suite);
    let md = report::markdown(report);
    let files = [
        (
            base.with_extension("json"),
            serde_json::to_string_pretty(report)? + "\n",
        ),
        (base.with_extension("md"), md.clone()),
        (base.with_extension("svg"), chart::svg(report)?),
    ];
    for (path, text) in &files {
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }
    println!("{md}");
    for (path, _) in &files {
        println!("wrote {}", path.display());
    }
    if ctx.quick || ctx.ours_cmd.is_some() || ctx.only.is_some() {
        println!("(quick, partial or harness-test run: BENCHMARKS.md left as it is)");
        return Ok(());
    }
    let path = cmd::root().join("BENCHMARKS.md");
    let doc = match std::fs::read_to_string(&path) {
        Ok(doc) => doc,
        Err(_) => benchmarks_md::header(&report.machine),
    };
    std::fs::write(
        &path,
        benchmarks_md::replace_section(&doc, &report.suite, &md),
    )?;
    println!("updated {} (section `{}`)", path.display(), report.suite);
    Ok(())
}
