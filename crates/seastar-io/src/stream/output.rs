//! [`FileOutputStream`]: sequential writes with write-behind.

use std::future::Future;
use std::io;
use std::pin::Pin;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use seastar_core::io::{BufResult, IoBuf};
use seastar_core::stream::DataSink;

use crate::{AlignedBuf, DmaFile};

/// How a [`FileOutputStream`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputStreamOptions {
    /// Bytes per write request (rounded up to the file's write alignment).
    pub buffer_size: usize,
    /// Writes kept in flight behind the producer (at least 1).
    pub write_behind: usize,
}

impl Default for OutputStreamOptions {
    /// 128 KiB requests, 4 in flight.
    fn default() -> Self {
        OutputStreamOptions {
            buffer_size: 128 * 1024,
            write_behind: 4,
        }
    }
}

type Write = Pin<Box<dyn Future<Output = (io::Result<()>, AlignedBuf)>>>;

/// Writes a file sequentially from offset 0 in aligned buffers of
/// `buffer_size` bytes, with up to `write_behind` writes in flight.
/// [`flush`](Self::flush) writes the partial last buffer padded with zeroes
/// to the alignment and cuts the file to the length written;
/// [`close`](Self::close) flushes. An error of a write in flight is
/// reported by the next call. Shard-local (`!Send`).
///
/// It is also a [`DataSink`] (`shutdown` flushes), so seastar-core's
/// buffered [`OutputStream`](seastar_core::stream::OutputStream) writes a
/// file as it writes a socket, and its `close` flushes and ends either the
/// same way; see the second example.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_io::{DmaFile, FileOutputStream, OpenOptions, OutputStreamOptions};
/// let path = std::env::temp_dir().join(format!("sio-out-doc-{}", std::process::id()));
/// let opts = OpenOptions::new().write(true).create(true).truncate(true);
/// let f = DmaFile::open(&path, &opts).await.unwrap();
/// let mut out = FileOutputStream::new(f, OutputStreamOptions::default());
/// out.write(b"hello ").await.unwrap();
/// out.write(b"world").await.unwrap();
/// out.close().await.unwrap();
/// assert_eq!(seastar_io::fs::read(&path).await.unwrap(), b"hello world");
/// # seastar_io::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_core::stream::OutputStream;
/// use seastar_io::{DmaFile, FileOutputStream, OpenOptions, OutputStreamOptions};
/// let path = std::env::temp_dir().join(format!("sio-out-doc2-{}", std::process::id()));
/// let opts = OpenOptions::new().write(true).create(true).truncate(true);
/// let f = DmaFile::open(&path, &opts).await.unwrap();
/// let mut out = OutputStream::new(FileOutputStream::new(f, OutputStreamOptions::default()));
/// out.write(b"hello ").await.unwrap();
/// out.write_bytes(bytes::Bytes::from_static(b"world")).await.unwrap();
/// out.close().await.unwrap(); // as for a socket: flush, then end
/// assert_eq!(seastar_io::fs::read(&path).await.unwrap(), b"hello world");
/// # seastar_io::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
pub struct FileOutputStream {
    file: DmaFile,
    /// Offset of `buf`'s first byte in the file.
    pos: u64,
    buf: AlignedBuf,
    spare: Vec<AlignedBuf>,
    pending: FuturesUnordered<Write>,
    opts: OutputStreamOptions,
    error: Option<io::Error>,
}

impl std::fmt::Debug for FileOutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileOutputStream")
            .field("file", &self.file.path())
            .field("written", &self.len())
            .field("in_flight", &self.pending.len())
            .finish()
    }
}

impl FileOutputStream {
    /// A stream writing `file` from offset 0.
    pub fn new(file: DmaFile, opts: OutputStreamOptions) -> FileOutputStream {
        let a = file.alignment();
        let opts = OutputStreamOptions {
            buffer_size: opts
                .buffer_size
                .max(1)
                .next_multiple_of(a.write.max(a.read)),
            write_behind: opts.write_behind.max(1),
        };
        FileOutputStream {
            buf: AlignedBuf::with_capacity(opts.buffer_size, a.memory),
            file,
            pos: 0,
            spare: Vec::new(),
            pending: FuturesUnordered::new(),
            opts,
            error: None,
        }
    }

    /// Bytes accepted so far (the file's length after `flush`).
    pub fn len(&self) -> u64 {
        self.pos + self.buf.len() as u64
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write_request(&self, pos: u64, buf: AlignedBuf) -> Write {
        let file = self.file.clone();
        Box::pin(async move {
            let want = buf.len();
            let (res, buf) = file.write_at(pos, buf).await;
            let res = match res {
                Ok(n) if n == want => Ok(()),
                Ok(n) => Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "short write of {n} of {want} bytes at {pos} to {}",
                        file.path().display()
                    ),
                )),
                Err(e) => Err(e),
            };
            (res, buf)
        })
    }

    /// Waits for one write in flight; keeps its buffer for reuse.
    async fn reap_one(&mut self) -> io::Result<()> {
        if let Some((res, mut buf)) = self.pending.next().await {
            buf.clear();
            self.spare.push(buf);
            if let Err(e) = res {
                self.error.get_or_insert(e);
            }
        }
        self.check()
    }

    fn check(&mut self) -> io::Result<()> {
        match self.error.take() {
            Some(e) => {
                let again = io::Error::new(e.kind(), e.to_string());
                self.error = Some(again);
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Appends `data`; full buffers are written behind.
    pub async fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.check()?;
        while !data.is_empty() {
            let n = self.buf.extend_from_slice(data);
            data = &data[n..];
            if self.buf.remaining() == 0 {
                while self.pending.len() >= self.opts.write_behind {
                    self.reap_one().await?;
                }
                let next = self.spare.pop().unwrap_or_else(|| {
                    AlignedBuf::with_capacity(self.opts.buffer_size, self.buf.align())
                });
                let full = std::mem::replace(&mut self.buf, next);
                let len = full.len() as u64;
                let req = self.write_request(self.pos, full);
                self.pending.push(req);
                self.pos += len;
            }
        }
        Ok(())
    }

    /// Waits for the writes in flight, writes the partial last buffer
    /// (padded to the alignment; the bytes stay buffered so later writes
    /// extend them) and cuts the file to [`len`](Self::len) bytes.
    pub async fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            self.reap_one().await?;
        }
        self.check()?;
        let tail = self.buf.len();
        if tail > 0 {
            let a = self.file.alignment().read;
            let mut padded = self.spare.pop().unwrap_or_else(|| {
                AlignedBuf::with_capacity(self.opts.buffer_size, self.buf.align())
            });
            padded.extend_from_slice(&self.buf);
            padded.resize(tail.next_multiple_of(a));
            let (res, mut padded) = self.write_request(self.pos, padded).await;
            padded.clear();
            self.spare.push(padded);
            res?;
        }
        let len = self.len();
        if self.file.size().await? != len {
            self.file.truncate(len).await?;
        }
        Ok(())
    }

    /// Flushes and ends the stream (the file stays open for other handles).
    pub async fn close(mut self) -> io::Result<()> {
        self.flush().await
    }
}

/// Takes every byte of each buffer (the stream buffers and writes behind);
/// `shutdown` is [`flush`](FileOutputStream::flush). An error reports no
/// count: the stream's errors are sticky, so nothing after it is written.
impl DataSink for FileOutputStream {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let r = FileOutputStream::write(self, buf.init_slice()).await;
        (r.map(|()| buf.bytes_init()), buf)
    }

    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let mut total = 0;
        for b in &bufs {
            if let Err(e) = FileOutputStream::write(self, b.init_slice()).await {
                return (Err(e), bufs);
            }
            total += b.bytes_init();
        }
        (Ok(total), bufs)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await
    }
}
