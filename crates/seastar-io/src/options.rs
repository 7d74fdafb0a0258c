//! [`OpenOptions`]: how to open a [`DmaFile`](crate::DmaFile) or a
//! buffered [`File`](crate::File).

use std::io;
use std::path::Path;

use crate::IoClass;

/// Options for opening a file, in the style of `std::fs::OpenOptions`,
/// plus whether to bypass the page cache (`direct`, default on for
/// [`DmaFile`](crate::DmaFile), ignored by [`File`](crate::File)) and the
/// [`IoClass`] the file's requests belong to.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_io::{DmaFile, OpenOptions};
/// let path = std::env::temp_dir().join(format!("sio-opts-{}", std::process::id()));
/// let f = OpenOptions::new().write(true).create_new(true).mode(0o600).open_dma(&path).await.unwrap();
/// assert!(OpenOptions::new().write(true).create_new(true).open_dma(&path).await.is_err());
/// f.close().await.unwrap();
/// seastar_io::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub(crate) read: bool,
    pub(crate) write: bool,
    create: bool,
    create_new: bool,
    truncate: bool,
    mode: u32,
    pub(crate) direct: bool,
    pub(crate) class: IoClass,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Nothing set: not readable, not writable; `direct` on; mode 0o644;
    /// the default class.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            create: false,
            create_new: false,
            truncate: false,
            mode: 0o644,
            direct: true,
            class: IoClass::default(),
        }
    }

    /// Open for reading.
    pub fn read(mut self, on: bool) -> Self {
        self.read = on;
        self
    }

    /// Open for writing.
    pub fn write(mut self, on: bool) -> Self {
        self.write = on;
        self
    }

    /// Create the file if it does not exist.
    pub fn create(mut self, on: bool) -> Self {
        self.create = on;
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(mut self, on: bool) -> Self {
        self.create_new = on;
        self
    }

    /// Truncate the file to length 0 on open.
    pub fn truncate(mut self, on: bool) -> Self {
        self.truncate = on;
        self
    }

    /// Permission bits of a created file (before the umask).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Bypass the page cache (`O_DIRECT`) where the file system allows it.
    pub fn direct(mut self, on: bool) -> Self {
        self.direct = on;
        self
    }

    /// The class the file's reads and writes are scheduled in.
    pub fn class(mut self, class: IoClass) -> Self {
        self.class = class;
        self
    }

    /// Opens a [`DmaFile`](crate::DmaFile) with these options.
    pub async fn open_dma(&self, path: impl AsRef<Path>) -> io::Result<crate::DmaFile> {
        crate::DmaFile::open(path, self).await
    }

    /// Opens a buffered [`File`](crate::File) with these options.
    pub async fn open_file(&self, path: impl AsRef<Path>) -> io::Result<crate::File> {
        crate::File::open_with(path, self).await
    }

    /// The `open(2)` flags (without `O_DIRECT`), or an error naming `path`
    /// for a combination that makes no sense.
    pub(crate) fn flags(&self, path: &Path) -> io::Result<i32> {
        let mut flags = match (self.read, self.write) {
            (true, true) => libc::O_RDWR,
            (false, true) => libc::O_WRONLY,
            (true, false) => libc::O_RDONLY,
            (false, false) => {
                return Err(crate::error::invalid(
                    "open",
                    path,
                    "neither read nor write access requested".into(),
                ));
            }
        };
        if (self.create || self.create_new || self.truncate) && !self.write {
            return Err(crate::error::invalid(
                "open",
                path,
                "create or truncate needs write access".into(),
            ));
        }
        if self.create_new {
            flags |= libc::O_CREAT | libc::O_EXCL;
        } else if self.create {
            flags |= libc::O_CREAT;
        }
        if self.truncate {
            flags |= libc::O_TRUNC;
        }
        Ok(flags)
    }

    pub(crate) fn mode_bits(&self) -> u32 {
        self.mode
    }
}
