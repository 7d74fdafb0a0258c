//! The benchmark suites. Each issue that adds a subsystem adds its suite here.

mod core;
mod http;
mod io;
mod memcached;
mod native;
mod net;
mod rpc;

use super::Ctx;
use super::report::CaseReport;
use super::runner::ServerCmd;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// Owned copies of `args`.
fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The server `--ours-cmd` names, if given: it replaces a suite's own app.
fn ours_override(ctx: &Ctx) -> Option<ServerCmd> {
    ctx.ours_cmd.as_ref().map(|argv| ServerCmd {
        name: "ours (override)".into(),
        program: PathBuf::from(&argv[0]),
        args: argv[1..].to_vec(),
    })
}

/// The last line of `out` that starts a JSON object, parsed as `T`
/// (load generators print their report as one JSON line, after any log).
fn last_json_line<T: serde::de::DeserializeOwned>(out: &str, what: &str) -> Result<T> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("no JSON line ({what})"))?;
    serde_json::from_str(line).with_context(|| what.to_owned())
}

/// A suite: measures its cases, may add notes.
#[derive(Debug)]
pub struct Suite {
    /// Name on the command line and in the outputs.
    pub name: &'static str,
    /// One line for `cargo xtask bench list`.
    pub about: &'static str,
    /// Runs the suite.
    pub run: fn(&Ctx, &mut Vec<String>) -> Result<Vec<CaseReport>>,
}

/// All suites.
pub const SUITES: &[Suite] = &[
    Suite {
        name: "core",
        about: "runtime primitives: criterion benches of seastar-core, ratio vs tokio and other anchors",
        run: core::run,
    },
    Suite {
        name: "net",
        about: "TCP echo, 64 B ping-pong, 1 and 64 connections: apps/echo vs tokio current_thread",
        run: net::run,
    },
    Suite {
        name: "memcached",
        about: "apps/memcached vs stock memcached: 90% get under memaslap (1 and 2 cores, multi-get), 16-deep pipelining",
        run: memcached::run,
    },
    Suite {
        name: "native",
        about: "UDP memcached get over a veth between namespaces: ours on the native stack (AF_XDP) vs ours on posix vs stock memcached; CPU 0's whole CPU per op (root)",
        run: native::run,
    },
    Suite {
        name: "io",
        about: "4 KiB O_DIRECT random reads at depth 1/32/128: apps/io_tester vs fio (io_uring); I/O scheduler fairness",
        run: io::run,
    },
    Suite {
        name: "rpc",
        about: "64 B echo calls, 1 and 128 in flight: apps/rpc native protocol and our gRPC vs tonic on tokio",
        run: rpc::run,
    },
    Suite {
        name: "http",
        about: "apps/httpd hello route vs nginx and hyper on tokio (wrk, 64/256 conns, 16 per write; server CPU per request); seawreck vs wrk",
        run: http::run,
    },
];

/// The suite with this name; the error lists the suites.
pub fn find(name: &str) -> Result<&'static Suite> {
    match SUITES.iter().find(|s| s.name == name) {
        Some(s) => Ok(s),
        None => {
            let names: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
            bail!("no suite `{name}`; suites: {}", names.join(", "))
        }
    }
}
