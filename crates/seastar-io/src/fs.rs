//! File-system operations: directories, removal, renames, links, metadata,
//! whole-file reads and writes, and directory listing as a stream.
//!
//! On io_uring these are single submissions (`mkdirat`, `unlinkat`,
//! `renameat`, `linkat`, `statx`); on epoll, and for directory listing on
//! both backends (the kernel has no asynchronous `getdents`), they run on
//! the runtime's blocking pool. Errors name the path.
//!
//! ```
//! # seastar_core::block_on(async {
//! use futures::TryStreamExt;
//! use seastar_io::fs;
//! let dir = std::env::temp_dir().join(format!("sio-fs-doc-{}", std::process::id()));
//! fs::create_dir_all(dir.join("a/b")).await.unwrap();
//! fs::write(dir.join("a/f"), b"hi".to_vec()).await.unwrap();
//! assert!(fs::exists(dir.join("a/f")).await.unwrap());
//! assert_eq!(fs::metadata(dir.join("a/f")).await.unwrap().len(), 2);
//! let mut names: Vec<_> = fs::read_dir(dir.join("a")).await.unwrap()
//!     .map_ok(|e| e.file_name().to_string_lossy().into_owned())
//!     .try_collect().await.unwrap();
//! names.sort();
//! assert_eq!(names, ["b", "f"]);
//! fs::remove_dir_all(&dir).await.unwrap();
//! assert!(!fs::exists(&dir).await.unwrap());
//! # });
//! ```

use std::collections::VecDeque;
use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use seastar_core::io::file;
use seastar_core::io::spawn_blocking;

use crate::error::ctx;

/// A file's metadata (from `statx`).
#[derive(Clone)]
pub struct Metadata(libc::statx);

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("ino", &self.ino())
            .finish()
    }
}

fn time(t: libc::statx_timestamp) -> SystemTime {
    let d = Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec);
    if t.tv_sec >= 0 {
        SystemTime::UNIX_EPOCH + d
    } else {
        SystemTime::UNIX_EPOCH - d
    }
}

impl Metadata {
    pub(crate) fn from_statx(st: libc::statx) -> Metadata {
        Metadata(st)
    }

    fn kind(&self) -> u32 {
        u32::from(self.0.stx_mode) & libc::S_IFMT
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.0.stx_size
    }

    /// Whether the size is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A regular file?
    pub fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }

    /// A directory?
    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }

    /// A symbolic link (only from [`symlink_metadata`])?
    pub fn is_symlink(&self) -> bool {
        self.kind() == libc::S_IFLNK
    }

    /// Permission bits (`mode & 0o7777`).
    pub fn mode(&self) -> u32 {
        u32::from(self.0.stx_mode) & 0o7777
    }

    /// Last modification.
    pub fn modified(&self) -> SystemTime {
        time(self.0.stx_mtime)
    }

    /// Last access.
    pub fn accessed(&self) -> SystemTime {
        time(self.0.stx_atime)
    }

    /// Creation, where the file system records it.
    pub fn created(&self) -> Option<SystemTime> {
        (self.0.stx_mask & libc::STATX_BTIME != 0).then(|| time(self.0.stx_btime))
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.0.stx_ino
    }

    /// The device holding the file, as (major, minor).
    pub fn dev(&self) -> (u32, u32) {
        (self.0.stx_dev_major, self.0.stx_dev_minor)
    }

    /// Number of hard links.
    pub fn nlink(&self) -> u32 {
        self.0.stx_nlink
    }

    /// Owner user id.
    pub fn uid(&self) -> u32 {
        self.0.stx_uid
    }

    /// Owner group id.
    pub fn gid(&self) -> u32 {
        self.0.stx_gid
    }

    /// 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.0.stx_blocks
    }

    /// The file system's preferred I/O size.
    pub fn block_size(&self) -> u32 {
        self.0.stx_blksize
    }

    /// Direct-I/O alignment (memory, offset) if the kernel reports it and
    /// the file supports direct I/O.
    pub fn dio_alignment(&self) -> Option<(u32, u32)> {
        (self.0.stx_mask & libc::STATX_DIOALIGN != 0 && self.0.stx_dio_offset_align != 0)
            .then_some((self.0.stx_dio_mem_align, self.0.stx_dio_offset_align))
    }
}

/// Metadata of `path`, following symbolic links.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    ctx("statx", path, file::statx_path(path, true).await).map(Metadata)
}

/// Metadata of `path` itself (a symbolic link is not followed).
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    ctx("statx", path, file::statx_path(path, false).await).map(Metadata)
}

/// Whether `path` names something (following links); errors other than
/// "not found" are reported.
pub async fn exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match file::statx_path(path.as_ref(), true).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(crate::error::with_path("statx", path.as_ref(), e)),
    }
}

/// Creates a directory (mode 0o755 before the umask).
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    ctx("mkdir", path, file::mkdir(path, 0o755).await)
}

/// Creates a directory and any missing parents; an existing directory is
/// fine.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // Walk up to the first ancestor that exists, then create downwards.
    let mut missing = Vec::new();
    let mut cur = path;
    loop {
        match file::mkdir(cur, 0o755).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if metadata(cur).await?.is_dir() {
                    break;
                }
                return Err(crate::error::with_path("mkdir", cur, e));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match cur.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => {
                    missing.push(cur);
                    cur = parent;
                }
                _ => return Err(crate::error::with_path("mkdir", cur, e)),
            },
            Err(e) => return Err(crate::error::with_path("mkdir", cur, e)),
        }
    }
    for dir in missing.into_iter().rev() {
        match file::mkdir(dir, 0o755).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(crate::error::with_path("mkdir", dir, e)),
        }
    }
    Ok(())
}

/// Removes a file or symbolic link.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    ctx("unlink", path, file::unlink(path).await)
}

/// Removes an empty directory.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    ctx("rmdir", path, file::rmdir(path).await)
}

/// Removes a directory and everything in it (on the blocking pool).
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    let p = path.clone();
    ctx(
        "remove_dir_all",
        &path,
        spawn_blocking(move || std::fs::remove_dir_all(p)).await,
    )
}

/// Renames `from` to `to`, replacing `to` if it is a file.
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let from = from.as_ref();
    ctx("rename", from, file::rename(from, to.as_ref()).await)
}

/// Creates the hard link `link` to the file `original`.
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let link = link.as_ref();
    ctx("link", link, file::link(original.as_ref(), link).await)
}

/// Reads a whole file (buffered, through the scheduler).
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    crate::File::open(path).await?.read_to_end().await
}

/// Reads a whole file as UTF-8.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| {
        crate::error::with_path("read", path, io::Error::new(io::ErrorKind::InvalidData, e))
    })
}

/// Creates or truncates `path` and writes `data` to it.
pub async fn write(path: impl AsRef<Path>, data: impl Into<Bytes>) -> io::Result<()> {
    let f = crate::File::create(path).await?;
    f.write_all_at(0, data).await?;
    f.close().await
}

/// The type of a directory entry, as the directory reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, socket or FIFO.
    Other,
}

/// One entry of a directory listing.
#[derive(Clone, Debug)]
pub struct DirEntry {
    path: PathBuf,
    name: OsString,
    kind: Option<EntryType>,
}

impl DirEntry {
    /// The full path (the directory's path joined with the name).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name within the directory.
    pub fn file_name(&self) -> &std::ffi::OsStr {
        &self.name
    }

    /// The entry's type, if the file system reported it without a stat.
    pub fn entry_type(&self) -> Option<EntryType> {
        self.kind
    }
}

/// Entries fetched per trip to the blocking pool.
const BATCH: usize = 128;

type Batch = (std::fs::ReadDir, VecDeque<io::Result<DirEntry>>, bool);

/// A directory listing: a [`Stream`] of [`DirEntry`] (without `.` and
/// `..`), fetched in batches on the blocking pool.
pub struct ReadDir {
    path: PathBuf,
    ready: VecDeque<io::Result<DirEntry>>,
    dir: Option<std::fs::ReadDir>,
    pending: Option<Pin<Box<dyn Future<Output = Batch>>>>,
    done: bool,
}

impl std::fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadDir").field("path", &self.path).finish()
    }
}

/// Lists the directory `path`.
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_path_buf();
    let p = path.clone();
    let dir = ctx(
        "read_dir",
        &path,
        spawn_blocking(move || std::fs::read_dir(p)).await,
    )?;
    Ok(ReadDir {
        path,
        ready: VecDeque::new(),
        dir: Some(dir),
        pending: None,
        done: false,
    })
}

fn fetch(mut dir: std::fs::ReadDir, path: PathBuf) -> Batch {
    let mut out = VecDeque::new();
    let mut end = false;
    while out.len() < BATCH {
        match dir.next() {
            None => {
                end = true;
                break;
            }
            Some(Ok(e)) => {
                let kind = e.file_type().ok().map(|t| {
                    if t.is_file() {
                        EntryType::File
                    } else if t.is_dir() {
                        EntryType::Dir
                    } else if t.is_symlink() {
                        EntryType::Symlink
                    } else {
                        EntryType::Other
                    }
                });
                out.push_back(Ok(DirEntry {
                    path: e.path(),
                    name: e.file_name(),
                    kind,
                }));
            }
            Some(Err(e)) => out.push_back(Err(crate::error::with_path("read_dir", &path, e))),
        }
    }
    (dir, out, end)
}

impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Poll::Ready(Some(e));
            }
            if self.done {
                return Poll::Ready(None);
            }
            if let Some(p) = self.pending.as_mut() {
                let (dir, batch, end) = futures::ready!(p.as_mut().poll(cx));
                self.pending = None;
                self.dir = Some(dir);
                self.ready = batch;
                self.done = end;
                continue;
            }
            let dir = self.dir.take().expect("a directory handle between batches");
            let path = self.path.clone();
            self.pending = Some(Box::pin(spawn_blocking(move || fetch(dir, path))));
        }
    }
}
