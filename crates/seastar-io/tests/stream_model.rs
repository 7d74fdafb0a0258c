//! Files in seastar-core's stream model: the same buffered `InputStream`
//! and `OutputStream` that run over sockets, over file streams.

mod common;

use bytes::Bytes;
use common::{TestDir, pattern};
use futures::StreamExt;
use seastar_core::stream::{InputStream, OutputStream, StreamError};
use seastar_io::fs;
use seastar_io::{
    DmaFile, FileInputStream, FileOutputStream, InputStreamOptions, OpenOptions,
    OutputStreamOptions,
};

fn small() -> InputStreamOptions {
    InputStreamOptions {
        buffer_size: 4096,
        read_ahead: 2,
    }
}

#[seastar_core::test]
async fn input_stream_frames_records_across_file_buffers() {
    let dir = TestDir::new("model-in");
    let path = dir.path("f");
    // Records "<len>\n<body>" whose bodies straddle the 4 KiB buffers.
    let mut want = Vec::new();
    let mut file = Vec::new();
    for i in 0..40usize {
        let body = pattern(i as u64 * 31, 100 + i * 97);
        file.extend_from_slice(format!("{}\n", body.len()).as_bytes());
        file.extend_from_slice(&body);
        want.push(body);
    }
    fs::write(&path, file.clone()).await.unwrap();
    let f = DmaFile::open(&path, &OpenOptions::new().read(true))
        .await
        .unwrap();

    let mut input = InputStream::with_read_size(FileInputStream::new(f, small()), 1000);
    for (i, body) in want.iter().enumerate() {
        let head = input.read_until(b'\n', 16).await.unwrap();
        let len: usize = std::str::from_utf8(&head[..head.len() - 1])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len(), "record {i}");
        assert_eq!(&input.read_exactly(len).await.unwrap()[..], &body[..]);
    }
    assert!(input.read().await.unwrap().is_empty(), "end of file");
    assert!(input.is_eof());
}

#[seastar_core::test]
async fn input_stream_reports_a_short_file_and_a_missing_delimiter() {
    let dir = TestDir::new("model-short");
    let path = dir.path("f");
    fs::write(&path, b"no newline here".to_vec()).await.unwrap();
    let f = DmaFile::open(&path, &OpenOptions::new().read(true))
        .await
        .unwrap();

    let mut input = InputStream::new(FileInputStream::new(f.clone(), small()));
    let e = input.read_until(b'\n', 8).await.unwrap_err();
    assert_eq!(
        e.get_ref().and_then(|e| e.downcast_ref::<StreamError>()),
        Some(&StreamError::DelimiterNotFound {
            delim: b'\n',
            max: 8
        })
    );
    let mut input = InputStream::new(FileInputStream::new(f, small()));
    let e = input.read_exactly(100).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(input.buffer(), b"no newline here", "what arrived stays");
}

#[seastar_core::test]
async fn a_file_stream_read_in_part_then_as_buffers_loses_nothing() {
    let dir = TestDir::new("model-mixed");
    let path = dir.path("f");
    let data = pattern(5, 10_000);
    fs::write(&path, data.clone()).await.unwrap();
    let f = DmaFile::open(&path, &OpenOptions::new().read(true))
        .await
        .unwrap();

    let mut s = FileInputStream::new(f, small());
    let (r, head) = seastar_core::stream::DataSource::read(&mut s, Vec::with_capacity(1000)).await;
    assert_eq!(r.unwrap(), 1000);
    let mut got = head;
    while let Some(buf) = s.next().await {
        got.extend_from_slice(&buf.unwrap());
    }
    assert_eq!(got, data);
}

#[seastar_core::test]
async fn output_stream_closes_a_file_as_it_closes_a_socket() {
    let dir = TestDir::new("model-out");
    let path = dir.path("f");
    let opts = OpenOptions::new().write(true).create(true).truncate(true);
    let f = DmaFile::open(&path, &opts).await.unwrap();
    let file = FileOutputStream::new(
        f.clone(),
        OutputStreamOptions {
            buffer_size: 4096,
            write_behind: 2,
        },
    );
    // A small buffer so writes flush by themselves; large Bytes go as
    // their own chunks.
    let mut out = OutputStream::with_buffer_size(file, 3000);
    let mut want = Vec::new();
    for i in 0..50u64 {
        let small = pattern(i, 123);
        out.write(&small).await.unwrap();
        want.extend_from_slice(&small);
        let big = pattern(i * 7, 2048 + i as usize);
        out.write_bytes(Bytes::from(big.clone())).await.unwrap();
        want.extend_from_slice(&big);
    }
    out.close().await.unwrap();
    assert_eq!(f.size().await.unwrap(), want.len() as u64, "tail cut");
    assert_eq!(fs::read(&path).await.unwrap(), want);
    let e = out.write(b"late").await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "closed stream");
}
