//! [`FileInputStream`]: sequential reads with read-ahead.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use seastar_core::io::{BufResult, IoBufMut};
use seastar_core::stream::DataSource;

use crate::{AlignedBuf, DmaFile};

/// How a [`FileInputStream`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputStreamOptions {
    /// Bytes per read request (rounded up to the file's read alignment).
    pub buffer_size: usize,
    /// Read requests kept in flight ahead of the consumer (at least 1).
    pub read_ahead: usize,
}

impl Default for InputStreamOptions {
    /// 128 KiB requests, 4 in flight.
    fn default() -> Self {
        InputStreamOptions {
            buffer_size: 128 * 1024,
            read_ahead: 4,
        }
    }
}

type Read = Pin<Box<dyn Future<Output = io::Result<(AlignedBuf, usize)>>>>;

/// A [`Stream`] of the bytes of a range of a file, in buffers of up to
/// `buffer_size` bytes, with `read_ahead` reads in flight. It ends at the
/// end of the range or of the file; an error ends it too. Shard-local
/// (`!Send`), like the I/O scheduler it uses.
///
/// It is also a [`DataSource`], so seastar-core's buffered
/// [`InputStream`](seastar_core::stream::InputStream) parses a file as it
/// parses a socket (`read_until`, `read_exactly`); see the second example.
/// Reads copy out of the read-ahead buffers.
///
/// ```
/// # seastar_core::block_on(async {
/// use futures::TryStreamExt;
/// use seastar_io::{DmaFile, FileInputStream, InputStreamOptions, OpenOptions};
/// # let path = std::env::temp_dir().join(format!("sio-in-doc-{}", std::process::id()));
/// # seastar_io::fs::write(&path, vec![1u8; 10_000]).await.unwrap();
/// let f = DmaFile::open(&path, &OpenOptions::new().read(true)).await.unwrap();
/// let opts = InputStreamOptions { buffer_size: 4096, read_ahead: 2 };
/// let bufs: Vec<_> = FileInputStream::range(f, 100, 9_000, opts).try_collect().await.unwrap();
/// assert_eq!(bufs.iter().map(|b| b.len()).sum::<usize>(), 9_000);
/// # seastar_io::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_core::stream::InputStream;
/// use seastar_io::{DmaFile, FileInputStream, InputStreamOptions, OpenOptions};
/// # let path = std::env::temp_dir().join(format!("sio-in-doc2-{}", std::process::id()));
/// # seastar_io::fs::write(&path, b"first line\nsecond\n".to_vec()).await.unwrap();
/// let f = DmaFile::open(&path, &OpenOptions::new().read(true)).await.unwrap();
/// let mut lines = InputStream::new(FileInputStream::new(f, InputStreamOptions::default()));
/// assert_eq!(&lines.read_until(b'\n', 100).await.unwrap()[..], b"first line\n");
/// assert_eq!(&lines.read_until(b'\n', 100).await.unwrap()[..], b"second\n");
/// assert!(lines.read().await.unwrap().is_empty()); // end of file
/// # seastar_io::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
pub struct FileInputStream {
    file: DmaFile,
    next: u64,
    end: u64,
    opts: InputStreamOptions,
    pending: FuturesOrdered<Read>,
    eof: bool,
    /// A buffer taken from the read-ahead and read in part through
    /// [`DataSource`], with the offset of its first unread byte.
    partial: Option<(AlignedBuf, usize)>,
}

impl std::fmt::Debug for FileInputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileInputStream")
            .field("file", &self.file.path())
            .field("next", &self.next)
            .field("end", &self.end)
            .field("in_flight", &self.pending.len())
            .finish()
    }
}

impl FileInputStream {
    /// The whole file.
    pub fn new(file: DmaFile, opts: InputStreamOptions) -> FileInputStream {
        Self::range(file, 0, u64::MAX, opts)
    }

    /// `len` bytes from `start` (fewer if the file ends first).
    pub fn range(file: DmaFile, start: u64, len: u64, opts: InputStreamOptions) -> FileInputStream {
        let align = file.alignment().read;
        let opts = InputStreamOptions {
            buffer_size: opts.buffer_size.max(1).next_multiple_of(align),
            read_ahead: opts.read_ahead.max(1),
        };
        FileInputStream {
            file,
            next: start,
            end: start.saturating_add(len),
            opts,
            pending: FuturesOrdered::new(),
            eof: len == 0,
            partial: None,
        }
    }

    /// Issues reads until `read_ahead` are in flight or the range is covered.
    fn fill(&mut self) {
        while !self.eof && self.pending.len() < self.opts.read_ahead && self.next < self.end {
            let size = self.opts.buffer_size as u64;
            // Requests after the first start on buffer boundaries, so only
            // the first and last are unaligned.
            let chunk_end = ((self.next / size) + 1) * size;
            let len = chunk_end.min(self.end) - self.next;
            let (file, pos) = (self.file.clone(), self.next);
            self.pending.push_back(Box::pin(async move {
                let buf = file.read_at(pos, len as usize).await?;
                Ok((buf, len as usize))
            }));
            self.next += len;
        }
    }
}

impl Stream for FileInputStream {
    type Item = io::Result<AlignedBuf>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some((mut rest, off)) = this.partial.take() {
            // Read in part through `DataSource`: hand out the rest.
            rest.consume_front(off);
            return Poll::Ready(Some(Ok(rest)));
        }
        this.fill();
        if this.pending.is_empty() {
            return Poll::Ready(None);
        }
        match futures::ready!(Pin::new(&mut this.pending).poll_next(cx)) {
            Some(Ok((buf, asked))) => {
                if buf.len() < asked {
                    // End of file: what was read ahead beyond it is moot.
                    this.eof = true;
                    this.pending = FuturesOrdered::new();
                    if buf.is_empty() {
                        return Poll::Ready(None);
                    }
                }
                this.fill();
                Poll::Ready(Some(Ok(buf)))
            }
            Some(Err(e)) => {
                this.eof = true;
                this.pending = FuturesOrdered::new();
                Poll::Ready(Some(Err(e)))
            }
            None => Poll::Ready(None),
        }
    }
}

/// Copies the file's bytes in order into each buffer (up to its capacity;
/// `Ok(0)` at the end of the range or file). Mixed with the [`Stream`]
/// side, the two consume the same bytes in order.
impl DataSource for FileInputStream {
    async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        if self.partial.is_none() {
            match self.next().await {
                Some(Ok(next)) => self.partial = Some((next, 0)),
                Some(Err(e)) => return (Err(e), buf),
                None => return (Ok(0), buf),
            }
        }
        let (cur, off) = self.partial.as_mut().expect("filled above");
        let n = buf.put_slice(&cur[*off..]);
        *off += n;
        if *off == cur.len() {
            self.partial = None;
        }
        (Ok(n), buf)
    }
}
