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
//! Sockets implement both traits for themselves, for `&Socket` and for
//! `Rc<Socket>` (so one connection can feed an input and an output stream,
//! see [`TcpStream::into_streams`](crate::TcpStream::into_streams)).

mod input;
mod output;

use std::future::Future;
use std::io;

use bytes::{Buf, Bytes};
use seastar_core::io::{IoBuf, IoBufMut};

pub use input::InputStream;
pub use output::OutputStream;

use crate::BufResult;

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
/// the kernel, dropping chunks as they are fully sent; on error, `chunks`
/// holds the unsent rest.
pub(crate) async fn write_chunks<S: DataSink>(
    sink: &mut S,
    chunks: &mut Vec<Bytes>,
) -> io::Result<()> {
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
