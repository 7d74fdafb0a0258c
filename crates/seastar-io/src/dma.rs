//! [`DmaFile`]: a file read and written with `O_DIRECT`, through the
//! shard's I/O scheduler.
//!
//! Direct I/O skips the page cache: each read or write is one transfer
//! between the device and an [`AlignedBuf`], so its offset, length and
//! memory must be aligned to what the device accepts. The alignment is
//! discovered at open with `statx(STATX_DIOALIGN)`, or from the block
//! device's logical block size in sysfs on kernels that do not report it.
//! On a file system that refuses `O_DIRECT` the file is opened buffered
//! instead (and the reason logged at `info`); the API and the scheduling
//! stay the same, only the alignment requirement drops to 1.
//!
//! [`read_at`](DmaFile::read_at) accepts any offset and length (it reads
//! the aligned range around them and trims), [`write_at`](DmaFile::write_at)
//! requires aligned ones. Errors name the file (see [`FileError`](crate::FileError)).

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use seastar_core::io::file::{self, SharedFd};

use crate::error::{ctx, invalid, with_path};
use crate::sched::{self, Dir};
use crate::{AlignedBuf, IoClass, Metadata, OpenOptions};

/// Requests closer than this are merged by [`DmaFile::read_bulk`] into one
/// read of at most [`MAX_COALESCED_READ`] bytes.
pub const MAX_COALESCED_READ: usize = 128 * 1024;

/// What a direct transfer must be aligned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alignment {
    /// Alignment of buffer addresses (at least a page, to be safe).
    pub memory: usize,
    /// Alignment of read offsets and lengths.
    pub read: usize,
    /// Alignment of write offsets and lengths the device handles best (a
    /// multiple of `read`; writes need only `read` alignment to succeed).
    pub write: usize,
}

impl Alignment {
    /// No requirement (buffered files).
    const NONE: Alignment = Alignment {
        memory: 4096,
        read: 1,
        write: 1,
    };
}

struct Inner {
    fd: SharedFd,
    path: PathBuf,
    align: Alignment,
    direct: bool,
}

/// A file for direct, scheduled I/O. Cheap to clone (clones share the
/// descriptor, which closes when the last clone is gone); usable from the
/// shard that does the I/O (the scheduler is per shard; the handle itself
/// is `Send`).
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_io::{AlignedBuf, DmaFile, OpenOptions};
/// let path = std::env::temp_dir().join(format!("sio-dma-doc-{}", std::process::id()));
/// let opts = OpenOptions::new().read(true).write(true).create(true).truncate(true);
/// let f = DmaFile::open(&path, &opts).await.unwrap();
/// let mut buf = f.alloc_buf(4096);
/// buf.extend_from_slice(&[7u8; 4096]);
/// let (n, _buf) = f.write_at(0, buf).await;
/// assert_eq!(n.unwrap(), 4096);
/// let back = f.read_at(10, 20).await.unwrap(); // any offset and length
/// assert_eq!(&back[..], &[7u8; 20]);
/// assert_eq!(f.size().await.unwrap(), 4096);
/// f.close().await.unwrap();
/// seastar_io::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct DmaFile {
    inner: Arc<Inner>,
    class: IoClass,
}

impl std::fmt::Debug for DmaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaFile")
            .field("path", &self.inner.path)
            .field("fd", &self.inner.fd.as_raw_fd())
            .field("direct", &self.inner.direct)
            .field("align", &self.inner.align)
            .field("class", &self.class)
            .finish()
    }
}

impl DmaFile {
    /// Opens `path` as `options` say (with `O_DIRECT` unless
    /// `options.direct(false)`).
    pub async fn open(path: impl AsRef<Path>, options: &OpenOptions) -> io::Result<DmaFile> {
        let path = path.as_ref();
        let flags = options.flags(path)?;
        let mode = options.mode_bits();
        let mut direct = options.direct;
        let fd = if direct {
            match file::open(path, flags | libc::O_DIRECT, mode).await {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::info!(
                        path = %path.display(),
                        "the file system refuses O_DIRECT; using buffered I/O for this file"
                    );
                    direct = false;
                    // The failed attempt may have created the file already.
                    ctx(
                        "open",
                        path,
                        file::open(path, flags & !libc::O_EXCL, mode).await,
                    )?
                }
                Err(e) => return Err(with_path("open", path, e)),
            }
        } else {
            ctx("open", path, file::open(path, flags, mode).await)?
        };
        let align = if direct {
            ctx("statx", path, discover_alignment(&fd).await)?
        } else {
            Alignment::NONE
        };
        tracing::debug!(path = %path.display(), direct, ?align, "opened");
        Ok(DmaFile {
            inner: Arc::new(Inner {
                fd,
                path: path.to_path_buf(),
                align,
                direct,
            }),
            class: options.class.clone(),
        })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether I/O bypasses the page cache (`false` after the fallback).
    pub fn is_direct(&self) -> bool {
        self.inner.direct
    }

    /// The alignment transfers need.
    pub fn alignment(&self) -> Alignment {
        self.inner.align
    }

    /// The class this handle's requests are scheduled in.
    pub fn class(&self) -> &IoClass {
        &self.class
    }

    /// A handle to the same file whose requests go to `class`.
    pub fn with_class(&self, class: IoClass) -> DmaFile {
        DmaFile {
            inner: self.inner.clone(),
            class,
        }
    }

    /// An empty buffer suited to this file with room for `len` bytes
    /// rounded up to the read alignment.
    pub fn alloc_buf(&self, len: usize) -> AlignedBuf {
        let a = self.inner.align;
        AlignedBuf::with_capacity(len.next_multiple_of(a.read), a.memory)
    }

    fn check(&self, op: &'static str, pos: u64, buf: &AlignedBuf, len: usize) -> io::Result<()> {
        let a = self.inner.align;
        if !self.inner.direct {
            return Ok(());
        }
        if pos % a.read as u64 != 0 || len % a.read != 0 {
            return Err(invalid(
                op,
                &self.inner.path,
                format!(
                    "direct I/O needs offset ({pos}) and length ({len}) aligned to {}",
                    a.read
                ),
            ));
        }
        if buf.as_ptr() as usize % a.memory != 0 {
            return Err(invalid(
                op,
                &self.inner.path,
                format!("buffer not aligned to {}", a.memory),
            ));
        }
        Ok(())
    }

    /// Reads `buf.capacity()` bytes at `pos` into `buf` (replacing its
    /// contents); returns the count read, short only at the end of the
    /// file. `pos` and the capacity must be aligned for direct I/O.
    pub async fn read_aligned(
        &self,
        pos: u64,
        mut buf: AlignedBuf,
    ) -> (io::Result<usize>, AlignedBuf) {
        buf.clear();
        let cap = buf.capacity();
        if let Err(e) = self.check("read", pos, &buf, cap) {
            return (Err(e), buf);
        }
        let (res, buf) = sched::run(
            &self.class,
            Dir::Read,
            cap,
            file::read_at(&self.inner.fd, buf, pos),
        )
        .await;
        (ctx("read", &self.inner.path, res), buf)
    }

    /// Reads `len` bytes at `pos` (fewer at the end of the file), for any
    /// offset and length: the aligned range around them is read and the
    /// result trimmed.
    pub async fn read_at(&self, pos: u64, len: usize) -> io::Result<AlignedBuf> {
        let a = self.inner.align.read as u64;
        let start = pos / a * a;
        let end = (pos + len as u64).next_multiple_of(a);
        let buf = AlignedBuf::with_capacity((end - start) as usize, self.inner.align.memory);
        if len == 0 {
            return Ok(buf);
        }
        let (res, mut buf) = self.read_aligned(start, buf).await;
        res?;
        let skip = (pos - start) as usize;
        buf.truncate(skip + len);
        buf.consume_front(skip);
        Ok(buf)
    }

    /// Reads several ranges; ranges closer to each other than the read
    /// alignment are merged into one request (of at most
    /// [`MAX_COALESCED_READ`] bytes) and the merged requests run
    /// concurrently. Results come back in the order of `ranges`.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// # use seastar_io::{DmaFile, OpenOptions};
    /// # let path = std::env::temp_dir().join(format!("sio-bulk-doc-{}", std::process::id()));
    /// # seastar_io::fs::write(&path, (0..=255u8).collect::<Vec<_>>()).await.unwrap();
    /// let f = DmaFile::open(&path, &OpenOptions::new().read(true)).await.unwrap();
    /// let got = f.read_bulk(&[(10, 2), (0, 3), (250, 10)]).await;
    /// assert_eq!(&got[0].as_ref().unwrap()[..], &[10, 11]);
    /// assert_eq!(&got[1].as_ref().unwrap()[..], &[0, 1, 2]);
    /// assert_eq!(&got[2].as_ref().unwrap()[..], &[250, 251, 252, 253, 254, 255]);
    /// # seastar_io::fs::remove_file(&path).await.unwrap();
    /// # });
    /// ```
    pub async fn read_bulk(&self, ranges: &[(u64, usize)]) -> Vec<io::Result<AlignedBuf>> {
        let groups = coalesce(
            ranges,
            self.inner.align.read as u64,
            MAX_COALESCED_READ as u64,
        );
        let reads = groups
            .iter()
            .map(|g| self.read_at(g.start, (g.end - g.start) as usize));
        let results = futures::future::join_all(reads).await;
        let mut out: Vec<Option<io::Result<AlignedBuf>>> = ranges.iter().map(|_| None).collect();
        for (g, res) in groups.iter().zip(results) {
            for &i in &g.members {
                let (pos, len) = ranges[i];
                out[i] = Some(match &res {
                    Ok(buf) => {
                        let from = ((pos - g.start) as usize).min(buf.len());
                        let to = (from + len).min(buf.len());
                        Ok(AlignedBuf::from_slice(
                            &buf[from..to],
                            self.inner.align.memory,
                        ))
                    }
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
        out.into_iter()
            .map(|r| r.expect("every range is in a group"))
            .collect()
    }

    /// Writes `buf` at `pos`; returns the count written (short only when
    /// the device fills) and the buffer. For direct I/O `pos`, the length
    /// and the buffer's address must be aligned ([`alignment`](Self::alignment)).
    pub async fn write_at(&self, pos: u64, buf: AlignedBuf) -> (io::Result<usize>, AlignedBuf) {
        if let Err(e) = self.check("write", pos, &buf, buf.len()) {
            return (Err(e), buf);
        }
        let len = buf.len();
        let (res, buf) = sched::run(
            &self.class,
            Dir::Write,
            len,
            file::write_at(&self.inner.fd, buf, pos),
        )
        .await;
        (ctx("write", &self.inner.path, res), buf)
    }

    /// Flushes the data (and the metadata needed to read it) to the device.
    pub async fn fdatasync(&self) -> io::Result<()> {
        ctx(
            "fdatasync",
            &self.inner.path,
            seastar_core::io::fdatasync(self.inner.fd.as_raw_fd()).await,
        )
    }

    /// Flushes the data and all metadata to the device.
    pub async fn fsync(&self) -> io::Result<()> {
        ctx(
            "fsync",
            &self.inner.path,
            seastar_core::io::fsync(self.inner.fd.as_raw_fd()).await,
        )
    }

    /// Reserves disk space for `len` bytes at `pos` without changing the
    /// file's size (`fallocate(FALLOC_FL_KEEP_SIZE)`): later writes there
    /// cannot fail with `ENOSPC`.
    pub async fn allocate(&self, pos: u64, len: u64) -> io::Result<()> {
        ctx(
            "fallocate",
            &self.inner.path,
            file::fallocate(&self.inner.fd, libc::FALLOC_FL_KEEP_SIZE, pos, len).await,
        )
    }

    /// Sets the file's size (cutting, or extending with zeroes).
    pub async fn truncate(&self, len: u64) -> io::Result<()> {
        ctx(
            "truncate",
            &self.inner.path,
            file::ftruncate(&self.inner.fd, len).await,
        )
    }

    /// The file's size in bytes.
    pub async fn size(&self) -> io::Result<u64> {
        Ok(self.stat().await?.len())
    }

    /// The file's metadata.
    pub async fn stat(&self) -> io::Result<Metadata> {
        ctx("statx", &self.inner.path, file::statx(&self.inner.fd).await).map(Metadata::from_statx)
    }

    /// Closes the file: the descriptor is closed once no clone and no
    /// request in flight still uses it; the error of `close(2)` is
    /// reported when this handle was the last.
    pub async fn close(self) -> io::Result<()> {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return Ok(());
        };
        let Ok(fd) = Arc::try_unwrap(inner.fd) else {
            return Ok(());
        };
        let raw = fd.into_raw_fd();
        // SAFETY: we own `raw` (taken out of the only OwnedFd).
        let r = unsafe { libc::close(raw) };
        if r < 0 {
            return Err(with_path("close", &inner.path, io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl AsRawFd for DmaFile {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd.as_raw_fd()
    }
}

/// The alignment of a file opened with `O_DIRECT`.
async fn discover_alignment(fd: &SharedFd) -> io::Result<Alignment> {
    let st = file::statx(fd).await?;
    let blksize = (st.stx_blksize as usize).max(512);
    let (mem, offset) = if st.stx_mask & libc::STATX_DIOALIGN != 0 && st.stx_dio_offset_align != 0 {
        (
            st.stx_dio_mem_align as usize,
            st.stx_dio_offset_align as usize,
        )
    } else {
        let lbs = logical_block_size(st.stx_dev_major, st.stx_dev_minor).unwrap_or(4096);
        (lbs, lbs)
    };
    let read = offset.max(1);
    Ok(Alignment {
        memory: mem.max(4096).next_power_of_two(),
        read,
        write: blksize.max(read),
    })
}

/// The logical block size of the block device `major:minor` (or of the
/// disk a partition belongs to), from sysfs.
fn logical_block_size(major: u32, minor: u32) -> Option<usize> {
    let base = format!("/sys/dev/block/{major}:{minor}");
    [
        format!("{base}/queue/logical_block_size"),
        format!("{base}/../queue/logical_block_size"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
}

/// A merged read covering the ranges `members` (indices into the input).
#[derive(Debug, PartialEq)]
struct Group {
    start: u64,
    end: u64,
    members: Vec<usize>,
}

/// Groups `ranges` (offset, length) whose gaps are under `gap` bytes, each
/// group spanning at most `max` bytes (a longer single range stays alone).
fn coalesce(ranges: &[(u64, usize)], gap: u64, max: u64) -> Vec<Group> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| ranges[i].0);
    let mut groups: Vec<Group> = Vec::new();
    for i in order {
        let (pos, len) = ranges[i];
        let end = pos + len as u64;
        match groups.last_mut() {
            Some(g) if pos <= g.end + gap && end.max(g.end) - g.start <= max => {
                g.end = g.end.max(end);
                g.members.push(i);
            }
            _ => groups.push(Group {
                start: pos,
                end,
                members: vec![i],
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_merges_close_ranges_up_to_the_cap() {
        let g = coalesce(
            &[(4600, 100), (0, 4096), (4096, 10), (100_000, 1)],
            512,
            16384,
        );
        assert_eq!(
            g,
            vec![
                Group {
                    start: 0,
                    end: 4700,
                    members: vec![1, 2, 0]
                },
                Group {
                    start: 100_000,
                    end: 100_001,
                    members: vec![3]
                },
            ]
        );
        let g = coalesce(&[(0, 4096), (4096, 4096), (8192, 4096)], 0, 8192);
        assert_eq!(g.len(), 2, "the cap splits the run");
        assert!(coalesce(&[], 512, 1).is_empty());
    }
}
