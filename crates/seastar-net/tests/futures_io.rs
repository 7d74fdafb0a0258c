//! `futures::io` traits over seastar-net streams (feature `futures-io`),
//! on the backend named by `SEASTAR_REACTOR_BACKEND`. The streams' own
//! owned-buffer `write_all` shadows the extension trait's, hence the
//! qualified calls.
#![cfg(feature = "futures-io")]

mod common;

use common::{localhost0, rt};
use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use seastar_core::spawn_local;
use seastar_net::{ListenOptions, TcpListener, TcpStream};

#[test]
fn futures_io_copies_a_large_stream_and_sees_eof_after_close() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        const LEN: usize = 1 << 20;
        let server = spawn_local(async move {
            let (mut conn, _) = l.accept().await.unwrap();
            let data: Vec<u8> = (0..LEN).map(|i| (i % 253) as u8).collect();
            for chunk in data.chunks(10_000) {
                AsyncWriteExt::write_all(&mut conn, chunk).await.unwrap();
            }
            conn.close().await.unwrap();
            // After close the write side is shut: writes fail cleanly.
            assert!(AsyncWriteExt::write_all(&mut conn, b"late").await.is_err());
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), LEN);
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 253) as u8));
        server.await.unwrap();
    });
}

#[test]
fn futures_io_buffered_lines() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let server = spawn_local(async move {
            let (conn, _) = l.accept().await.unwrap();
            let mut lines = BufReader::new(conn).lines();
            let mut n = 0;
            while let Some(line) = futures::StreamExt::next(&mut lines).await {
                assert_eq!(line.unwrap(), format!("line {n}"));
                n += 1;
            }
            n
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        for i in 0..500 {
            AsyncWriteExt::write_all(&mut c, format!("line {i}\n").as_bytes())
                .await
                .unwrap();
        }
        c.close().await.unwrap();
        assert_eq!(server.await.unwrap(), 500);
    });
}

#[test]
fn async_buf_read_lends_the_internal_buffer() {
    rt(1).run(async {
        let (mut a, mut b) = seastar_net::UnixStream::pair().unwrap();
        AsyncWriteExt::write_all(&mut a, b"hello world")
            .await
            .unwrap();
        a.flush().await.unwrap();
        let mut word = Vec::new();
        b.read_until(b' ', &mut word).await.unwrap();
        assert_eq!(word, b"hello ");
        let mut rest = [0u8; 5];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"world");
    });
}

#[test]
fn poll_reads_receive_into_shard_buffers_a_pooled_buffer_at_a_time() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        const LEN: usize = 32 * 1024;
        let (sent_tx, sent_rx) = futures::channel::oneshot::channel();
        let server = spawn_local(async move {
            let (mut conn, _) = l.accept().await.unwrap();
            let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
            AsyncWriteExt::write_all(&mut conn, &data).await.unwrap();
            AsyncWriteExt::flush(&mut conn).await.unwrap();
            sent_tx.send(()).unwrap();
            conn
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Every byte is queued on our side before the first receive.
        sent_rx.await.unwrap();
        let mut sizes = Vec::new();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < LEN {
            let n = AsyncReadExt::read(&mut c, &mut buf).await.unwrap();
            assert!(n > 0, "early end of stream");
            sizes.push(n);
            got.extend_from_slice(&buf[..n]);
        }
        // Each receive fills one pooled buffer (16 KiB) at most.
        assert_eq!(sizes, [16384, 16384]);
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        drop(server.await.unwrap());
    });
}

/// A write accepted by `poll_write` and never flushed still leaves whole
/// while the writer only reads: its send is short (a send buffer far
/// smaller than the write), so the wake it causes must continue it.
#[test]
fn a_short_send_behind_continues_while_the_writer_only_reads() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        const LEN: usize = 64 * 1024;
        let peer = spawn_local(async move {
            let (mut conn, _) = l.accept().await.unwrap();
            let mut got = vec![0u8; LEN];
            AsyncReadExt::read_exact(&mut conn, &mut got).await.unwrap();
            AsyncWriteExt::write_all(&mut conn, b"ok").await.unwrap();
            AsyncWriteExt::flush(&mut conn).await.unwrap();
            got
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.set_send_buffer_size(4096).unwrap();
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        // One call: the whole write is accepted (at most 64 KiB per call).
        let n = AsyncWriteExt::write(&mut c, &data).await.unwrap();
        assert_eq!(n, LEN);
        // No flush: the peer answers only once it has every byte.
        let mut ok = [0u8; 2];
        // A stalled send hangs here (nextest ends a hung test).
        AsyncReadExt::read_exact(&mut c, &mut ok).await.unwrap();
        assert_eq!(&ok, b"ok");
        assert!(peer.await.unwrap() == data);
    });
}
