//! Suite `rpc`: 64-byte echo calls, 1 and 128 in flight on one connection.
//! Ours: apps/rpc (`rpc server --smp 1`), measured twice per depth: the
//! native protocol (`--port`) and our gRPC (`--grpc-port`, tonic services
//! on hyper HTTP/2 on the shard); peer: the same `echo.Echo` service on
//! tonic's own transport on tokio current_thread (bench/peers
//! `tonic-echo`). Load: `rpc bench --protocol auto` pinned to CPU 1 (native
//! when the server negotiates it, gRPC otherwise), so each case runs one
//! load command against both sides. The figure of merit is calls per
//! server CPU-second (the issue's targets: native >= 3x tonic, our gRPC
//! >= 1.2x).
//!
//! TLS: the same cases with `rpc server --tls-cert/--tls-key` (both ports
//! over TLS) against tonic on tokio-rustls (bench/tls-peers
//! `tonic-rustls-echo`: TLS 1.3, ALPN `h2`, rustls on `ring` as ours), the
//! load trusting the certificate (`rpc bench --tls-ca`); one ECDSA P-256
//! certificate made at run time.

use super::http::certificate;
use super::{last_json_line, strings};
use crate::bench::Ctx;
use crate::bench::peers;
use crate::bench::report::{CaseInfo, CaseReport};
use crate::bench::runner::{LoadCmd, LoadSample, RunOpts, ServerCase, ServerCmd, run_case};
use crate::cmd;
use anyhow::{Result, bail};
use serde::Deserialize;

const IN_FLIGHT: [u32; 2] = [1, 128];
const SIZE: u32 = 64;

/// Builds apps/rpc in release; `(native server, grpc server, load)`.
fn ours(ctx: &Ctx) -> Result<(ServerCmd, ServerCmd, std::path::PathBuf)> {
    if ctx
        .meta
        .packages_under("apps/rpc")
        .all(|p| p.targets_of("bin").all(|b| b != "rpc"))
    {
        bail!("apps/rpc (binary `rpc`) does not exist: nothing to measure");
    }
    cmd::run(&mut cmd::cargo([
        "build",
        "--release",
        "-p",
        "rpc",
        "--bin",
        "rpc",
    ]))?;
    let bin = ctx.meta.release_dir().join("rpc");
    let server = |name: &str, native: &str, grpc: &str| ServerCmd {
        name: name.into(),
        program: bin.clone(),
        args: strings(&[
            "server",
            "--port",
            native,
            "--grpc-port",
            grpc,
            "--address",
            "127.0.0.1",
            "--smp",
            "1",
        ]),
    };
    Ok((
        server("native", "{port}", "0"),
        server("our gRPC", "0", "{port}"),
        bin,
    ))
}

/// Runs the rpc cases.
pub fn run(ctx: &Ctx, notes: &mut Vec<String>) -> Result<Vec<CaseReport>> {
    let (native, grpc, load_bin) = ours(ctx)?;
    if let Some(argv) = &ctx.ours_cmd {
        notes.push(format!(
            "--ours-cmd ({}) ignored: the rpc suite runs apps/rpc in two modes",
            argv.join(" ")
        ));
    }
    peers::ensure_taskset()?;
    let bin = peers::build(&ctx.meta)?;
    let tonic = ServerCmd {
        name: "tonic".into(),
        program: bin.join("tonic-echo"),
        args: strings(&["--port", "{port}"]),
    };
    let opts = RunOpts {
        runs: ctx.runs,
        duration_s: if ctx.quick { 2.0 } else { 10.0 },
        warmup_s: if ctx.quick { 0.5 } else { 2.0 },
        log_dir: ctx.out_dir.join("logs"),
        only: ctx.only.clone(),
    };
    let mut out = cases(
        &[&native, &grpc],
        &tonic,
        "tonic on tokio",
        &load_bin,
        &[],
        &opts,
        notes,
    )?;

    // TLS: both of ours with a certificate, against tonic over tokio-rustls.
    let (cert, key) = certificate(&ctx.out_dir.join("tls"))?;
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    cmd::run(&mut cmd::cargo([
        "build",
        "--release",
        "-p",
        peers::TLS_PEERS_PACKAGE,
        "--bin",
        "tonic-rustls-echo",
    ]))?;
    let tls = |s: &ServerCmd| {
        let mut s = s.clone();
        s.name = format!("{} over TLS", s.name);
        s.args
            .extend(strings(&["--tls-cert", &cert_s, "--tls-key", &key_s]));
        s
    };
    let tonic_tls = ServerCmd {
        name: "tonic-rustls".into(),
        program: ctx.meta.release_dir().join("tonic-rustls-echo"),
        args: strings(&["--port", "{port}", "--cert", &cert_s, "--key", &key_s]),
    };
    out.extend(cases(
        &[&tls(&native), &tls(&grpc)],
        &tonic_tls,
        "tonic on tokio-rustls",
        &load_bin,
        &strings(&["--tls-ca", &cert_s]),
        &opts,
        notes,
    )?);
    notes.push(
        "rpc: targets are on calls per server CPU-second: native >= 3x tonic on tokio, our gRPC >= 1.2x"
            .into(),
    );
    notes.push(
        "rpc TLS: one certificate (ECDSA P-256, made at run time), TLS 1.3 (rustls on ring both sides), \
         one connection per run: the handshake is not measured"
            .into(),
    );
    Ok(out)
}

/// The echo cases at each depth: each of `ours` against `peer`, the load
/// (`rpc bench --protocol auto`) with `extra` arguments.
fn cases(
    ours: &[&ServerCmd],
    peer: &ServerCmd,
    peer_name: &str,
    load_bin: &std::path::Path,
    extra: &[String],
    opts: &RunOpts,
    notes: &mut Vec<String>,
) -> Result<Vec<CaseReport>> {
    let mut out = Vec::new();
    for depth in IN_FLIGHT {
        let mut args = strings(&["bench", "--addr", "{addr}", "--protocol", "auto"]);
        args.extend(strings(&["--in-flight", &depth.to_string()]));
        args.extend(strings(&["--size", &SIZE.to_string()]));
        args.extend(strings(&["--duration", "{duration}", "--json"]));
        args.extend(extra.iter().cloned());
        let load = LoadCmd {
            program: load_bin.to_path_buf(),
            args,
            parse: parse_rpc_bench,
        };
        for ours in ours {
            let info = CaseInfo {
                name: format!(
                    "{SIZE} B echo calls, {depth} in flight, {} vs {peer_name}",
                    ours.name
                ),
                metric: "throughput".into(),
                unit: "calls/s".into(),
                higher_is_better: true,
                pinned: true,
            };
            let case = ServerCase {
                info,
                ours: (*ours).clone(),
                peer: peer.clone(),
                load: load.clone(),
            };
            out.extend(run_case(&case, opts, notes)?);
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct RpcBench {
    calls: u64,
    errors: u64,
    calls_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Parses the last JSON line of `rpc bench --json`.
pub fn parse_rpc_bench(out: &str) -> Result<LoadSample> {
    let r: RpcBench = last_json_line(out, "bad rpc bench JSON")?;
    if r.calls == 0 {
        bail!("rpc bench completed no call ({} errors)", r.errors);
    }
    Ok(LoadSample {
        throughput: r.calls_per_sec,
        ops: Some(r.calls as f64),
        p50_us: Some(r.p50_us),
        p99_us: Some(r.p99_us),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_output() {
        let out = "{\"protocol\":\"Native\",\"calls\":1000,\"errors\":0,\"duration_s\":1.000,\
                   \"calls_per_sec\":1000.0,\"p50_us\":20.0,\"p99_us\":50.0}\n";
        let s = parse_rpc_bench(out).unwrap();
        assert_eq!(s.throughput, 1000.0);
        assert_eq!(
            (s.ops, s.p50_us, s.p99_us),
            (Some(1000.0), Some(20.0), Some(50.0))
        );
        assert!(parse_rpc_bench("nothing").is_err());
        assert!(
            parse_rpc_bench(r#"{"calls":0,"errors":3,"calls_per_sec":0,"p50_us":0,"p99_us":0}"#)
                .is_err()
        );
    }
}
