//! Suite `net`: TCP echo, 64-byte ping-pong, 1 and 64 connections.
//! Ours: apps/echo (`echo --port P --address 127.0.0.1 --smp 1`); peers: a
//! tokio current_thread echo server (bench/peers `tokio-echo`, what a user
//! would otherwise pick) and a bare hand-written epoll echo (`epoll-echo`,
//! the floor: what is left above it is framework overhead); load:
//! `echo-load`.

use super::{last_json_line, ours_override, strings};
use crate::bench::Ctx;
use crate::bench::peers;
use crate::bench::report::{CaseInfo, CaseReport};
use crate::bench::runner::{LoadCmd, LoadSample, RunOpts, ServerCase, ServerCmd, run_case};
use crate::cmd;
use anyhow::{Result, bail};
use serde::Deserialize;

const CONNECTIONS: [u32; 2] = [1, 64];
const SIZE: u32 = 64;

/// Our echo server: the `--ours-cmd` override, or apps/echo built in release.
fn ours(ctx: &Ctx) -> Result<ServerCmd> {
    if let Some(cmd) = ours_override(ctx) {
        return Ok(cmd);
    }
    let Some(pkg) = ctx
        .meta
        .packages_under("apps/echo")
        .find(|p| p.targets_of("bin").any(|b| b == "echo"))
    else {
        bail!(
            "apps/echo does not exist yet: the net suite measures the echo app (binary `echo`, \
             flags --port <p> --address 127.0.0.1 --smp 1); nothing to compare"
        );
    };
    cmd::run(&mut cmd::cargo([
        "build",
        "--release",
        "-p",
        &pkg.name,
        "--bin",
        "echo",
    ]))?;
    let args = strings(&["--port", "{port}", "--address", "127.0.0.1", "--smp", "1"]);
    Ok(ServerCmd {
        name: "seastar".into(),
        program: ctx.meta.release_dir().join("echo"),
        args,
    })
}

/// Runs the echo cases.
pub fn run(ctx: &Ctx, notes: &mut Vec<String>) -> Result<Vec<CaseReport>> {
    let ours = ours(ctx)?;
    peers::ensure_taskset()?;
    let bin = peers::build(&ctx.meta)?;
    let peers =
        [("tokio", "tokio-echo"), ("bare epoll", "epoll-echo")].map(|(name, b)| ServerCmd {
            name: name.into(),
            program: bin.join(b),
            args: strings(&["--port", "{port}"]),
        });
    let opts = RunOpts {
        runs: ctx.runs,
        duration_s: if ctx.quick { 2.0 } else { 10.0 },
        warmup_s: if ctx.quick { 0.5 } else { 2.0 },
        log_dir: ctx.out_dir.join("logs"),
        only: ctx.only.clone(),
    };
    let mut out = Vec::new();
    for conns in CONNECTIONS {
        let load = LoadCmd {
            program: bin.join("echo-load"),
            args: vec![
                "--addr".into(),
                "{addr}".into(),
                "--connections".into(),
                conns.to_string(),
                "--size".into(),
                SIZE.to_string(),
                "--duration".into(),
                "{duration}".into(),
                "--json".into(),
            ],
            parse: parse_echo_load,
        };
        let plural = if conns == 1 { "" } else { "s" };
        for peer in &peers {
            let info = CaseInfo {
                name: format!(
                    "echo {SIZE} B ping-pong, {conns} conn{plural}, vs {}",
                    peer.name
                ),
                metric: "throughput".into(),
                unit: "msg/s".into(),
                higher_is_better: true,
                pinned: true,
            };
            let case = ServerCase {
                info,
                ours: ours.clone(),
                peer: peer.clone(),
                load: load.clone(),
            };
            out.extend(run_case(&case, &opts, notes)?);
        }
    }
    out.extend(run_case(&listener_policies(&ours, &bin), &opts, notes)?);
    Ok(out)
}

/// Short-lived connections (one message each) against two shards: the
/// `per-shard` listener (ours column) against `distribute`, the default
/// since this case measured it ahead (peer column). Unpinned: both servers use both cores, as does the load.
fn listener_policies(ours: &ServerCmd, bin: &std::path::Path) -> ServerCase {
    let with = |name: &str, policy: &str| {
        let mut args = ours.args.clone();
        if let Some(i) = args.iter().position(|a| a == "--smp") {
            args[i + 1] = "2".into();
        }
        args.extend(strings(&["--listener", policy]));
        ServerCmd {
            name: name.into(),
            program: ours.program.clone(),
            args,
        }
    };
    ServerCase {
        info: CaseInfo {
            name: "short connections (one 64 B echo each, 16 at a time), 2 shards: \
                   per-shard vs distribute listener"
                .into(),
            metric: "throughput".into(),
            unit: "conn/s".into(),
            higher_is_better: true,
            pinned: false,
        },
        ours: with("per-shard", "per-shard"),
        peer: with("distribute", "distribute"),
        load: LoadCmd {
            program: bin.join("echo-load"),
            args: strings(&[
                "--addr",
                "{addr}",
                "--connections",
                "16",
                "--size",
                "64",
                "--reconnect",
                "--duration",
                "{duration}",
                "--json",
            ]),
            parse: parse_echo_load,
        },
    }
}

#[derive(Deserialize)]
struct EchoLoad {
    messages: u64,
    msgs_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Parses the last JSON line of `echo-load --json`.
pub fn parse_echo_load(out: &str) -> Result<LoadSample> {
    let r: EchoLoad = last_json_line(out, "bad echo-load JSON")?;
    if r.messages == 0 {
        bail!("echo-load completed no message");
    }
    Ok(LoadSample {
        throughput: r.msgs_per_sec,
        ops: Some(r.messages as f64),
        p50_us: Some(r.p50_us),
        p99_us: Some(r.p99_us),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_load_output() {
        let out = "connected 64\n{\"connections\":64,\"size\":64,\"duration_s\":2.0,\"messages\":200000,\
                   \"msgs_per_sec\":100000.0,\"p50_us\":14.1,\"p99_us\":40.2,\"max_us\":900.0}\n";
        let s = parse_echo_load(out).unwrap();
        assert_eq!(s.throughput, 100_000.0);
        assert_eq!(
            (s.ops, s.p50_us, s.p99_us),
            (Some(200_000.0), Some(14.1), Some(40.2))
        );
        assert!(parse_echo_load("nothing").is_err());
        assert!(
            parse_echo_load(r#"{"messages":0,"msgs_per_sec":0,"p50_us":0,"p99_us":0}"#).is_err()
        );
    }
}
