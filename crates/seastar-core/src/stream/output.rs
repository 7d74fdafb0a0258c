//! [`OutputStream`]: write buffering with one gather write per flush.

use std::fmt;
use std::io;

use bytes::{Bytes, BytesMut};

use super::{DataSink, StreamError, write_chunks};

/// Default amount buffered before a write flushes by itself.
const BUFFER_SIZE: usize = 64 * 1024;
/// `Bytes` at least this long are sent from their own memory.
const ZERO_COPY_MIN: usize = 1024;

/// A buffered writer over a [`DataSink`].
///
/// Small writes are copied into a buffer; [`Bytes`] of 1 KiB or more
/// (see [`with_zero_copy_min`](Self::with_zero_copy_min)) are kept as they
/// are, as their own iovec. [`flush`](Self::flush) sends everything written
/// since the previous flush with one `writev` (more only if the kernel
/// takes it in parts). A write that brings the buffered total to the
/// buffer size (64 KiB by default) flushes by itself.
///
/// Dropping the stream drops unflushed bytes: call [`close`](Self::close)
/// (flush, then end the stream) or [`flush`](Self::flush).
///
/// ```
/// use bytes::Bytes;
/// use seastar_core::stream::OutputStream;
/// # seastar_core::block_on(async {
/// // Any `DataSink`: a socket (seastar-net), a file stream (seastar-io),
/// // or a `Vec<u8>` as here.
/// let mut out = OutputStream::new(Vec::new());
/// out.write(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
/// out.write_bytes(Bytes::from(vec![b'x'; 4096])).await.unwrap(); // not copied
/// out.close().await.unwrap(); // one writev, then end of stream
/// assert_eq!(out.into_inner().len(), 19 + 4096);
/// # });
/// ```
pub struct OutputStream<S> {
    sink: S,
    chunks: Vec<Bytes>,
    cur: BytesMut,
    pending: usize,
    buffer_size: usize,
    zero_copy_min: usize,
    closed: bool,
}

impl<S> fmt::Debug for OutputStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputStream")
            .field("pending", &self.pending)
            .field(
                "chunks",
                &(self.chunks.len() + usize::from(!self.cur.is_empty())),
            )
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<S: DataSink> OutputStream<S> {
    /// A stream flushing by itself at 64 KiB.
    pub fn new(sink: S) -> Self {
        Self::with_buffer_size(sink, BUFFER_SIZE)
    }

    /// A stream flushing by itself once `size` bytes are buffered.
    pub fn with_buffer_size(sink: S, size: usize) -> Self {
        OutputStream {
            sink,
            chunks: Vec::new(),
            cur: BytesMut::new(),
            pending: 0,
            buffer_size: size.max(1),
            zero_copy_min: ZERO_COPY_MIN,
            closed: false,
        }
    }

    /// Sets the size from which [`write_bytes`](Self::write_bytes) keeps a
    /// `Bytes` as its own iovec instead of copying it.
    pub fn with_zero_copy_min(mut self, bytes: usize) -> Self {
        self.zero_copy_min = bytes;
        self
    }

    /// Bytes written and not flushed yet.
    pub fn buffered(&self) -> usize {
        self.pending
    }

    /// Number of iovecs the next flush will send.
    pub fn buffered_chunks(&self) -> usize {
        self.chunks.len() + usize::from(!self.cur.is_empty())
    }

    fn check_open(&self) -> io::Result<()> {
        if self.closed {
            return Err(StreamError::Closed.into());
        }
        Ok(())
    }

    fn seal(&mut self) {
        if !self.cur.is_empty() {
            self.chunks.push(self.cur.split().freeze());
        }
    }

    /// Buffers a copy of `data`; flushes if the buffer is full.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.check_open()?;
        if self.cur.capacity() - self.cur.len() < data.len() {
            self.cur.reserve(data.len().max(4096));
        }
        self.cur.extend_from_slice(data);
        self.pending += data.len();
        self.flush_if_full().await
    }

    /// Buffers `data`: kept as its own iovec (no copy) when at least the
    /// zero-copy size (1 KiB by default), copied otherwise. Flushes if the
    /// buffer is full.
    pub async fn write_bytes(&mut self, data: Bytes) -> io::Result<()> {
        self.check_open()?;
        if data.len() < self.zero_copy_min {
            return self.write(&data).await;
        }
        self.seal();
        self.pending += data.len();
        self.chunks.push(data);
        self.flush_if_full().await
    }

    async fn flush_if_full(&mut self) -> io::Result<()> {
        if self.pending >= self.buffer_size {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends everything buffered, with one gather write when the kernel
    /// takes it all. On error the unsent bytes stay buffered.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.seal();
        let r = write_chunks(&mut self.sink, &mut self.chunks).await;
        self.pending = self.chunks.iter().map(Bytes::len).sum();
        r
    }

    /// Flushes, then ends the stream (the peer reads end of stream).
    /// Later writes fail.
    pub async fn close(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.flush().await?;
        self.closed = true;
        self.sink.shutdown().await
    }

    /// The sink.
    pub fn get_ref(&self) -> &S {
        &self.sink
    }

    /// The sink back; unflushed bytes are dropped.
    pub fn into_inner(self) -> S {
        self.sink
    }
}
