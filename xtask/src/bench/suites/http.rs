//! Suite `http`: apps/httpd's hello route (`GET /`, `Hello, world!\n`) on
//! one shard against nginx (Debian's `nginx-light`: one worker, no master
//! process, `return 200`, access log off, `keepalive_requests` raised) and
//! against hyper 1.x on a tokio current_thread runtime with the same
//! handler and hyper settings (bench/peers `hyper-hello`).
//!
//! Server on CPU 0, load on CPU 1; load from `wrk` (Debian's `wrk`) with
//! one thread, keep-alive:
//! - 64 and 256 connections, one request at a time per connection: a
//!   single wrk thread saturates near the servers' own rate, so the
//!   headline is requests per server CPU-second (its inverse is the server
//!   CPU time per request);
//! - pipelined: 16 requests per write (a wrk Lua script), 64 connections:
//!   the server is the bound, and one that writes the responses to one
//!   read together wins; hyper-tokio runs here twice, with `pipeline_flush`
//!   (one write per batch, but responses still buffered are lost when the
//!   connection closes with requests unread) and with hyper's default (a
//!   write per response, the guarantee ours keeps).
//!
//! HTTPS (httpd `--tls-port`, one shard) against nginx with TLS and
//! against hyper on tokio-rustls (bench/tls-peers `hyper-rustls-hello`):
//! the same certificate (ECDSA P-256, made with the openssl CLI at run
//! time, never kept), TLS 1.3 only, `TLS_AES_256_GCM_SHA384` (what
//! OpenSSL's client asks for first; nginx is held to it), X25519:
//! - keep-alive `GET /` over 64 connections from wrk (https URL): requests
//!   per server CPU-second, as above;
//! - full handshakes from `openssl s_time -new`: a fresh session per
//!   connection (never resumed: no ticket or session id is offered), no
//!   request, so the server's work is the handshake (key exchange,
//!   signature, two session tickets) and the connection; one connection at
//!   a time, so the client's own handshake bounds the rate, and the figure
//!   is handshakes per server CPU-second. wrk with `Connection: close`
//!   would add a request per handshake and gives no say over resumption.
//!
//! Each case runs ours and one peer interleaved (A B A B ...), a fresh
//! server per run. The last case compares the load generators instead:
//! seawreck against wrk, both with 64 connections against the same fresh
//! httpd (pinned as above); its "per CPU-second" is requests per *client*
//! CPU-second.

use super::{last_json_line, ours_override, strings};
use crate::bench::Ctx;
use crate::bench::peers;
use crate::bench::proc;
use crate::bench::report::{CaseInfo, CaseReport, SideReport};
use crate::bench::runner::{LoadCmd, LoadSample, RunOpts, ServerCase, ServerCmd, run_case};
use crate::bench::server::{Server, free_port};
use crate::bench::stats::Stat;
use crate::cmd;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const PIPELINE: u32 = 16;

/// Our server: the `--ours-cmd` override, or apps/httpd built in release.
fn ours(ctx: &Ctx) -> Result<ServerCmd> {
    if let Some(cmd) = ours_override(ctx) {
        return Ok(cmd);
    }
    let Some(pkg) = ctx
        .meta
        .packages_under("apps/httpd")
        .find(|p| p.targets_of("bin").any(|b| b == "httpd"))
    else {
        bail!("apps/httpd has no `httpd` binary; nothing to compare");
    };
    cmd::run(&mut cmd::cargo(["build", "--release", "-p", &pkg.name]))?;
    // The load generator too, for the last case.
    cmd::run(&mut cmd::cargo(["build", "--release", "-p", "seawreck"]))?;
    Ok(ServerCmd {
        name: "seastar".into(),
        program: ctx.meta.release_dir().join("httpd"),
        args: strings(&["--port", "{port}", "--address", "127.0.0.1", "--smp", "1"]),
    })
}

/// nginx with a config written for the port it is given (through `sh -c`,
/// which `exec`s nginx so the measured PID is nginx's).
fn nginx(dir: &Path) -> Result<ServerCmd> {
    let program = cmd::ensure_tool("nginx", "nginx-light")?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let template = dir.join("nginx.conf.in");
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {dir}/nginx-@PORT@.pid;\n\
         error_log stderr warn;\nevents {{ worker_connections 8192; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
         \x20 server {{\n    listen 127.0.0.1:@PORT@;\n    location / {{\n\
         \x20     default_type \"text/plain; charset=utf-8\";\n      return 200 \"Hello, world!\\n\";\n\
         \x20   }}\n  }}\n}}\n",
        dir = dir.display()
    );
    std::fs::write(&template, conf)?;
    let script = format!(
        "sed s/@PORT@/{{port}}/g {t} > {d}/nginx-{{port}}.conf && exec {n} -e stderr -p {d} -c {d}/nginx-{{port}}.conf",
        t = template.display(),
        d = dir.display(),
        n = program.display()
    );
    Ok(ServerCmd {
        name: "nginx".into(),
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script],
    })
}

fn wrk(program: &Path, connections: u32, script: Option<&Path>) -> LoadCmd {
    let mut args = strings(&[
        "-t1",
        &format!("-c{connections}"),
        "-d{duration}s",
        "--latency",
        "--timeout",
        "5s",
    ]);
    if let Some(s) = script {
        args.extend(["-s".to_string(), s.display().to_string()]);
    }
    args.push("http://{addr}/".into());
    LoadCmd {
        program: program.to_path_buf(),
        args,
        parse: parse_wrk,
    }
}

/// The name of the seawreck-against-wrk case.
const LOAD_GENERATORS: &str = "http load generator: seawreck vs wrk, 64 conns (per client CPU-s)";

/// Runs the http cases.
pub fn run(ctx: &Ctx, notes: &mut Vec<String>) -> Result<Vec<CaseReport>> {
    peers::ensure_taskset()?;
    let ours = ours(ctx)?;
    let bin = peers::build(&ctx.meta)?;
    let hyper = ServerCmd {
        name: "hyper-tokio".into(),
        program: bin.join("hyper-hello"),
        args: strings(&["--port", "{port}"]),
    };
    // hyper's default flushing: what the pipelined case costs hyper with
    // the delivery guarantee ours keeps.
    let hyper_flushing = ServerCmd {
        name: "hyper-tokio (flush per response)".into(),
        program: bin.join("hyper-hello"),
        args: strings(&["--port", "{port}", "--flush-each"]),
    };
    let nginx = nginx(&ctx.out_dir.join("nginx"))?;
    let wrk_bin = cmd::ensure_tool("wrk", "wrk")?;
    let script = ctx.out_dir.join("pipeline16.lua");
    std::fs::write(
        &script,
        format!(
            "init = function(args)\n  local r = {{}}\n  for i = 1, {PIPELINE} do r[i] = wrk.format(\"GET\", \"/\") end\n  \
             req = table.concat(r)\nend\nrequest = function() return req end\n"
        ),
    )?;
    let opts = RunOpts {
        runs: ctx.runs,
        // wrk takes whole seconds.
        duration_s: if ctx.quick { 2.0 } else { 10.0 },
        warmup_s: 1.0,
        log_dir: ctx.out_dir.join("logs"),
        only: ctx.only.clone(),
    };
    notes.push(
        "load: wrk -t1 (Debian), keep-alive, `GET /` answered `Hello, world!\\n`; server CPU 0, load CPU 1; \
         server CPU per request = 1 / (requests per server CPU-second)"
            .into(),
    );
    let mut out = Vec::new();
    let cases: [(String, u32, Option<&Path>); 3] = [
        ("hello, 64 conns".into(), 64, None),
        ("hello, 256 conns".into(), 256, None),
        (
            format!("hello, {PIPELINE} per write, 64 conns"),
            64,
            Some(script.as_path()),
        ),
    ];
    for (name, conns, script) in cases {
        let mut peers = vec![&nginx, &hyper];
        if script.is_some() {
            peers.push(&hyper_flushing);
        }
        for peer in peers {
            let case = ServerCase {
                info: CaseInfo {
                    name: format!("http {name} vs {}", peer.name),
                    metric: "throughput".into(),
                    unit: "req/s".into(),
                    higher_is_better: true,
                    pinned: true,
                },
                ours: ours.clone(),
                peer: peer.clone(),
                load: wrk(&wrk_bin, conns, script),
            };
            out.extend(run_case(&case, &opts, notes)?);
        }
    }
    if ctx.ours_cmd.is_none() {
        if opts.wants(LOAD_GENERATORS) {
            out.push(load_generators(ctx, &ours, &wrk_bin, &opts)?);
        }
        out.extend(https(ctx, &ours, &wrk_bin, &opts, notes)?);
    } else {
        notes.push("https cases skipped: --ours-cmd replaces the plain-text server only".into());
    }
    Ok(out)
}

/// A certificate for `localhost` (ECDSA P-256) and its key, made now with
/// the openssl CLI into `dir`: `(cert, key)`. Self-signed but not a CA
/// (`CA:FALSE`), so a rustls client may trust it as its own root (webpki
/// refuses a CA certificate as the server's).
pub(super) fn certificate(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let openssl = cmd::ensure_tool("openssl", "openssl")?;
    std::fs::create_dir_all(dir)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut c = Command::new(openssl);
    c.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
    ])
    .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
    .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
    .args(["-addext", "basicConstraints=critical,CA:FALSE"])
    .arg("-keyout")
    .arg(&key)
    .arg("-out")
    .arg(&cert);
    cmd::output(&mut c).context("openssl req (the benchmark certificate)")?;
    Ok((cert, key))
}

/// nginx serving the hello route over TLS 1.3 only, with `cert`/`key`.
fn nginx_tls(dir: &Path, cert: &Path, key: &Path) -> Result<ServerCmd> {
    let program = cmd::ensure_tool("nginx", "nginx-light")?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let template = dir.join("nginx-tls.conf.in");
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {dir}/nginx-tls-@PORT@.pid;\n\
         error_log stderr warn;\nevents {{ worker_connections 8192; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
         \x20 ssl_certificate {cert};\n  ssl_certificate_key {key};\n  ssl_protocols TLSv1.3;\n\
         \x20 ssl_conf_command Ciphersuites {SUITE};\n  ssl_ecdh_curve X25519:prime256v1:secp384r1;\n\
         \x20 server {{\n    listen 127.0.0.1:@PORT@ ssl;\n    location / {{\n\
         \x20     default_type \"text/plain; charset=utf-8\";\n      return 200 \"Hello, world!\\n\";\n\
         \x20   }}\n  }}\n}}\n",
        dir = dir.display(),
        cert = cert.display(),
        key = key.display(),
    );
    std::fs::write(&template, conf)?;
    let script = format!(
        "sed s/@PORT@/{{port}}/g {t} > {d}/nginx-tls-{{port}}.conf && exec {n} -e stderr -p {d} -c {d}/nginx-tls-{{port}}.conf",
        t = template.display(),
        d = dir.display(),
        n = program.display()
    );
    Ok(ServerCmd {
        name: "nginx".into(),
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script],
    })
}

/// The TLS 1.3 cipher suite every side uses.
const SUITE: &str = "TLS_AES_256_GCM_SHA384";

/// The https cases: keep-alive `GET /` (wrk) and full handshakes
/// (`openssl s_time -new`), ours against nginx and hyper on tokio-rustls.
fn https(
    ctx: &Ctx,
    ours: &ServerCmd,
    wrk_bin: &Path,
    opts: &RunOpts,
    notes: &mut Vec<String>,
) -> Result<Vec<CaseReport>> {
    let (cert, key) = certificate(&ctx.out_dir.join("tls"))?;
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let mut ours = ours.clone();
    // The plain port goes anywhere; `{port}` is the HTTPS one.
    for a in ours.args.iter_mut() {
        if a == "{port}" {
            *a = "0".into();
        }
    }
    ours.args.extend(strings(&[
        "--tls-port",
        "{port}",
        "--tls-cert",
        &cert_s,
        "--tls-key",
        &key_s,
    ]));
    cmd::run(&mut cmd::cargo([
        "build",
        "--release",
        "-p",
        peers::TLS_PEERS_PACKAGE,
    ]))?;
    let hyper = ServerCmd {
        name: "hyper-tokio-rustls".into(),
        program: ctx.meta.release_dir().join("hyper-rustls-hello"),
        args: strings(&[
            "--port",
            "{port}",
            "--cert",
            &cert_s,
            "--key",
            &key_s,
            "--tls13-only",
        ]),
    };
    let nginx = nginx_tls(&ctx.out_dir.join("nginx"), &cert, &key)?;
    let openssl = cmd::ensure_tool("openssl", "openssl")?;
    let mut keep_alive = wrk(wrk_bin, 64, None);
    if let Some(url) = keep_alive.args.last_mut() {
        *url = "https://{addr}/".into();
    }
    let handshakes = LoadCmd {
        program: openssl,
        args: strings(&[
            "s_time",
            "-connect",
            "{addr}",
            "-new",
            "-tls1_3",
            "-ciphersuites",
            SUITE,
            "-time",
            "{duration}",
        ]),
        parse: parse_s_time,
    };
    notes.push(format!(
        "https: one certificate (ECDSA P-256, made at run time), TLS 1.3 only, {SUITE}, X25519; \
         keep-alive from wrk -t1 -c64 (https URL); full handshakes from `openssl s_time -new` \
         (one connection at a time, never resumed, no request): handshakes per server CPU-second. \
         Targets: keep-alive >= 1.0x nginx and >= 1.1x hyper-tokio-rustls, handshakes >= 0.9x nginx"
    ));
    let mut out = Vec::new();
    for (name, unit, load) in [
        ("https hello, 64 conns keep-alive", "req/s", &keep_alive),
        ("https full TLS 1.3 handshakes", "handshakes/s", &handshakes),
    ] {
        for peer in [&nginx, &hyper] {
            let case = ServerCase {
                info: CaseInfo {
                    name: format!("{name} vs {}", peer.name),
                    metric: "throughput".into(),
                    unit: unit.into(),
                    higher_is_better: true,
                    pinned: true,
                },
                ours: ours.clone(),
                peer: peer.clone(),
                load: load.clone(),
            };
            out.extend(run_case(&case, opts, notes)?);
        }
    }
    Ok(out)
}

/// Parses `openssl s_time`'s report: `N connections in T real seconds`
/// (T whole seconds; the figure of merit uses N, not the rate).
pub fn parse_s_time(out: &str) -> Result<LoadSample> {
    let line = out
        .lines()
        .find(|l| l.contains(" connections in ") && l.contains(" real seconds"))
        .context("no `N connections in T real seconds` line")?;
    let mut words = line.split_whitespace();
    let n: f64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .context("bad connection count")?;
    let secs: f64 = line
        .split(" connections in ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|w| w.parse().ok())
        .context("bad real seconds")?;
    if n == 0.0 {
        bail!("s_time completed no handshake");
    }
    Ok(LoadSample {
        throughput: n / secs.max(1.0),
        ops: Some(n),
        p50_us: None,
        p99_us: None,
    })
}

/// seawreck against wrk, 64 connections, against the same fresh httpd per
/// run; per CPU-second is per client CPU-second.
fn load_generators(
    ctx: &Ctx,
    ours: &ServerCmd,
    wrk_bin: &Path,
    opts: &RunOpts,
) -> Result<CaseReport> {
    let seawreck = LoadCmd {
        program: ctx.meta.release_dir().join("seawreck"),
        args: strings(&[
            "http://{addr}/",
            "--connections",
            "64",
            "--duration",
            "{duration}",
            "--smp",
            "1",
            "--json",
            "--quiet",
        ]),
        parse: parse_seawreck,
    };
    let wrk = wrk(wrk_bin, 64, None);
    std::fs::create_dir_all(&opts.log_dir)?;
    let mut commands = Vec::new();
    let mut sides: [Vec<(LoadSample, f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for run in 1..=opts.runs {
        for (i, load) in [&seawreck, &wrk].into_iter().enumerate() {
            let port = free_port()?;
            let args: Vec<String> = ours
                .args
                .iter()
                .map(|a| a.replace("{port}", &port.to_string()))
                .collect();
            let mut c = Command::new(&ours.program);
            c.args(args);
            let c = cmd::pin("0", &c);
            let log = opts.log_dir.join(format!("loadgen-{i}-{run}.log"));
            let mut server = Server::start(c, port, &log)?;
            let sub = |secs: f64| -> Vec<String> {
                load.args
                    .iter()
                    .map(|a| {
                        a.replace("{addr}", &format!("127.0.0.1:{port}"))
                            .replace("{duration}", &format!("{secs}"))
                    })
                    .collect()
            };
            let mut warm = Command::new(&load.program);
            warm.args(sub(opts.warmup_s));
            cmd::output(&mut cmd::pin("1", &warm))?;
            let mut lc = Command::new(&load.program);
            lc.args(sub(opts.duration_s));
            let mut lc = cmd::pin("1", &lc);
            let line = cmd::show(&lc);
            if !commands.contains(&line) {
                commands.push(line);
            }
            let kids0 = proc::reaped_children_cpu_seconds();
            let t0 = Instant::now();
            let text = cmd::output(&mut lc)?;
            let wall = t0.elapsed().as_secs_f64();
            let client_cpu = proc::reaped_children_cpu_seconds() - kids0;
            server.stop()?;
            let sample = (load.parse)(&text).with_context(|| format!("cannot parse: {text}"))?;
            eprintln!(
                "  {:<28} {:<10} run {run}: {:>12.0} req/s  client CPU {:.2} s",
                "http load generators",
                if i == 0 { "seawreck" } else { "wrk" },
                sample.throughput,
                client_cpu
            );
            sides[i].push((sample, client_cpu, wall));
        }
    }
    let side = |name: &str, runs: &[(LoadSample, f64, f64)]| SideReport {
        name: name.into(),
        value: Stat::new(runs.iter().map(|r| r.0.throughput).collect()),
        cpu_seconds: Stat::new(runs.iter().map(|r| r.1).collect()),
        per_cpu_second: Stat::new(
            runs.iter()
                .map(|r| r.0.ops.unwrap_or(r.0.throughput * r.2) / r.1.max(1e-9))
                .collect(),
        ),
        p50_us: Stat::new(runs.iter().filter_map(|r| r.0.p50_us).collect()),
        p99_us: Stat::new(runs.iter().filter_map(|r| r.0.p99_us).collect()),
        noise_cpu_seconds: Stat::new(Vec::new()),
        // Client CPU (reaped) comes as one sum: no user/kernel split.
        ..SideReport::default()
    };
    let [s, w] = &sides;
    Ok(CaseReport::new(
        CaseInfo {
            name: LOAD_GENERATORS.into(),
            metric: "throughput".into(),
            unit: "req/s".into(),
            higher_is_better: true,
            pinned: true,
        },
        side("seawreck", s),
        side("wrk", w),
        commands,
    ))
}

#[derive(serde::Deserialize)]
struct Seawreck {
    requests: u64,
    requests_per_sec: f64,
    latency_us: SeawreckLatency,
}

#[derive(serde::Deserialize)]
struct SeawreckLatency {
    p50: f64,
    p99: f64,
}

/// Parses `seawreck --json`.
pub fn parse_seawreck(out: &str) -> Result<LoadSample> {
    let r: Seawreck = last_json_line(out, "bad seawreck JSON")?;
    if r.requests == 0 {
        bail!("seawreck completed no request");
    }
    Ok(LoadSample {
        throughput: r.requests_per_sec,
        ops: Some(r.requests as f64),
        p50_us: Some(r.latency_us.p50),
        p99_us: Some(r.latency_us.p99),
    })
}

fn wrk_time_us(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (v, unit) = s.split_at(split);
    let v: f64 = v.parse().ok()?;
    Some(match unit {
        "us" => v,
        "ms" => v * 1e3,
        "s" => v * 1e6,
        "m" => v * 60e6,
        _ => return None,
    })
}

/// Parses wrk's report: `N requests in Xs`, `Requests/sec:`, the latency
/// distribution; fails on socket errors or non-2xx/3xx answers.
pub fn parse_wrk(out: &str) -> Result<LoadSample> {
    let rps: f64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .context("no `Requests/sec:` line")?
        .trim()
        .parse()
        .context("bad Requests/sec")?;
    let requests: f64 = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no `N requests in` line")?;
    if requests == 0.0 {
        bail!("wrk completed no request");
    }
    if let Some(l) = out.lines().find(|l| l.contains("Non-2xx or 3xx responses")) {
        bail!("wrk saw errors: {}", l.trim());
    }
    let pct = |p: &str| {
        out.lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(p))
                    .then(|| w.next().and_then(wrk_time_us))
                    .flatten()
            })
            // wrk prints 0 for a percentile it did not record (seen at p99 with
            // a pipelining script): no figure rather than a false one.
            .filter(|&us| us > 0.0)
    };
    Ok(LoadSample {
        throughput: rps,
        ops: Some(requests),
        p50_us: pct("50%"),
        p99_us: pct("99%"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 10s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   551.20us  120.00us   4.21ms   90.00%
    Req/Sec   115.00k     2.00k  120.00k    70.00%
  Latency Distribution
     50%  540.00us
     75%  600.00us
     90%  700.00us
     99%    1.20ms
  1150000 requests in 10.00s, 140.38MB read
Requests/sec: 114999.12
Transfer/sec:     14.04MB
";

    #[test]
    fn parses_wrk_output() {
        let s = parse_wrk(WRK).unwrap();
        assert_eq!(s.throughput, 114999.12);
        assert_eq!(s.ops, Some(1_150_000.0));
        assert_eq!((s.p50_us, s.p99_us), (Some(540.0), Some(1200.0)));
        let bad = WRK.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 5\nRequests/sec",
        );
        assert!(parse_wrk(&bad).is_err());
        assert!(parse_wrk("nothing").is_err());
    }

    #[test]
    fn parses_s_time_output() {
        let out = "Collecting connection statistics for 10 seconds\n*****\n\n\
                   6012 connections in 5.51s; 1091.11 connections/user sec, bytes read 0\n\
                   6012 connections in 11 real seconds, 0 bytes read per connection\n";
        let s = parse_s_time(out).unwrap();
        assert_eq!(s.ops, Some(6012.0));
        assert!((s.throughput - 6012.0 / 11.0).abs() < 1e-9);
        assert_eq!((s.p50_us, s.p99_us), (None, None));
        assert!(parse_s_time("6012 connections in 5.51s; 1091.11 connections/user sec").is_err());
        assert!(parse_s_time("0 connections in 10 real seconds, 0 bytes").is_err());
        assert!(parse_s_time("nothing").is_err());
    }

    #[test]
    fn parses_seawreck_json() {
        let s = parse_seawreck(
            "{\"requests\":300,\"requests_per_sec\":100.0,\"latency_us\":{\"p50\":5,\"p99\":9,\"max\":10}}",
        )
        .unwrap();
        assert_eq!((s.ops, s.p99_us), (Some(300.0), Some(9.0)));
    }
}
