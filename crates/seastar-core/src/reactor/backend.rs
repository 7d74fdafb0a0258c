//! The I/O backend of a reactor: one small trait, two implementations.
//!
//! The reactor loop knows only [`Backend::poll`]: hand queued work to the
//! kernel, collect what finished (waking the tasks that wait for it), and
//! block for at most a given time when the shard has nothing else to do.
//!
//! The I/O layer ([`crate::io`]) knows [`Driver`]'s methods, which are the
//! backend interface of an operation in flight: [`Driver::submit`] hands
//! an io_uring entry to the ring (epoll: `None`, the caller makes its
//! non-blocking call instead), [`Driver::poll_op`] collects a completion,
//! [`Driver::abandon`] cancels, [`Driver::arm_ready`] and
//! [`Driver::poll_ready`] wait for readiness (a one-shot poll on io_uring,
//! the registration's edge on epoll). How each operation is expressed on
//! both backends lives in `crate::io::op`, one file per operation.

use std::any::Any;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::str::FromStr;
use std::task::{Poll, Waker};
use std::time::Duration;

use io_uring::{opcode, squeue, types};

use super::buf_ring::RingMem;
use super::epoll::{Epoll, Interest};
use super::uring::{Cqe, OpKey, Orphan, SleepBatch, Uring, UringFeatures};

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

/// The backend a shard runs, as an enum (no virtual calls); the I/O layer
/// uses its methods and never matches on it.
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
        batch: SleepBatch,
    ) -> io::Result<Driver> {
        let uring = || {
            Uring::new(wake_fd, entries).map(|mut u| {
                u.set_sleep_batch(batch);
                u
            })
        };
        match want {
            Some(BackendKind::Epoll) => Ok(Driver::Epoll(Epoll::new(wake_fd)?)),
            Some(BackendKind::IoUring) => Ok(Driver::Uring(uring()?)),
            None => match uring() {
                Ok(u) => Ok(Driver::Uring(u)),
                Err(e) => {
                    tracing::warn!(error = %e, "io_uring unavailable (ENOSYS: old kernel; EPERM: seccomp or kernel.io_uring_disabled); falling back to epoll");
                    Ok(Driver::Epoll(Epoll::new(wake_fd)?))
                }
            },
        }
    }

    /// Before a sleep: the shard's reactor pollers handled `items` of work
    /// since it last woke, which sizes the sleep's batch as completions do.
    /// Returns whether the sleep will wait for a batch (io_uring; epoll
    /// sleeps never batch).
    #[inline]
    pub(crate) fn prepare_sleep(&mut self, items: u32) -> bool {
        match self {
            Driver::Uring(u) => u.prepare_sleep(items),
            Driver::Epoll(_) => false,
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

/// A readiness wait in flight: a one-shot poll on io_uring, the
/// registration's next edge on epoll. Give it back to
/// [`Driver::abandon_ready`] if dropped before it completes.
#[derive(Debug)]
pub(crate) enum Readiness {
    /// io_uring: the poll's key.
    Uring(OpKey),
    /// epoll: nothing in flight.
    Epoll,
}

/// A handle made by the other backend (a future kept from a runtime and
/// polled on a later one on the same thread): a panic, as for a key of
/// another io_uring runtime.
fn foreign() -> ! {
    super::uring::foreign_key()
}

impl Driver {
    /// io_uring: queues the entry `entry` builds as a one-shot operation
    /// and returns its key (`file_batch`: a file read or write, handed to
    /// the kernel in groups of that many, see `Uring::count_file_io`). Epoll: `None`, builds
    /// nothing; the caller makes its non-blocking call instead.
    ///
    /// # Safety
    ///
    /// As [`Uring::submit`]: every pointer in the entry stays valid until
    /// the completion is collected or the key is given to [`abandon`](Self::abandon)
    /// with the memory it points into.
    #[inline]
    pub(crate) unsafe fn submit(
        &mut self,
        entry: impl FnOnce() -> squeue::Entry,
        file_batch: Option<u32>,
    ) -> Option<OpKey> {
        match self {
            Driver::Uring(u) => {
                // SAFETY: forwarded from this function's contract.
                let key = unsafe { u.submit(entry()) };
                if let Some(batch) = file_batch {
                    u.count_file_io(batch);
                }
                Some(key)
            }
            Driver::Epoll(_) => None,
        }
    }

    /// io_uring: queues the entry `entry` builds as a multishot operation
    /// and returns its key. Epoll: `None`.
    ///
    /// # Safety
    ///
    /// As [`Uring::submit_multi`]: the entry points into no memory but
    /// `'static` memory (the shard's provided-buffer ring counts).
    pub(crate) unsafe fn submit_multi(
        &mut self,
        entry: impl FnOnce() -> squeue::Entry,
    ) -> Option<OpKey> {
        match self {
            // SAFETY: forwarded from this function's contract.
            Driver::Uring(u) => Some(unsafe { u.submit_multi(entry()) }),
            Driver::Epoll(_) => None,
        }
    }

    /// The completion of one-shot `key`, or `Pending` with `waker`
    /// registered (see [`Uring::poll_op`]).
    #[inline]
    pub(crate) fn poll_op(&mut self, key: &OpKey, waker: &Waker, quiet: Option<i32>) -> Poll<Cqe> {
        match self {
            Driver::Uring(u) => u.poll_op(key, waker, quiet),
            Driver::Epoll(_) => foreign(),
        }
    }

    /// The next completion of multishot `key`; `None` once it ended.
    pub(crate) fn poll_multi(&mut self, key: &OpKey, waker: &Waker) -> Poll<Option<Cqe>> {
        match self {
            Driver::Uring(u) => u.poll_multi(key, waker),
            Driver::Epoll(_) => foreign(),
        }
    }

    /// Gives up on `key`, cancelling it; `data` stays alive until the
    /// kernel is done with it (see [`Uring::abandon`]).
    pub(crate) fn abandon(&mut self, key: OpKey, data: Box<dyn Any>, orphan: Orphan) {
        match self {
            Driver::Uring(u) => u.abandon(key, data, orphan),
            // Not this backend's key: nothing of ours in flight.
            Driver::Epoll(_) => std::mem::forget(data),
        }
    }

    /// Starts waiting until `fd` is ready for `interest`.
    pub(crate) fn arm_ready(&mut self, fd: RawFd, interest: Interest) -> Readiness {
        match self {
            Driver::Uring(u) => {
                let mask = match interest {
                    Interest::Read => libc::POLLIN | libc::POLLRDHUP,
                    Interest::Write => libc::POLLOUT,
                };
                let entry = opcode::PollAdd::new(types::Fd(fd), mask as u32).build();
                // SAFETY: a poll references no memory.
                Readiness::Uring(unsafe { u.submit(entry) })
            }
            Driver::Epoll(_) => Readiness::Epoll,
        }
    }

    /// Ready once the wait `r` on `fd` for `interest` is over (epoll: the
    /// fd's ready bit, or the next edge, which wakes `waker`).
    pub(crate) fn poll_ready(
        &mut self,
        r: &Readiness,
        fd: RawFd,
        interest: Interest,
        waker: &Waker,
    ) -> Poll<io::Result<()>> {
        let res = match (self, r) {
            (Driver::Uring(u), Readiness::Uring(key)) => match u.poll_op(key, waker, None) {
                Poll::Ready(cqe) => cqe.res,
                Poll::Pending => return Poll::Pending,
            },
            (Driver::Epoll(ep), Readiness::Epoll) => {
                return match ep.poll_ready(fd, interest, waker) {
                    Ok(true) => Poll::Ready(Ok(())),
                    Ok(false) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                };
            }
            _ => foreign(),
        };
        Poll::Ready(if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(())
        })
    }

    /// Gives up on the wait `r` (cancels its poll on io_uring).
    pub(crate) fn abandon_ready(&mut self, r: Readiness) {
        if let Readiness::Uring(key) = r {
            self.abandon(key, Box::new(()), None);
        }
    }

    /// Forgets `fd` before it is closed (epoll: its registration, waking
    /// anyone still waiting on it; io_uring: nothing).
    pub(crate) fn forget_fd(&mut self, fd: RawFd) {
        if let Driver::Epoll(ep) = self {
            ep.deregister(fd);
        }
    }

    /// The io_uring features of this shard (`None` on epoll).
    pub(crate) fn uring_features(&mut self) -> Option<&mut UringFeatures> {
        match self {
            Driver::Uring(u) => Some(&mut u.features),
            Driver::Epoll(_) => None,
        }
    }

    /// io_uring: the shard's provided-buffer ring (registered on first
    /// use) as its memory and buffer size; `None` on epoll or if the
    /// kernel refused it.
    pub(crate) fn buf_ring(&mut self) -> Option<(Rc<RingMem>, usize)> {
        match self {
            Driver::Uring(u) => u.buf_ring().map(|r| (r.mem().clone(), r.buf_size())),
            Driver::Epoll(_) => None,
        }
    }

    /// Puts handed-out buffer `bid` of `mem` back into the shard's ring
    /// (if `mem` is still the ring's: a buffer outliving its ring is
    /// simply freed with the memory).
    pub(crate) fn recycle(&mut self, mem: &Rc<RingMem>, bid: u16) {
        if let Driver::Uring(u) = self
            && let Some(r) = u.buf_ring.as_mut()
            && Rc::ptr_eq(r.mem(), mem)
        {
            r.recycle(bid);
        }
    }

    /// Slots of the io_uring operation table in use (`None` on epoll).
    #[cfg(test)]
    pub(crate) fn ops_in_use(&self) -> Option<usize> {
        match self {
            Driver::Uring(u) => Some(u.ops_in_use()),
            Driver::Epoll(_) => None,
        }
    }

    /// The wakers of every operation waiting (shard shutdown).
    pub(crate) fn take_wakers(&mut self) -> Vec<Waker> {
        match self {
            Driver::Uring(u) => u.take_wakers(),
            // Epoll's waiters are woken by `deregister`, dropped with it.
            Driver::Epoll(_) => Vec::new(),
        }
    }
}
