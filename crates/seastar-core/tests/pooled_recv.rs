//! Pooled receives (no buffer held while waiting) on both backends: data,
//! end of stream, many receives at once (more than the io_uring ring has
//! buffers: the rest fall back), cancellation, large transfers.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;

use common::pair;
use seastar_core::{io, spawn_local};

#[seastar_core::test]
async fn a_pooled_receive_returns_the_bytes_then_end_of_stream() {
    let (a, b) = pair();
    let reader = spawn_local(async move {
        let (got, drained) = io::recv_pooled(a.as_raw_fd(), false).await.unwrap();
        assert!(drained, "a short receive drains the socket");
        let first = got.to_vec();
        drop(got);
        let (eof, _) = io::recv_pooled(a.as_raw_fd(), drained).await.unwrap();
        (first, eof.is_empty())
    });
    seastar_core::yield_now().await;
    (&b).write_all(b"get k\r\n").unwrap();
    seastar_core::yield_now().await;
    drop(b);
    let (first, eof) = reader.await.unwrap();
    assert_eq!(first, b"get k\r\n");
    assert!(eof);
    if let Some(f) = io::uring_features() {
        assert!(
            f.provided_buffers,
            "io_uring served it from its buffer ring"
        );
    }
}

/// 300 sockets receive at once while every buffer stays lent out: more
/// than the shard's ring holds (128), so the receives past it fall back to
/// buffers of their own, and every one gets its own bytes.
#[seastar_core::test]
async fn more_receives_than_ring_buffers_all_complete_with_their_bytes() {
    let pairs: Vec<_> = (0..300).map(|_| pair()).collect();
    let mut readers = Vec::new();
    for (i, (a, _)) in pairs.iter().enumerate() {
        let fd = a.as_raw_fd();
        readers.push(spawn_local(async move {
            let (buf, _) = io::recv_pooled(fd, true).await.unwrap();
            (i, buf)
        }));
    }
    seastar_core::yield_now().await;
    for (i, (_, b)) in pairs.iter().enumerate() {
        (&*b).write_all(format!("message {i}").as_bytes()).unwrap();
    }
    // Every buffer is held until all have arrived.
    let mut held = Vec::new();
    for r in readers {
        let (i, buf) = r.await.unwrap();
        assert_eq!(&buf[..], format!("message {i}").as_bytes());
        held.push(buf);
    }
    drop(held);
    // With the buffers back, the ring serves again.
    let (a, b) = &pairs[0];
    (&*b).write_all(b"again").unwrap();
    let (buf, _) = io::recv_pooled(a.as_raw_fd(), false).await.unwrap();
    assert_eq!(&buf[..], b"again");
}

/// Receives dropped while waiting give nothing back wrongly: after many
/// cancelled ones, receives still get their bytes (no buffer lost).
#[seastar_core::test]
async fn cancelled_pooled_receives_lose_no_buffer() {
    let (a, b) = pair();
    for _ in 0..400 {
        let mut r = io::PooledRecv::start(a.as_raw_fd(), true);
        // Polled once (submitted / waiting), then dropped.
        let _ = futures::poll!(std::future::poll_fn(|cx| r.poll(cx)));
        drop(r);
    }
    seastar_core::yield_now().await;
    let mut total = Vec::new();
    for round in 0..200u32 {
        (&b).write_all(&round.to_le_bytes()).unwrap();
        let (buf, _) = io::recv_pooled(a.as_raw_fd(), false).await.unwrap();
        total.extend_from_slice(&buf);
    }
    let want: Vec<u8> = (0..200u32).flat_map(|r| r.to_le_bytes()).collect();
    assert_eq!(total, want);
}

/// A transfer larger than a buffer arrives whole, in order, over several
/// receives, each no larger than a pooled buffer.
#[seastar_core::test]
async fn a_large_transfer_arrives_whole_in_buffer_sized_pieces() {
    let (a, b) = pair();
    const LEN: usize = 1 << 20;
    let writer = std::thread::spawn(move || {
        b.set_nonblocking(false).unwrap();
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        (&b).write_all(&data).unwrap();
    });
    let mut got = Vec::with_capacity(LEN);
    let mut drained = false;
    while got.len() < LEN {
        let (buf, d) = io::recv_pooled(a.as_raw_fd(), drained).await.unwrap();
        assert!(!buf.is_empty(), "end of stream after {}", got.len());
        assert!(buf.len() <= io::pool::BUF_SIZE);
        got.extend_from_slice(&buf);
        drained = d;
    }
    writer.join().unwrap();
    assert!(got.iter().enumerate().all(|(i, &v)| v == (i % 251) as u8));
}
