//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! Subcommands: `test` (lint + the test suite on every reactor backend + loom),
//! `apps` / `run` (release builds of the apps), `package` (publish readiness)
//! and `bench` (the side-by-side benchmark harness, see `bench/mod.rs`).

mod apps;
mod bench;
mod cmd;
mod metadata;
mod netns;
mod package;
mod test;

use clap::{Parser, Subcommand};

/// Project automation for the seastar-rs workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// fmt check, clippy, cargo doc (warnings denied), the test suite once per reactor
    /// backend, then doctests, the loom models, Miri and the allocator's LTO build.
    Test(test::TestArgs),
    /// Build every app under apps/ in release and copy the binaries to target/apps/.
    Apps,
    /// Build one app in release and run it with the given arguments.
    Run {
        /// Package or binary name of the app (see `cargo xtask apps`).
        app: String,
        /// Arguments passed to the app unchanged.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check metadata, `cargo package` and `cargo doc -D warnings` every publishable crate.
    Package,
    /// Run a benchmark suite side by side with its peer (`cargo xtask bench list`).
    Bench(bench::BenchArgs),
    /// The native stack's test bed: two network namespaces joined by a veth pair (root).
    #[command(subcommand)]
    Netns(netns::NetnsCmd),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => test::run(&args),
        Command::Apps => apps::build_all().map(|_| ()),
        Command::Run { app, args } => apps::run(&app, &args),
        Command::Package => package::run(),
        Command::Bench(args) => bench::run(&args),
        Command::Netns(cmd) => netns::run(&cmd),
    };
    if let Err(err) = result {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}
