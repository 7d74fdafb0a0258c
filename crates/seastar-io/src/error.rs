//! Errors that name the file they happened on.
//!
//! Every failing call in this crate returns a plain [`std::io::Error`] (so
//! `?` works everywhere and [`kind`](std::io::Error::kind) is the usual
//! one: `StorageFull` for `ENOSPC`, `PermissionDenied`, `NotFound`, ...)
//! whose inner error is a [`FileError`] carrying the operation, the path
//! and the OS error. [`FileError::of`] digs it out.
//!
//! ```
//! # seastar_core::block_on(async {
//! use seastar_io::{DmaFile, FileError, OpenOptions};
//! let e = DmaFile::open("/no/such/file", &OpenOptions::new().read(true)).await.unwrap_err();
//! assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
//! let fe = FileError::of(&e).unwrap();
//! assert_eq!(fe.path(), std::path::Path::new("/no/such/file"));
//! assert_eq!(fe.raw_os_error(), Some(libc::ENOENT));
//! assert!(e.to_string().contains("/no/such/file"));
//! # });
//! ```

use std::io;
use std::path::{Path, PathBuf};

/// An I/O error on a named file.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct FileError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl FileError {
    /// The [`FileError`] inside `e`, if `e` came from this crate.
    pub fn of(e: &io::Error) -> Option<&FileError> {
        e.get_ref()?.downcast_ref::<FileError>()
    }

    /// The operation that failed (`"open"`, `"read"`, `"write"`, ...).
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The file the operation was on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The OS error number, if the error came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// The underlying error.
    pub fn source_error(&self) -> &io::Error {
        &self.source
    }
}

/// Wraps `source` into an `io::Error` of the same kind naming `path`.
/// An error that already names a file is returned unchanged.
pub(crate) fn with_path(op: &'static str, path: &Path, source: io::Error) -> io::Error {
    if FileError::of(&source).is_some() {
        return source;
    }
    io::Error::new(
        source.kind(),
        FileError {
            op,
            path: path.to_path_buf(),
            source,
        },
    )
}

/// `with_path` over a result.
pub(crate) fn ctx<T>(op: &'static str, path: &Path, r: io::Result<T>) -> io::Result<T> {
    r.map_err(|e| with_path(op, path, e))
}

/// An `InvalidInput` error naming `path`.
pub(crate) fn invalid(op: &'static str, path: &Path, msg: String) -> io::Error {
    with_path(op, path, io::Error::new(io::ErrorKind::InvalidInput, msg))
}
