//! seawreck as a user runs it, against a live httpd (both child processes,
//! on the backend named by `SEASTAR_REACTOR_BACKEND`). The runs are short
//! and the assertions are about what was counted, never about speed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// httpd is built beside seawreck (same workspace target directory).
fn httpd_path() -> PathBuf {
    let me = PathBuf::from(env!("CARGO_BIN_EXE_seawreck"));
    let p = me.with_file_name("httpd");
    if !p.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "httpd"])
            .status()
            .expect("cargo build -p httpd");
        assert!(status.success());
    }
    p
}

struct Httpd(Child, SocketAddr);

impl Httpd {
    fn start() -> Httpd {
        let mut child = Command::new(httpd_path())
            .args(["--port", "0", "--smp", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start httpd");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let addr = first
            .strip_prefix("httpd: listening on http://")
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        Httpd(child, addr)
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn seawreck(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seawreck"))
        .args(args)
        .output()
        .expect("run seawreck")
}

/// Runs seawreck on `url` with `flags` plus `--json --quiet` (and `--smp 1`
/// unless `flags` set it) and parses its report.
fn json_report(url: &str, flags: &[&str]) -> serde_json::Value {
    let mut args = vec![url, "--json", "--quiet"];
    args.extend_from_slice(flags);
    if !flags.contains(&"--smp") {
        args.extend(["--smp", "1"]);
    }
    let out = seawreck(&args);
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

#[test]
fn closed_loop_with_pipelining_counts_every_response_as_2xx() {
    let h = Httpd::start();
    let url = format!("http://{}/", h.1);
    let r = json_report(
        &url,
        &[
            "--connections",
            "4",
            "--pipeline",
            "4",
            "--duration",
            "500ms",
            "--smp",
            "2",
        ],
    );
    let requests = r["requests"].as_u64().unwrap();
    assert!(requests > 0, "{r}");
    assert_eq!(r["status"]["2xx"].as_u64(), Some(requests), "{r}");
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
    assert_eq!(
        (r["connections"].as_u64(), r["pipeline"].as_u64()),
        (Some(4), Some(4))
    );
    let lat = &r["latency_us"];
    let (p50, p99, max) = (
        lat["p50"].as_u64().unwrap(),
        lat["p99"].as_u64().unwrap(),
        lat["max"].as_u64().unwrap(),
    );
    assert!(p50 <= p99 && p99 <= max, "{lat}");
}

#[test]
fn open_loop_counts_404s_by_class_and_posts_bodies() {
    let h = Httpd::start();
    let r = json_report(
        &format!("http://{}/missing", h.1),
        &["--connections", "2", "--rate", "200", "--duration", "500ms"],
    );
    let requests = r["requests"].as_u64().unwrap();
    assert!(requests > 0, "{r}");
    assert_eq!(r["status"]["4xx"].as_u64(), Some(requests), "{r}");
    assert_eq!(r["rate"].as_f64(), Some(200.0));
    // The open loop sends on a schedule: no more than the rate allows
    // (plus one per connection for the first send).
    assert!(requests <= 100 + 2, "{r}");

    let r = json_report(
        &format!("http://{}/echo", h.1),
        &[
            "--method",
            "POST",
            "--body",
            "ping",
            "--connections",
            "1",
            "--duration",
            "300ms",
        ],
    );
    let requests = r["requests"].as_u64().unwrap();
    assert!(requests > 0, "{r}");
    assert_eq!(r["status"]["2xx"].as_u64(), Some(requests), "{r}");
}

#[test]
fn a_refused_connection_is_counted_as_an_error() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = json_report(
        &format!("http://127.0.0.1:{port}/"),
        &["--connections", "1", "--duration", "200ms"],
    );
    assert_eq!(r["requests"].as_u64(), Some(0), "{r}");
    let errors = r["errors"].as_object().unwrap();
    assert!(!errors.is_empty(), "{r}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    for (args, want) in [
        (
            &["https://127.0.0.1/"][..],
            "seawreck: only http:// URLs are supported",
        ),
        (
            &["http://127.0.0.1/", "--connections", "0"][..],
            "seawreck: --connections and --pipeline must be at least 1",
        ),
        (
            &["http://127.0.0.1/", "--duration", "5x"][..],
            "bad duration unit",
        ),
    ] {
        let out = seawreck(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
