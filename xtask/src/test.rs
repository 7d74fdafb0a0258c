//! `cargo xtask test`: lint, the test suite once per reactor backend, the loom models.

use crate::cmd;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `cargo xtask test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Which reactor backend(s) to run the test suite on (`SEASTAR_REACTOR_BACKEND`).
    #[arg(long, value_enum, default_value_t = Backend::Both)]
    backend: Backend,
    /// Skip `cargo fmt --check` and `cargo clippy`.
    #[arg(long)]
    no_lint: bool,
    /// Extra arguments for the test runner (`cargo nextest run` or `cargo test`),
    /// e.g. a name filter or nextest's `-E 'package(xtask)'`; `-p` does not
    /// narrow the run, which always has `--workspace`.
    #[arg(last = true)]
    extra: Vec<String>,
}

/// A reactor backend selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    #[value(name = "io_uring")]
    IoUring,
    Epoll,
    Both,
}

impl Backend {
    fn names(self) -> &'static [&'static str] {
        match self {
            Backend::IoUring => &["io_uring"],
            Backend::Epoll => &["epoll"],
            Backend::Both => &["io_uring", "epoll"],
        }
    }
}

struct Step {
    name: String,
    cmd: Command,
}

fn step(name: impl Into<String>, cmd: Command) -> Step {
    Step {
        name: name.into(),
        cmd,
    }
}

/// Builds the list of steps, in the order they run.
fn plan(args: &TestArgs, nextest: bool, loom: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    if !args.no_lint {
        steps.push(step("fmt", cmd::cargo(["fmt", "--all", "--check"])));
        let clippy = [
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ];
        steps.push(step("clippy", cmd::cargo(clippy)));
    }
    for backend in args.backend.names() {
        let mut c = if nextest {
            cmd::cargo([
                "nextest",
                "run",
                "--workspace",
                "--all-features",
                "--no-fail-fast",
            ])
        } else {
            cmd::cargo(["test", "--workspace", "--all-features"])
        };
        c.args(&args.extra).env("SEASTAR_REACTOR_BACKEND", backend);
        steps.push(step(format!("tests ({backend})"), c));
    }
    if nextest {
        steps.push(step(
            "doctests",
            cmd::cargo(["test", "--workspace", "--all-features", "--doc"]),
        ));
    }
    if loom {
        let mut c = cmd::cargo(["test", "-p", "seastar-core", "--release", "--lib", "loom"]);
        // Bounded preemptions keep the models to seconds; the handshakes
        // they check need at most three preemptions to go wrong.
        c.env("RUSTFLAGS", "--cfg loom")
            .env("LOOM_MAX_PREEMPTIONS", "3")
            .env("CARGO_TARGET_DIR", cmd::root().join("target/loom"));
        steps.push(step("loom", c));
    }
    steps
}

/// Runs the steps, stopping at the first failure, and prints a summary.
pub fn run(args: &TestArgs) -> Result<()> {
    let nextest = cmd::succeeds(&mut cmd::cargo(["nextest", "--version"]));
    if !nextest {
        eprintln!("xtask: cargo-nextest not found; using `cargo test` (doctests included)");
    }
    let core_manifest = cmd::root().join("crates/seastar-core/Cargo.toml");
    let loom = std::fs::read_to_string(core_manifest).is_ok_and(|s| s.contains("loom"));
    let mut results: Vec<(String, Option<bool>, Duration)> = Vec::new();
    let mut failed = None;
    for mut s in plan(args, nextest, loom) {
        if failed.is_some() {
            results.push((s.name, None, Duration::ZERO));
            continue;
        }
        eprintln!("\n=== xtask test: {} ===", s.name);
        let start = Instant::now();
        let outcome = cmd::run(&mut s.cmd);
        let ok = outcome.is_ok();
        if let Err(err) = outcome {
            failed = Some(format!("step `{}` failed: {err:#}", s.name));
        }
        results.push((s.name, Some(ok), start.elapsed()));
    }
    if !loom {
        results.push((
            "loom (seastar-core has no loom dependency)".into(),
            None,
            Duration::ZERO,
        ));
    }
    eprintln!("\n=== xtask test summary ===");
    for (name, ok, took) in &results {
        let status = match ok {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "skipped",
        };
        let took = if ok.is_some() {
            format!("{:.1} s", took.as_secs_f64())
        } else {
            String::new()
        };
        eprintln!("  {status:<8} {took:>9}  {name}");
    }
    match failed {
        Some(msg) => bail!(msg),
        None => {
            eprintln!("all steps passed");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &TestArgs, nextest: bool, loom: bool) -> Vec<String> {
        plan(args, nextest, loom)
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn plan_orders_steps() {
        let args = TestArgs {
            backend: Backend::Both,
            no_lint: false,
            extra: vec![],
        };
        assert_eq!(
            names(&args, true, true),
            [
                "fmt",
                "clippy",
                "tests (io_uring)",
                "tests (epoll)",
                "doctests",
                "loom"
            ]
        );
        let args = TestArgs {
            backend: Backend::Epoll,
            no_lint: true,
            extra: vec!["-x".into()],
        };
        assert_eq!(names(&args, false, false), ["tests (epoll)"]);
        let steps = plan(&args, false, false);
        assert!(cmd::show(&steps[0].cmd).ends_with("cargo test --workspace --all-features -x"));
    }
}
