//! The reactor's loop seen from inside a shard, through its own counters.

use std::time::Duration;

use crate::{Runtime, reactor, smp};

/// How often shard 1 slept in the kernel while shard 0 made 100 calls to
/// it, one at a time.
fn sleeps_of_shard_1_during_calls(smp_poll: Duration) -> u64 {
    Runtime::builder()
        .shards(2)
        .pin(false)
        .handle_signals(false)
        .smp_poll(smp_poll)
        .build()
        .expect("runtime")
        .run(async {
            let sleeps = || smp::submit_to(1, || async { reactor::with(|s| s.stats.sleeps.get()) });
            let before = sleeps().await.expect("call");
            for i in 0..100u32 {
                let back = smp::submit_to(1, move || async move { i }).await;
                assert_eq!(back.expect("call"), i);
            }
            sleeps().await.expect("call") - before
        })
}

#[test]
fn a_shard_polls_instead_of_sleeping_between_cross_shard_messages() {
    assert_eq!(
        sleeps_of_shard_1_during_calls(Duration::from_secs(3600)),
        0,
        "within smp_poll of its last message a shard never sleeps"
    );
}

#[test]
fn without_smp_poll_an_idle_shard_sleeps_between_calls() {
    // Each call leaves shard 1 idle until the next one, which cannot come
    // before shard 0 has the reply: it goes to sleep (nearly) every time.
    let sleeps = sleeps_of_shard_1_during_calls(Duration::ZERO);
    assert!(sleeps > 0, "{sleeps} sleeps in 100 calls");
}

/// Reads a file's first bytes, returning them and how many submissions
/// were still queued in user space right after the read was issued (`None`
/// on the epoll backend, whose file I/O runs on the blocking pool).
fn queued_after_a_file_read(at_once: bool) -> (Vec<u8>, Option<usize>) {
    let dir = std::env::temp_dir().join(format!("sc-at-once-{}-{at_once}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("f");
    std::fs::write(&path, b"file bytes").expect("write");
    let got = Runtime::builder()
        .shards(1)
        .pin(false)
        .handle_signals(false)
        .submit_file_io_at_once(at_once)
        .build()
        .expect("runtime")
        .run(async move {
            let fd = crate::io::file::open(&path, libc::O_RDONLY, 0)
                .await
                .expect("open");
            let mut read = std::pin::pin!(crate::io::file::read_at(&fd, Vec::with_capacity(64), 0));
            let first = futures::poll!(read.as_mut());
            let queued = reactor::with(|s| match &mut *s.driver.borrow_mut() {
                reactor::Driver::Uring(u) => Some(u.queued()),
                reactor::Driver::Epoll(_) => None,
            });
            let (n, mut buf) = match first {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => read.await,
            };
            buf.truncate(n.expect("read"));
            (buf, queued)
        });
    std::fs::remove_dir_all(&dir).expect("cleanup");
    got
}

#[test]
fn a_file_read_enters_the_kernel_as_it_is_issued() {
    let (bytes, queued) = queued_after_a_file_read(true);
    assert_eq!(bytes, b"file bytes");
    if let Some(q) = queued {
        assert_eq!(q, 0, "the read's entry was handed to the kernel at once");
    }
}

#[test]
fn batched_file_submissions_wait_for_the_end_of_the_iteration() {
    let (bytes, queued) = queued_after_a_file_read(false);
    assert_eq!(bytes, b"file bytes");
    if let Some(q) = queued {
        assert_eq!(q, 1, "the read's entry waits in the submission queue");
    }
}
