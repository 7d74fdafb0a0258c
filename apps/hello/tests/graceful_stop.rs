//! The hello app stops cleanly on SIGTERM, on the backend chosen by
//! `SEASTAR_REACTOR_BACKEND` (inherited by the child).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn run_until_tick_then_signal(signal: libc::c_int) -> (std::process::ExitStatus, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hello"))
        .args(["--ticks", "0", "--interval-ms", "5", "--smp", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hello");
    let mut lines = Vec::new();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait (by reading, not sleeping) until the app is running its timer.
    for line in out.by_ref() {
        let line = line.unwrap();
        let ticking = line.starts_with("tick");
        lines.push(line);
        if ticking {
            break;
        }
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    lines.extend(out.map(Result::unwrap));
    (child.wait().unwrap(), lines)
}

#[test]
fn sigterm_stops_every_shard_cleanly() {
    let (status, lines) = run_until_tick_then_signal(libc::SIGTERM);
    assert!(status.success(), "exit status {status:?}, output {lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "hello from shard 0 on cpu 0" || l.starts_with("hello from shard 0"))
    );
    assert!(lines.iter().any(|l| l.starts_with("hello from shard 1")));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("stop requested: all shards stopped cleanly")
    );
}

#[test]
fn sigint_is_a_graceful_stop_too() {
    let (status, lines) = run_until_tick_then_signal(libc::SIGINT);
    assert!(status.success(), "exit status {status:?}, output {lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("stop requested: all shards stopped cleanly")
    );
}
