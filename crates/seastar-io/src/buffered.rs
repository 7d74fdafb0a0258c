//! [`File`]: a buffered (page-cache) file for small files, configuration
//! and anything that does not want alignment rules.
//!
//! Reads and writes take any owned buffer ([`IoBuf`]/[`IoBufMut`]: `Vec`,
//! `Bytes`, `BytesMut`, [`AlignedBuf`](crate::AlignedBuf), ...) at any
//! offset, and go through the shard's I/O scheduler like a
//! [`DmaFile`](crate::DmaFile)'s.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use seastar_core::io::file::{self, SharedFd};
use seastar_core::io::{IoBuf, IoBufMut};

use crate::error::{ctx, with_path};
use crate::sched::{self, Dir};
use crate::{IoClass, Metadata, OpenOptions};

/// A buffered file. Cheap to clone; the descriptor closes with the last
/// clone (or explicitly with [`close`](File::close)).
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_io::File;
/// let path = std::env::temp_dir().join(format!("sio-file-doc-{}", std::process::id()));
/// let f = File::create(&path).await.unwrap();
/// f.write_all_at(0, &b"hello world"[..]).await.unwrap();
/// let (n, buf) = f.read_at(6, Vec::with_capacity(16)).await;
/// assert_eq!(&buf[..n.unwrap()], b"world");
/// assert_eq!(File::open(&path).await.unwrap().read_to_end().await.unwrap(), b"hello world");
/// f.close().await.unwrap();
/// seastar_io::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct File {
    fd: SharedFd,
    path: Arc<PathBuf>,
    class: IoClass,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl File {
    /// Opens `path` read-only.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        Self::open_with(path, &OpenOptions::new().read(true)).await
    }

    /// Creates (or truncates) `path` for reading and writing.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        Self::open_with(
            path,
            &OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true),
        )
        .await
    }

    /// Opens `path` as `options` say (`direct` is ignored).
    pub async fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> io::Result<File> {
        let path = path.as_ref();
        let flags = options.flags(path)?;
        let fd = ctx(
            "open",
            path,
            file::open(path, flags, options.mode_bits()).await,
        )?;
        Ok(File {
            fd,
            path: Arc::new(path.to_path_buf()),
            class: options.class.clone(),
        })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle to the same file whose requests go to `class`.
    pub fn with_class(&self, class: IoClass) -> File {
        File {
            class,
            ..self.clone()
        }
    }

    /// Reads into `buf` (up to its capacity) at `pos`; returns the count
    /// (0 at the end of the file) and the buffer.
    pub async fn read_at<B: IoBufMut + Send>(
        &self,
        pos: u64,
        mut buf: B,
    ) -> (io::Result<usize>, B) {
        let len = buf.bytes_total();
        let (res, buf) = sched::run(
            &self.class,
            Dir::Read,
            len,
            file::read_at(&self.fd, buf, pos),
        )
        .await;
        (ctx("read", &self.path, res), buf)
    }

    /// Writes `buf` at `pos`; returns the count written (possibly short)
    /// and the buffer.
    pub async fn write_at<B: IoBuf + Send>(&self, pos: u64, buf: B) -> (io::Result<usize>, B) {
        let len = buf.bytes_init();
        let (res, buf) = sched::run(
            &self.class,
            Dir::Write,
            len,
            file::write_at(&self.fd, buf, pos),
        )
        .await;
        (ctx("write", &self.path, res), buf)
    }

    /// Writes all of `data` at `pos`, continuing after short writes.
    pub async fn write_all_at(&self, pos: u64, data: impl Into<Bytes>) -> io::Result<()> {
        let mut data: Bytes = data.into();
        let mut pos = pos;
        while !data.is_empty() {
            let (res, rest) = self.write_at(pos, data).await;
            let n = res?;
            if n == 0 {
                return Err(with_path(
                    "write",
                    &self.path,
                    io::ErrorKind::WriteZero.into(),
                ));
            }
            data = rest.slice(n..);
            pos += n as u64;
        }
        Ok(())
    }

    /// Reads the whole file from offset 0.
    pub async fn read_to_end(&self) -> io::Result<Vec<u8>> {
        let size = self.size().await? as usize;
        let mut out: Vec<u8> = Vec::with_capacity(size);
        let mut chunk = size.clamp(4096, 1 << 20) + 1;
        loop {
            let (res, buf) = self
                .read_at(out.len() as u64, Vec::with_capacity(chunk))
                .await;
            let n = res?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
            chunk = chunk.max(n);
        }
    }

    /// The file's size.
    pub async fn size(&self) -> io::Result<u64> {
        Ok(self.stat().await?.len())
    }

    /// The file's metadata.
    pub async fn stat(&self) -> io::Result<Metadata> {
        ctx("statx", &self.path, file::statx(&self.fd).await).map(Metadata::from_statx)
    }

    /// Flushes data and metadata to the device.
    pub async fn sync_all(&self) -> io::Result<()> {
        ctx(
            "fsync",
            &self.path,
            seastar_core::io::fsync(self.fd.as_raw_fd()).await,
        )
    }

    /// Flushes the data to the device.
    pub async fn sync_data(&self) -> io::Result<()> {
        ctx(
            "fdatasync",
            &self.path,
            seastar_core::io::fdatasync(self.fd.as_raw_fd()).await,
        )
    }

    /// Sets the file's size.
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        ctx("truncate", &self.path, file::ftruncate(&self.fd, len).await)
    }

    /// Closes the file (see [`DmaFile::close`](crate::DmaFile::close)).
    pub async fn close(self) -> io::Result<()> {
        let Ok(fd) = Arc::try_unwrap(self.fd) else {
            return Ok(());
        };
        let raw = fd.into_raw_fd();
        // SAFETY: we own `raw` (taken out of the only OwnedFd).
        if unsafe { libc::close(raw) } < 0 {
            return Err(with_path("close", &self.path, io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
