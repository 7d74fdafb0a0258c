//! `cargo xtask test`: lint, the test suite once per reactor backend, the
//! loom models, seastar-core's syscall-free unit tests under Miri, and the
//! accounting allocator's tests in a release build with fat LTO.

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
    /// Skip the Miri step (it is skipped anyway, loudly, without nightly's
    /// `miri` component).
    #[arg(long)]
    no_miri: bool,
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

/// seastar-core's modules whose unit tests make no io_uring or epoll
/// syscall (Miri cannot run those): the SPSC rings, the run queue's ring
/// (unchecked indexing), the cross-shard call
/// protocol, the call-cell and buffer pools, promises, the timer queue, the
/// io_uring backend's operation table, the allocator's accounting. Test name filters for `cargo miri test`
/// (seastar-io's `AlignedBuf` runs in a second step).
const MIRI_FILTERS: &[&str] = &[
    "smp::ring::",
    "reactor::ring::",
    "task::cell::",
    "smp::call::",
    "smp::pool::",
    "io::pool::",
    "promise::",
    "timer::queue::",
    "reactor::uring::table::",
    "alloc::",
];

/// `cargo +nightly miri ...` through rustup (the `cargo` xtask was started
/// with is the stable one, which knows no `+toolchain`), without the
/// variables that would send cargo-miri back to the stable toolchain.
fn nightly_cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo"])
        .args(args)
        .current_dir(cmd::root())
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR");
    c
}

/// Whether `cargo +nightly miri` can run here.
fn miri_available() -> bool {
    cmd::succeeds(&mut nightly_cargo(["miri", "--version"]))
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
fn plan(args: &TestArgs, nextest: bool, loom: bool, miri: bool) -> Vec<Step> {
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
        // Every public item documented and every intra-doc link resolved.
        let mut doc = cmd::cargo(["doc", "--workspace", "--no-deps", "--all-features"]);
        doc.env("RUSTDOCFLAGS", "-D warnings");
        steps.push(step("doc", doc));
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
    if miri {
        let mut c = nightly_cargo([
            "miri",
            "test",
            "-p",
            "seastar-core",
            "--features",
            "alloc",
            "--lib",
            "--",
        ]);
        c.args(MIRI_FILTERS);
        // Default flags: Stacked Borrows, isolation on (these tests need no
        // clock and no file system), one seed (several would explore more
        // thread schedules but multiply the time).
        steps.push(step("miri", c));
        // seastar-io's `AlignedBuf` (raw allocation with an alignment).
        let c = nightly_cargo([
            "miri",
            "test",
            "-p",
            "seastar-io",
            "--lib",
            "--",
            "aligned::",
        ]);
        steps.push(step("miri (seastar-io)", c));
    }
    // The allocator's header read was undefined behaviour that only showed
    // once its methods were inlined into callers by LTO (a crash at start);
    // this build is the one that caught it.
    let mut c = cmd::cargo([
        "test",
        "-p",
        "seastar-core",
        "--release",
        "--features",
        "alloc",
        "--test",
        "alloc",
    ]);
    c.env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_TARGET_DIR", cmd::root().join("target/lto"));
    steps.push(step("alloc-lto", c));
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
    let miri = !args.no_miri && miri_available();
    if !args.no_miri && !miri {
        eprintln!(
            "\n!!! xtask test: Miri is NOT available (no nightly toolchain or no `miri` \
             component): the `miri` step is SKIPPED.\n!!! Install it with: rustup toolchain \
             install nightly --profile minimal --component miri,rust-src\n"
        );
    }
    let mut results: Vec<(String, Option<bool>, Duration)> = Vec::new();
    let mut free_after: Vec<Option<f64>> = Vec::new();
    let mut failed = None;
    for mut s in plan(args, nextest, loom, miri) {
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
        // Disk is a CI limit too: show what each step left free.
        free_after.push(free_gib(&cmd::root()));
    }
    if !loom {
        results.push((
            "loom (seastar-core has no loom dependency)".into(),
            None,
            Duration::ZERO,
        ));
    }
    if !miri {
        let why = if args.no_miri {
            "miri (--no-miri)"
        } else {
            "miri (NOT AVAILABLE: rustup toolchain install nightly --component miri,rust-src)"
        };
        results.push((why.into(), None, Duration::ZERO));
    }
    eprintln!("\n=== xtask test summary ===");
    for (i, (name, ok, took)) in results.iter().enumerate() {
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
        let free = match free_after.get(i).copied().flatten() {
            Some(gib) if ok.is_some() => format!("{gib:.1} GiB free"),
            _ => String::new(),
        };
        eprintln!("  {status:<8} {took:>9}  {free:>14}  {name}");
    }
    match failed {
        Some(msg) => bail!(msg),
        None => {
            eprintln!("all steps passed");
            Ok(())
        }
    }
}

/// Free space on the file system holding `path`, from `df -Pk`.
fn free_gib(path: &std::path::Path) -> Option<f64> {
    let out = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    parse_df_free_kib(&String::from_utf8_lossy(&out.stdout)).map(|kib| kib as f64 / 1048576.0)
}

/// The "Available" column (KiB) of `df -Pk`'s one data line.
fn parse_df_free_kib(out: &str) -> Option<u64> {
    out.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &TestArgs, nextest: bool, loom: bool, miri: bool) -> Vec<String> {
        plan(args, nextest, loom, miri)
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn df_output_gives_the_available_column() {
        let out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                   /dev/vda 264091588 78643200 17825792 82% /\n";
        assert_eq!(parse_df_free_kib(out), Some(17825792));
        assert_eq!(parse_df_free_kib("Filesystem\n"), None);
        assert_eq!(parse_df_free_kib(""), None);
    }

    #[test]
    fn plan_orders_steps() {
        let args = TestArgs {
            backend: Backend::Both,
            no_lint: false,
            no_miri: false,
            extra: vec![],
        };
        assert_eq!(
            names(&args, true, true, true),
            [
                "fmt",
                "clippy",
                "doc",
                "tests (io_uring)",
                "tests (epoll)",
                "doctests",
                "loom",
                "miri",
                "miri (seastar-io)",
                "alloc-lto"
            ]
        );
        let args = TestArgs {
            backend: Backend::Epoll,
            no_lint: true,
            no_miri: true,
            extra: vec!["-x".into()],
        };
        assert_eq!(
            names(&args, false, false, false),
            ["tests (epoll)", "alloc-lto"]
        );
        let steps = plan(&args, false, false, false);
        assert!(cmd::show(&steps[0].cmd).ends_with("cargo test --workspace --all-features -x"));
    }

    #[test]
    fn miri_runs_the_syscall_free_modules_of_seastar_core_on_nightly() {
        let args = TestArgs {
            backend: Backend::IoUring,
            no_lint: true,
            no_miri: false,
            extra: vec![],
        };
        let steps = plan(&args, false, false, true);
        let miri = steps
            .iter()
            .find(|s| s.name == "miri")
            .expect("a miri step");
        let line = cmd::show(&miri.cmd);
        assert!(
            line.contains("rustup run nightly cargo miri test -p seastar-core --features alloc --lib -- smp::ring::"),
            "{line}"
        );
        for f in MIRI_FILTERS {
            assert!(line.contains(f), "{line} lacks {f}");
        }
        let lto = steps
            .iter()
            .find(|s| s.name == "alloc-lto")
            .expect("an LTO step");
        assert!(cmd::show(&lto.cmd).contains("--release --features alloc --test alloc"));
    }
}
