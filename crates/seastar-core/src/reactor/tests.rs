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

/// Issues `reads` reads of a file's first bytes at once on a runtime with
/// `file_submit_batch(batch)`; returns what each read got and how many
/// submissions were still queued in user space right after all were issued
/// (`None` on the epoll backend, whose file I/O runs on the blocking pool).
fn queued_after_file_reads(batch: u32, reads: usize) -> (Vec<Vec<u8>>, Option<usize>) {
    let dir = std::env::temp_dir().join(format!(
        "sc-file-batch-{}-{batch}-{reads}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("f");
    std::fs::write(&path, b"file bytes").expect("write");
    let got = Runtime::builder()
        .shards(1)
        .pin(false)
        .handle_signals(false)
        .file_submit_batch(batch)
        .build()
        .expect("runtime")
        .run(async move {
            let fd = crate::io::file::open(&path, libc::O_RDONLY, 0)
                .await
                .expect("open");
            let mut all: Vec<_> = (0..reads)
                .map(|_| Box::pin(crate::io::file::read_at(&fd, Vec::with_capacity(64), 0)))
                .collect();
            // On io_uring the first poll queues the read's entry; on epoll
            // the reads go to the blocking pool and are only awaited.
            if reactor::backend() == crate::BackendKind::IoUring {
                for r in &mut all {
                    assert!(
                        futures::poll!(r.as_mut()).is_pending(),
                        "no completion before the kernel ran"
                    );
                }
            }
            let queued = reactor::with(|s| match &mut *s.driver.borrow_mut() {
                reactor::Driver::Uring(u) => Some(u.queued()),
                reactor::Driver::Epoll(_) => None,
            });
            let mut bytes = Vec::new();
            for r in all {
                let (n, mut buf) = r.await;
                buf.truncate(n.expect("read"));
                bytes.push(buf);
            }
            (bytes, queued)
        });
    std::fs::remove_dir_all(&dir).expect("cleanup");
    got
}

#[test]
fn file_reads_enter_the_kernel_in_groups_as_they_are_issued() {
    for (batch, reads, left) in [(4, 3, 3), (4, 4, 0), (4, 6, 2), (1, 1, 0), (1, 5, 0)] {
        let (bytes, queued) = queued_after_file_reads(batch, reads);
        assert_eq!(bytes, vec![b"file bytes".to_vec(); reads]);
        if let Some(q) = queued {
            assert_eq!(
                q, left,
                "batch {batch}, {reads} reads: entries still queued"
            );
        }
    }
}

#[test]
fn without_a_file_submit_batch_file_reads_wait_for_the_end_of_the_iteration() {
    let (bytes, queued) = queued_after_file_reads(0, 5);
    assert_eq!(bytes, vec![b"file bytes".to_vec(); 5]);
    if let Some(q) = queued {
        assert_eq!(q, 5, "every entry waits in the submission queue");
    }
}

#[test]
fn preempt_checks_space_out_for_small_tasks_and_close_in_for_long_ones() {
    use super::{MAX_UNCHECKED_TASKS, tasks_before_check};
    let us = |n: u64| n * 1000;
    // 100 tasks of 50 ns with most of the quota left: the most between reads.
    assert_eq!(tasks_before_check(us(495), us(5), 100), MAX_UNCHECKED_TASKS);
    // Nothing measurable spent yet: likewise.
    assert_eq!(tasks_before_check(us(500), 0, 4), MAX_UNCHECKED_TASKS);
    // 4 tasks of 50 µs, 300 µs left: 6 more fit, half of them run.
    assert_eq!(tasks_before_check(us(300), us(200), 4), 3);
    // One task took longer than what is left: read after the next one.
    assert_eq!(tasks_before_check(us(100), us(400), 1), 1);
}
