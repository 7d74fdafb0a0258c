//! Buffered input and output streams, over sockets and over a recording
//! sink, on the backend named by `SEASTAR_REACTOR_BACKEND`.

mod common;

use std::io::ErrorKind;

use bytes::Bytes;
use common::{localhost0, rt};
use seastar_core::io::IoBuf;
use seastar_core::spawn_local;
use seastar_net::stream::{DataSink, InputStream, OutputStream, StreamError};
use seastar_net::{BufResult, ListenOptions, TcpListener, TcpStream, UnixStream};

/// A connected pair of TCP streams.
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(localhost0(), ListenOptions::default())
        .await
        .unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

/// Writes `parts` one write each (so the reader sees them arrive apart),
/// then closes.
fn send_parts(s: TcpStream, parts: Vec<&'static [u8]>) -> seastar_core::JoinHandle<()> {
    spawn_local(async move {
        for p in parts {
            s.write_all(p).await.0.unwrap();
            seastar_core::yield_now().await;
        }
    })
}

fn stream_error(e: &std::io::Error) -> Option<&StreamError> {
    e.get_ref().and_then(|e| e.downcast_ref::<StreamError>())
}

#[test]
fn read_exactly_gathers_bytes_across_reads() {
    rt(1).run(async {
        let (c, s) = tcp_pair().await;
        let w = send_parts(s, vec![b"ab", b"cde", b"fghij", b"k"]);
        let mut input = InputStream::with_read_size(c, 64);
        assert_eq!(&input.read_exactly(4).await.unwrap()[..], b"abcd");
        assert_eq!(&input.read_exactly(6).await.unwrap()[..], b"efghij");
        w.await.unwrap();
        assert_eq!(&input.read_exactly(1).await.unwrap()[..], b"k");
        assert_eq!(&input.read_exactly(0).await.unwrap()[..], b"");
    });
}

#[test]
fn read_exactly_past_eof_is_unexpected_eof_and_keeps_the_bytes() {
    rt(1).run(async {
        let (c, s) = tcp_pair().await;
        send_parts(s, vec![b"abc"]).await.unwrap();
        let mut input = InputStream::new(c);
        let e = input.read_exactly(10).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(
            stream_error(&e),
            Some(&StreamError::UnexpectedEof { got: 3, wanted: 10 })
        );
        assert_eq!(input.buffer(), b"abc");
        assert_eq!(&input.read().await.unwrap()[..], b"abc");
        assert!(input.is_eof());
        assert!(input.read().await.unwrap().is_empty());
    });
}

#[test]
fn read_until_finds_the_delimiter_across_reads() {
    rt(1).run(async {
        let (c, s) = tcp_pair().await;
        let w = send_parts(s, vec![b"GET / HT", b"TP/1.1\r", b"\nHost: x\r\n", b"\r\n"]);
        let mut input = InputStream::new(c);
        assert_eq!(
            &input.read_until(b'\n', 1024).await.unwrap()[..],
            b"GET / HTTP/1.1\r\n"
        );
        assert_eq!(
            &input.read_until(b'\n', 1024).await.unwrap()[..],
            b"Host: x\r\n"
        );
        assert_eq!(&input.read_until(b'\n', 1024).await.unwrap()[..], b"\r\n");
        w.await.unwrap();
        // Clean end of stream: an empty record.
        assert!(input.read_until(b'\n', 1024).await.unwrap().is_empty());
    });
}

#[test]
fn read_until_past_max_is_an_error() {
    rt(1).run(async {
        let (c, s) = tcp_pair().await;
        let w = send_parts(s, vec![b"0123456789", b"abcdef\nok\n"]);
        let mut input = InputStream::new(c);
        let e = input.read_until(b'\n', 8).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        assert_eq!(
            stream_error(&e),
            Some(&StreamError::DelimiterNotFound {
                delim: b'\n',
                max: 8
            })
        );
        assert!(e.to_string().contains("within the first 8 bytes"), "{e}");
        // The bytes stay buffered; the caller can skip the long record.
        assert!(input.buffer().starts_with(b"01234567"));
        let long = input.read_until(b'\n', 1024).await.unwrap();
        assert_eq!(&long[..], b"0123456789abcdef\n");
        assert_eq!(&input.read_until(b'\n', 8).await.unwrap()[..], b"ok\n");
        w.await.unwrap();
    });
}

#[test]
fn read_until_with_a_delimiter_exactly_at_max_succeeds() {
    rt(1).run(async {
        let (c, s) = tcp_pair().await;
        send_parts(s, vec![b"1234567\n"]).await.unwrap();
        let mut input = InputStream::new(c);
        assert_eq!(&input.read_until(b'\n', 8).await.unwrap()[..], b"1234567\n");
    });
}

#[test]
fn read_until_cut_by_eof_is_unexpected_eof() {
    rt(1).run(async {
        let (c, s) = tcp_pair().await;
        send_parts(s, vec![b"no newline"]).await.unwrap();
        let mut input = InputStream::new(c);
        let e = input.read_until(b'\n', 100).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(input.buffer(), b"no newline");
    });
}

#[test]
fn fill_buf_consume_and_skip() {
    rt(1).run(async {
        let (c, s) = tcp_pair().await;
        send_parts(s, vec![b"hello world"]).await.unwrap();
        let mut input = InputStream::new(c);
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let data = input.fill_buf().await.unwrap();
            seen.extend_from_slice(&data[..1]);
            input.consume(1);
        }
        assert_eq!(seen, b"hello");
        input.skip(1).await.unwrap();
        assert_eq!(&input.read_up_to(3).await.unwrap()[..], b"wor");
        assert_eq!(&input.read().await.unwrap()[..], b"ld");
        assert!(input.fill_buf().await.unwrap().is_empty());
        assert_eq!(
            input.skip(1).await.unwrap_err().kind(),
            ErrorKind::UnexpectedEof
        );
    });
}

/// A sink that records each call's iovecs and takes at most `limit` bytes
/// per call (to exercise short writes).
#[derive(Default)]
struct Recorder {
    calls: Vec<Vec<(usize, usize)>>,
    data: Vec<u8>,
    limit: Option<usize>,
    shut: bool,
}

impl Recorder {
    fn take<B: IoBuf>(&mut self, bufs: &[B]) -> usize {
        let mut room = self.limit.unwrap_or(usize::MAX);
        let mut call = Vec::new();
        let mut n = 0;
        for b in bufs {
            call.push((b.stable_ptr() as usize, b.bytes_init()));
            // SAFETY: an IoBuf's pointer is valid for bytes_init() bytes
            // while the buffer lives, and `b` is borrowed here.
            let bytes = unsafe { std::slice::from_raw_parts(b.stable_ptr(), b.bytes_init()) };
            let k = bytes.len().min(room);
            self.data.extend_from_slice(&bytes[..k]);
            room -= k;
            n += k;
        }
        self.calls.push(call);
        n
    }
}

impl DataSink for Recorder {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let n = self.take(std::slice::from_ref(&buf));
        (Ok(n), buf)
    }
    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let n = self.take(&bufs);
        (Ok(n), bufs)
    }
    async fn shutdown(&mut self) -> std::io::Result<()> {
        self.shut = true;
        Ok(())
    }
}

#[test]
fn flush_coalesces_writes_since_the_last_flush_into_one_writev() {
    rt(1).run(async {
        let mut out = OutputStream::new(Recorder::default());
        for i in 0..100u8 {
            out.write(&[i; 10]).await.unwrap();
        }
        let big = Bytes::from(vec![7u8; 4096]);
        let big_ptr = big.as_ptr() as usize;
        out.write_bytes(big).await.unwrap();
        out.write(b"tail").await.unwrap();
        out.write_bytes(Bytes::from_static(b"small")).await.unwrap();
        assert!(out.get_ref().calls.is_empty(), "nothing sent before flush");
        assert_eq!(out.buffered(), 1000 + 4096 + 4 + 5);
        assert_eq!(out.buffered_chunks(), 3);
        out.flush().await.unwrap();
        let rec = out.get_ref();
        assert_eq!(rec.calls.len(), 1, "one gather write per flush");
        let iov = &rec.calls[0];
        assert_eq!(
            iov.len(),
            3,
            "copied writes, the big Bytes, the copied tail"
        );
        assert_eq!(
            iov[1],
            (big_ptr, 4096),
            "the large Bytes is sent from its own memory"
        );
        assert_eq!(rec.data.len(), 1000 + 4096 + 9);
        assert!(rec.data.ends_with(b"tailsmall"));
        assert_eq!(out.buffered(), 0);
        out.flush().await.unwrap();
        assert_eq!(out.get_ref().calls.len(), 1, "an empty flush sends nothing");
    });
}

#[test]
fn flush_resumes_after_short_writes() {
    rt(1).run(async {
        let sink = Recorder {
            limit: Some(7),
            ..Recorder::default()
        };
        let mut out = OutputStream::new(sink).with_zero_copy_min(4);
        let mut expect = Vec::new();
        for i in 0..10u8 {
            let chunk = vec![i; 5];
            expect.extend_from_slice(&chunk);
            out.write_bytes(Bytes::from(chunk)).await.unwrap();
        }
        out.close().await.unwrap();
        let rec = out.get_ref();
        assert_eq!(rec.data, expect);
        assert!(rec.shut);
        assert_eq!(rec.calls.len(), 50usize.div_ceil(7));
        let e = out.write(b"late").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    });
}

#[test]
fn a_full_buffer_flushes_by_itself() {
    rt(1).run(async {
        let mut out = OutputStream::with_buffer_size(Recorder::default(), 100);
        out.write(&[1; 60]).await.unwrap();
        assert!(out.get_ref().calls.is_empty());
        out.write(&[2; 60]).await.unwrap();
        assert_eq!(out.get_ref().calls.len(), 1);
        assert_eq!(out.buffered(), 0);
    });
}

#[test]
fn tcp_streams_carry_pipelined_records_both_ways() {
    rt(1).run(async {
        let (c, s) = tcp_pair().await;
        let server = spawn_local(async move {
            let (mut input, mut output) = s.into_streams();
            loop {
                let line = input.read_until(b'\n', 64).await.unwrap();
                if line.is_empty() {
                    break;
                }
                output.write_bytes(line).await.unwrap();
                if input.buffer().is_empty() {
                    output.flush().await.unwrap();
                }
            }
            output.close().await.unwrap();
        });
        let (mut input, mut output) = c.into_streams();
        const N: usize = 1000;
        for i in 0..N {
            output
                .write(format!("line {i}\n").as_bytes())
                .await
                .unwrap();
        }
        output.close().await.unwrap();
        for i in 0..N {
            let line = input.read_until(b'\n', 64).await.unwrap();
            assert_eq!(line, format!("line {i}\n").as_bytes());
        }
        assert!(input.read().await.unwrap().is_empty());
        server.await.unwrap();
    });
}

#[test]
fn unix_streams_work_like_tcp_streams() {
    rt(1).run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut ai, mut ao) = a.into_streams();
        let (mut bi, mut bo) = b.into_streams();
        ao.write(b"ping\n").await.unwrap();
        ao.flush().await.unwrap();
        assert_eq!(&bi.read_until(b'\n', 16).await.unwrap()[..], b"ping\n");
        bo.write(b"pong").await.unwrap();
        bo.close().await.unwrap();
        assert_eq!(&ai.read_exactly(4).await.unwrap()[..], b"pong");
        assert!(ai.read().await.unwrap().is_empty());
    });
}
