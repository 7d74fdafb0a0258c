//! The runtime's stop deadline: a process whose tasks ignore the stop
//! still ends, with status 1, once the deadline after SIGTERM passes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "SEASTAR_TEST_STOP_DEADLINE_CHILD";
const NAME: &str = "a_stop_that_hangs_ends_at_the_stop_deadline";

#[test]
fn a_stop_that_hangs_ends_at_the_stop_deadline() {
    if std::env::var_os(CHILD).is_some() {
        // The child: a main that never looks at the stop signal.
        seastar_core::Runtime::builder()
            .shards(1)
            .stop_deadline(Duration::from_millis(300))
            .build()
            .unwrap()
            .run(async {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() };
                println!("ready {tid}");
                std::future::pending::<()>().await;
            });
        unreachable!("the main never returns");
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest prints the test's name first, on the same line.
    let tid: libc::pid_t = out
        .map(Result::unwrap)
        .find_map(|l| l.split("ready ").nth(1).map(|t| t.trim().parse().unwrap()))
        .expect("the child never started");
    let t0 = Instant::now();
    // The signal goes to the runtime's thread: libtest's own main thread
    // does not block SIGTERM as an app's main thread (running the runtime)
    // does, so a process-wide kill would take the default action there.
    // SAFETY: tgkill(2) on a thread of our own child.
    let r = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            child.id() as libc::pid_t,
            tid,
            libc::SIGTERM,
        )
    };
    assert_eq!(r, 0, "tgkill: {}", std::io::Error::last_os_error());
    let status = child.wait().unwrap();
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(took >= Duration::from_millis(250), "exited after {took:?}");
    assert!(took < Duration::from_secs(10), "exited after {took:?}");
}
