//! Buffered streams over any owned-buffer byte source or sink.
//!
//! [`DataSource`] and [`DataSink`] (Seastar's names) are the completion-style
//! counterparts of `Read` and `Write`: each call moves a buffer in and hands
//! it back with the result. [`InputStream`] adds a receive buffer with
//! framing helpers ([`read_exactly`](InputStream::read_exactly),
//! [`read_until`](InputStream::read_until)); [`OutputStream`] collects
//! writes and sends everything written since the last
//! [`flush`](OutputStream::flush) with one gather write, keeping large
//! [`Bytes`] as their own iovecs instead of copying them.
//!
//! This is the one stream model of the workspace: seastar-net's sockets
//! (`TcpStream`, `UnixStream`, for the socket itself, `&Socket` and
//! `Rc<Socket>`) and seastar-io's file streams (`FileInputStream`,
//! `FileOutputStream`) implement the same two traits, so the same
//! [`InputStream`] parses a file or a connection, and
//! [`OutputStream::close`] flushes and ends either the same way. In memory,
//! `&[u8]` is a source and `Vec<u8>` a sink (for tests and examples).
//!
//! ```
//! use seastar_core::stream::{InputStream, OutputStream};
//! # seastar_core::block_on(async {
//! let mut out = OutputStream::new(Vec::new());
//! out.write(b"set k 0 0 2\r\nhi\r\n").await.unwrap();
//! out.close().await.unwrap();
//! let written = out.into_inner();
//!
//! let mut input = InputStream::new(&written[..]);
//! assert_eq!(&input.read_until(b'\n', 64).await.unwrap()[..], b"set k 0 0 2\r\n");
//! assert_eq!(&input.read_exactly(4).await.unwrap()[..], b"hi\r\n");
//! assert!(input.read().await.unwrap().is_empty()); // end of stream
//! # });
//! ```

mod input;
mod output;

use std::future::Future;
use std::io;
use std::rc::Rc;

use bytes::{Buf, Bytes};

pub use input::InputStream;
pub use output::OutputStream;

use crate::io::{BufResult, IoBuf, IoBufMut};

/// A source of bytes read with owned buffers.
pub trait DataSource {
    /// Reads into `buf` from its start, up to its capacity; `Ok(0)` is end
    /// of stream.
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
}

/// A sink of bytes written with owned buffers.
pub trait DataSink {
    /// Writes some of `buf`; returns the count written.
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Writes some of `bufs` with one gather write; returns the total.
    fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>>;

    /// Ends the stream: the peer reads end of stream after what was written.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;
}

/// Errors of the stream helpers, carried inside an `io::Error` (downcast
/// with `io::Error::get_ref`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// [`InputStream::read_until`] saw no delimiter within its limit.
    #[error("no delimiter {delim:#04x} within the first {max} bytes")]
    DelimiterNotFound {
        /// The delimiter looked for.
        delim: u8,
        /// The limit, in bytes, delimiter included.
        max: usize,
    },
    /// The stream ended before the bytes asked for arrived.
    #[error("end of stream after {got} of {wanted} bytes")]
    UnexpectedEof {
        /// Bytes available at the end.
        got: usize,
        /// Bytes asked for.
        wanted: usize,
    },
    /// The output stream was closed.
    #[error("the output stream is closed")]
    Closed,
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        let kind = match e {
            StreamError::DelimiterNotFound { .. } => io::ErrorKind::InvalidData,
            StreamError::UnexpectedEof { .. } => io::ErrorKind::UnexpectedEof,
            StreamError::Closed => io::ErrorKind::BrokenPipe,
        };
        io::Error::new(kind, e)
    }
}

/// Writes every byte of `chunks` with one gather write per round trip to
/// the sink, dropping chunks as they are fully sent; on error, `chunks`
/// holds the unsent rest. [`OutputStream::flush`] is built on it; sinks
/// use it for their own `write_all` of several buffers.
///
/// ```
/// use bytes::Bytes;
/// # seastar_core::block_on(async {
/// let mut sink = Vec::new();
/// let mut chunks = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")];
/// seastar_core::stream::write_chunks(&mut sink, &mut chunks).await.unwrap();
/// assert_eq!(sink, b"abcd");
/// assert!(chunks.is_empty());
/// # });
/// ```
pub async fn write_chunks<S: DataSink>(sink: &mut S, chunks: &mut Vec<Bytes>) -> io::Result<()> {
    chunks.retain(|c| !c.is_empty());
    while !chunks.is_empty() {
        let r = if chunks.len() == 1 {
            let one = chunks.pop().expect("one chunk");
            let (r, b) = sink.write(one).await;
            chunks.push(b);
            r
        } else {
            let (r, back) = sink.writev(std::mem::take(chunks)).await;
            *chunks = back;
            r
        };
        let mut n = match r {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        let mut sent = 0;
        for c in chunks.iter_mut() {
            if n == 0 {
                break;
            }
            let k = n.min(c.len());
            c.advance(k);
            n -= k;
            if c.is_empty() {
                sent += 1;
            }
        }
        chunks.drain(..sent);
    }
    Ok(())
}

/// A shared handle reads through `&S` (sockets implement the traits for
/// `&Socket`, so one `Rc`'d connection feeds an input and an output stream).
impl<S> DataSource for Rc<S>
where
    for<'a> &'a S: DataSource,
{
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        let mut r: &S = self;
        r.read(buf).await
    }
}

/// A shared handle writes through `&S`.
impl<S> DataSink for Rc<S>
where
    for<'a> &'a S: DataSink,
{
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let mut r: &S = self;
        r.write(buf).await
    }

    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let mut r: &S = self;
        r.writev(bufs).await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        let mut r: &S = self;
        r.shutdown().await
    }
}

/// Reads from the front of the slice, which then starts after what was read.
impl DataSource for &[u8] {
    async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        let n = buf.put_slice(self);
        *self = &self[n..];
        (Ok(n), buf)
    }
}

/// Appends everything written; `shutdown` does nothing.
impl DataSink for Vec<u8> {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        self.extend_from_slice(buf.init_slice());
        (Ok(buf.bytes_init()), buf)
    }

    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let start = self.len();
        bufs.iter()
            .for_each(|b| self.extend_from_slice(b.init_slice()));
        (Ok(self.len() - start), bufs)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_source_reads_in_pieces_then_ends() {
        crate::block_on(async {
            let mut src: &[u8] = b"abcdef";
            let (r, buf) = src.read(Vec::with_capacity(4)).await;
            assert_eq!((r.unwrap(), &buf[..]), (4, &b"abcd"[..]));
            let (r, buf) = src.read(Vec::with_capacity(4)).await;
            assert_eq!((r.unwrap(), &buf[..]), (2, &b"ef"[..]));
            let (r, _) = src.read(Vec::with_capacity(4)).await;
            assert_eq!(r.unwrap(), 0);
        });
    }

    #[test]
    fn write_chunks_survives_partial_writes() {
        /// Takes at most 3 bytes per call.
        struct Trickle(Vec<u8>);
        impl DataSink for Trickle {
            async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
                let s = &buf.init_slice()[..buf.bytes_init().min(3)];
                self.0.extend_from_slice(s);
                (Ok(s.len()), buf)
            }
            async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
                let all: Vec<u8> = bufs.iter().flat_map(|b| b.init_slice().to_vec()).collect();
                let n = all.len().min(3);
                self.0.extend_from_slice(&all[..n]);
                (Ok(n), bufs)
            }
            async fn shutdown(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        crate::block_on(async {
            let mut sink = Trickle(Vec::new());
            let mut chunks = vec![
                Bytes::from_static(b"ab"),
                Bytes::new(),
                Bytes::from_static(b"cdefg"),
                Bytes::from_static(b"h"),
            ];
            write_chunks(&mut sink, &mut chunks).await.unwrap();
            assert_eq!(sink.0, b"abcdefgh");
            assert!(chunks.is_empty());
        });
    }
}
