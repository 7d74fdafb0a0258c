//! The I/O backend of a reactor: one small trait, two implementations.
//!
//! The reactor loop knows only [`Backend::poll`]: hand queued work to the
//! kernel, collect what finished (waking the tasks that wait for it), and
//! block for at most a given time when the shard has nothing else to do.
//! How an operation is expressed differs (a submission queue entry for
//! io_uring, a readiness wait plus a non-blocking syscall for epoll); that
//! lives in [`crate::io`], which matches on [`Driver`].

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::str::FromStr;
use std::time::Duration;

use super::epoll::Epoll;
use super::uring::Uring;

/// Which kernel interface a reactor drives its I/O with.
///
/// ```
/// use seastar_core::BackendKind;
/// assert_eq!("epoll".parse::<BackendKind>().unwrap(), BackendKind::Epoll);
/// assert_eq!(BackendKind::IoUring.to_string(), "io_uring");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// io_uring (Linux 5.19+ features used when present): the default.
    IoUring,
    /// epoll readiness plus non-blocking syscalls: the fallback.
    Epoll,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::IoUring => "io_uring",
            BackendKind::Epoll => "epoll",
        })
    }
}

/// Error for an unknown backend name.
#[derive(Debug, thiserror::Error)]
#[error("unknown reactor backend `{0}` (expected io_uring, epoll or auto)")]
pub struct ParseBackendError(pub String);

impl FromStr for BackendKind {
    type Err = ParseBackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "io_uring" | "io-uring" | "uring" => Ok(BackendKind::IoUring),
            "epoll" => Ok(BackendKind::Epoll),
            other => Err(ParseBackendError(other.to_owned())),
        }
    }
}

/// What every backend offers the reactor loop.
pub(crate) trait Backend {
    /// Submits queued operations and reaps finished ones, waking their
    /// tasks. Blocks for at most `timeout` (`None`: until something happens,
    /// including a write to the wake fd) when `timeout` is not zero.
    fn poll(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

/// The backend a shard runs, as an enum so that the I/O layer can match on
/// it without virtual calls.
#[allow(clippy::large_enum_variant)] // one per shard, never moved after start
pub(crate) enum Driver {
    Uring(Uring),
    Epoll(Epoll),
}

impl Driver {
    /// Creates the backend `want` (or io_uring, falling back to epoll, when
    /// `None`), watching `wake_fd` for cross-thread wakes.
    pub(crate) fn new(
        want: Option<BackendKind>,
        wake_fd: RawFd,
        entries: u32,
    ) -> io::Result<Driver> {
        match want {
            Some(BackendKind::Epoll) => Ok(Driver::Epoll(Epoll::new(wake_fd)?)),
            Some(BackendKind::IoUring) => Ok(Driver::Uring(Uring::new(wake_fd, entries)?)),
            None => match Uring::new(wake_fd, entries) {
                Ok(u) => Ok(Driver::Uring(u)),
                Err(e) => {
                    tracing::warn!(error = %e, "io_uring unavailable (ENOSYS: old kernel; EPERM: seccomp or kernel.io_uring_disabled); falling back to epoll");
                    Ok(Driver::Epoll(Epoll::new(wake_fd)?))
                }
            },
        }
    }

    pub(crate) fn kind(&self) -> BackendKind {
        match self {
            Driver::Uring(_) => BackendKind::IoUring,
            Driver::Epoll(_) => BackendKind::Epoll,
        }
    }
}

impl Backend for Driver {
    fn poll(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Driver::Uring(u) => u.poll(timeout),
            Driver::Epoll(e) => e.poll(timeout),
        }
    }
}
