//! [`InputStream`]: a receive buffer with framing helpers.

use std::fmt;
use std::io;

use bytes::{Buf, Bytes, BytesMut};

use super::{DataSource, StreamError};

/// Default size of one read from the source.
const READ_SIZE: usize = 8 * 1024;

/// A buffered reader over a [`DataSource`].
///
/// Received bytes land in one internal buffer; the methods hand out
/// [`Bytes`] that share its memory (no copy). The stream reads from its
/// source only when the buffer cannot satisfy a call.
///
/// Errors leave the buffered bytes in place: after a
/// [`read_until`](Self::read_until) that found no delimiter within its
/// limit, or a [`read_exactly`](Self::read_exactly) that hit end of stream,
/// [`buffer`](Self::buffer) still holds what arrived.
///
/// Cancelling a call (dropping its future) never loses buffered bytes, but
/// on io_uring may lose bytes of the read in flight: do not race reads
/// against other futures; end the connection instead.
///
/// ```
/// use seastar_core::stream::InputStream;
/// # seastar_core::block_on(async {
/// // Any `DataSource`: a socket (seastar-net), a file stream
/// // (seastar-io), or bytes in memory as here.
/// let mut input = InputStream::new(&b"GET /\r\nbody!"[..]);
/// assert_eq!(&input.read_until(b'\n', 1024).await.unwrap()[..], b"GET /\r\n");
/// assert_eq!(&input.read_exactly(5).await.unwrap()[..], b"body!");
/// assert!(input.read().await.unwrap().is_empty()); // end of stream
/// # });
/// ```
pub struct InputStream<S> {
    source: S,
    buf: BytesMut,
    eof: bool,
    read_size: usize,
}

impl<S> fmt::Debug for InputStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputStream")
            .field("buffered", &self.buf.len())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<S: DataSource> InputStream<S> {
    /// A stream reading 8 KiB at a time.
    pub fn new(source: S) -> Self {
        Self::with_read_size(source, READ_SIZE)
    }

    /// A stream reading at least `read_size` bytes of room at a time.
    pub fn with_read_size(source: S, read_size: usize) -> Self {
        InputStream {
            source,
            buf: BytesMut::new(),
            eof: false,
            read_size: read_size.max(64),
        }
    }

    /// The bytes received and not consumed yet.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the source ended and every byte was consumed.
    pub fn is_eof(&self) -> bool {
        self.eof && self.buf.is_empty()
    }

    /// Reads once from the source, appending to the buffer; returns the
    /// count, 0 at end of stream.
    ///
    /// The read goes straight into the buffer's spare room (split off and
    /// rejoined, no copy), so a dropped read loses only that room.
    async fn fill_more(&mut self) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        if self.buf.capacity() - self.buf.len() < self.read_size / 4 {
            self.buf.reserve(self.read_size);
        }
        let spare = self.buf.split_off(self.buf.len());
        let (r, spare) = self.source.read(spare).await;
        self.buf.unsplit(spare);
        let n = r?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// The buffered bytes, reading once if there are none; empty only at
    /// end of stream. Pair with [`consume`](Self::consume).
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.buf.is_empty() {
            self.fill_more().await?;
        }
        Ok(&self.buf)
    }

    /// Drops the first `n` buffered bytes (at most all of them).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
    }

    /// Everything buffered, or the bytes of one read if nothing is; empty
    /// at end of stream.
    pub async fn read(&mut self) -> io::Result<Bytes> {
        if self.buf.is_empty() {
            self.fill_more().await?;
        }
        Ok(self.buf.split().freeze())
    }

    /// Like [`read`](Self::read), but at most `max` bytes.
    pub async fn read_up_to(&mut self, max: usize) -> io::Result<Bytes> {
        if self.buf.is_empty() && max > 0 {
            self.fill_more().await?;
        }
        let n = max.min(self.buf.len());
        Ok(self.buf.split_to(n).freeze())
    }

    /// Exactly `n` bytes; an `UnexpectedEof` error (with
    /// [`StreamError::UnexpectedEof`] inside) if the stream ends first.
    pub async fn read_exactly(&mut self, n: usize) -> io::Result<Bytes> {
        if self.buf.len() < n {
            self.buf.reserve(n - self.buf.len());
        }
        while self.buf.len() < n {
            if self.fill_more().await? == 0 {
                return Err(StreamError::UnexpectedEof {
                    got: self.buf.len(),
                    wanted: n,
                }
                .into());
            }
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// The bytes up to and including the first `delim`, at most `max` of
    /// them (delimiter included).
    ///
    /// Errors: `InvalidData` with [`StreamError::DelimiterNotFound`] when
    /// `max` bytes arrived without a delimiter (the bytes stay buffered:
    /// [`consume`](Self::consume) them to skip), `UnexpectedEof` when the
    /// stream ends in the middle of a delimited record. At a clean end of
    /// stream (nothing buffered) it returns an empty `Bytes`.
    pub async fn read_until(&mut self, delim: u8, max: usize) -> io::Result<Bytes> {
        let mut scanned = 0;
        loop {
            let window = &self.buf[scanned..self.buf.len().min(max)];
            if let Some(i) = memchr::memchr(delim, window) {
                return Ok(self.buf.split_to(scanned + i + 1).freeze());
            }
            if self.buf.len() >= max {
                return Err(StreamError::DelimiterNotFound { delim, max }.into());
            }
            scanned = self.buf.len();
            if self.fill_more().await? == 0 {
                if self.buf.is_empty() {
                    return Ok(Bytes::new());
                }
                return Err(StreamError::UnexpectedEof {
                    got: self.buf.len(),
                    wanted: self.buf.len() + 1,
                }
                .into());
            }
        }
    }

    /// Discards the next `n` bytes; `UnexpectedEof` if the stream ends first.
    pub async fn skip(&mut self, mut n: usize) -> io::Result<()> {
        loop {
            let k = n.min(self.buf.len());
            self.buf.advance(k);
            n -= k;
            if n == 0 {
                return Ok(());
            }
            if self.fill_more().await? == 0 {
                return Err(StreamError::UnexpectedEof { got: 0, wanted: n }.into());
            }
        }
    }

    /// The source.
    pub fn get_ref(&self) -> &S {
        &self.source
    }

    /// The source back; buffered bytes are dropped.
    pub fn into_inner(self) -> S {
        self.source
    }
}
