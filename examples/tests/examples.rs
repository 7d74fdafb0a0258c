//! Runs every tutorial program and checks what it prints.
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Runs `exe` to completion (killed after 20 s) and returns its stdout.
fn run(exe: &str) -> String {
    let mut child = Command::new(exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn example");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{exe} failed: {status}");
            return String::from_utf8(out.stdout).unwrap();
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{exe} did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn first_app() {
    let out = run(env!("CARGO_BIN_EXE_first_app"));
    assert_eq!(
        out,
        "hello from shard 0 of 2\nevery shard answered: [0, 1]\n"
    );
}

#[test]
fn tasks() {
    let out = run(env!("CARGO_BIN_EXE_tasks"));
    assert_eq!(
        out,
        "task returned 42\npromise kept\nlog: [\"main goes on\", \"task starts\", \"task ends\"]\n"
    );
}

#[test]
fn timers() {
    let out = run(env!("CARGO_BIN_EXE_timers"));
    assert_eq!(
        out,
        "slept at least 20 ms: true\ntimed out: true\nticked: true\n"
    );
}

#[test]
fn submit_to() {
    let out = run(env!("CARGO_BIN_EXE_submit_to"));
    assert_eq!(
        out,
        "shard 2 answered 20\nsum over 3 shards: 44850\nshard 7: true\n"
    );
}

#[test]
fn sharded() {
    let out = run(env!("CARGO_BIN_EXE_sharded"));
    assert_eq!(out, "b is on shard 0: Some(\"2\")\nkeys in all shards: 3\n");
}

#[test]
fn backpressure() {
    let out = run(env!("CARGO_BIN_EXE_backpressure"));
    assert_eq!(
        out,
        "peak concurrency: 2\ngate closed, entering again fails: true\n"
    );
}

#[test]
fn tcp_server() {
    let out = run(env!("CARGO_BIN_EXE_tcp_server"));
    assert_eq!(out, "echoed: ping\n");
}

#[test]
fn files() {
    let out = run(env!("CARGO_BIN_EXE_files"));
    assert_eq!(out, "wrote 4096 bytes\nread back: hello, files!\n");
}

#[test]
fn http_json() {
    let out = run(env!("CARGO_BIN_EXE_http_json"));
    assert_eq!(
        out,
        "GET /hello/seastar: Hello, seastar!\nPOST /greet: 200 OK {\"name\":\"ADA\"}\n"
    );
}

#[test]
fn rpc() {
    let out = run(env!("CARGO_BIN_EXE_rpc_service"));
    assert!(out.starts_with("40 + 2 = 42\nMAX + 1: "), "{out}");
    assert!(out.contains("overflow"), "{out}");
}

#[test]
fn metrics() {
    let out = run(env!("CARGO_BIN_EXE_metrics"));
    assert_eq!(
        out,
        "tutorial_requests_total{shard=\"0\",route=\"/\"} 1\ntutorial_requests_total{shard=\"1\",route=\"/\"} 1\n"
    );
}
