//! The epoll backend: readiness, not completion.
//!
//! File descriptors are registered once, edge-triggered, for both
//! directions. Each registration keeps a ready bit and the wakers of tasks
//! waiting per direction. An operation (in `crate::io`) first tries its
//! non-blocking syscall; on `EAGAIN` it clears the ready bit and waits for
//! the next edge. Everything runs on the owning thread, so clearing a bit
//! cannot race with an event: events are only processed inside
//! [`Epoll::poll`].
//!
//! A registration must be removed with [`Epoll::deregister`] before its fd
//! is closed (the I/O layer's `close` does it): the kernel forgets a closed
//! fd silently, and a recycled fd number would otherwise inherit stale state.
//!
//! Sleeping uses `epoll_pwait2` (nanosecond timeouts) and falls back to
//! `epoll_wait` with the timeout rounded up to a millisecond.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::task::Waker;
use std::time::Duration;

use super::backend::Backend;
use crate::sys::cvt;

/// Readiness direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    Read,
    Write,
}

#[derive(Default)]
struct Registration {
    readable: bool,
    /// The peer closed its side or the socket failed: readable for good,
    /// and no edge will say so again.
    read_closed: bool,
    writable: bool,
    read_waiters: Vec<Waker>,
    write_waiters: Vec<Waker>,
}

/// An epoll instance and its registrations.
pub(crate) struct Epoll {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
    /// Registrations indexed by fd: fds are small, dense integers (the
    /// kernel hands out the lowest free one), so a vector beats a hash map
    /// (a SipHash per lookup cost about 300 instructions per HTTP request,
    /// callgrind).
    regs: Vec<Option<Registration>>,
    /// The wakers of one `poll`, kept for its allocation.
    woken: Vec<Waker>,
    wake_fd: RawFd,
    has_pwait2: bool,
}

const WAKE_KEY: u64 = u64::MAX;

impl Epoll {
    pub(crate) fn new(wake_fd: RawFd) -> io::Result<Epoll> {
        // SAFETY: no pointers; a non-negative return is a new fd we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by epoll_create1.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_KEY,
        };
        // SAFETY: `ev` is a live epoll_event; both fds are open.
        cvt(unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, wake_fd, &mut ev) })?;
        Ok(Epoll {
            epfd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            regs: Vec::new(),
            woken: Vec::new(),
            wake_fd,
            has_pwait2: true,
        })
    }

    /// The registration slot of `fd`, if the vector reaches it.
    fn slot_mut(&mut self, fd: RawFd) -> Option<&mut Option<Registration>> {
        self.regs.get_mut(usize::try_from(fd).ok()?)
    }

    fn reg_mut(&mut self, fd: RawFd) -> Option<&mut Registration> {
        self.slot_mut(fd)?.as_mut()
    }

    fn register(&mut self, fd: RawFd) -> io::Result<&mut Registration> {
        let i = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if i >= self.regs.len() {
            self.regs.resize_with(i + 1, || None);
        }
        if self.regs[i].is_none() {
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
                u64: fd as u64,
            };
            // SAFETY: `ev` is a live epoll_event; the epoll fd is open.
            let r =
                unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
            if r < 0 {
                // EEXIST: registered behind our back, keep it. Anything else
                // (EPERM for a regular file, EBADF) is the caller's error;
                // file reads never wait for readiness anyway.
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
        }
        Ok(self.regs[i].get_or_insert_with(Registration::default))
    }

    /// Whether `fd` is known ready for `interest`; otherwise registers
    /// `waker` to be woken on the next edge. Clears the ready bit when it
    /// reports not-ready, so the caller must have just seen `EAGAIN`.
    pub(crate) fn poll_ready(
        &mut self,
        fd: RawFd,
        interest: Interest,
        waker: &Waker,
    ) -> io::Result<bool> {
        let reg = self.register(fd)?;
        let (ready, waiters) = match interest {
            Interest::Read => (&mut reg.readable, &mut reg.read_waiters),
            Interest::Write => (&mut reg.writable, &mut reg.write_waiters),
        };
        if *ready {
            return Ok(true);
        }
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        Ok(false)
    }

    /// Records that an operation on `fd` saw `EAGAIN` for `interest`.
    pub(crate) fn clear_ready(&mut self, fd: RawFd, interest: Interest) {
        if let Some(reg) = self.reg_mut(fd) {
            match interest {
                Interest::Read => reg.readable = false,
                Interest::Write => reg.writable = false,
            }
        }
    }

    /// As [`clear_ready`](Self::clear_ready), registering `fd` first if it
    /// is not (the registration's first edge reports what is queued by
    /// then, so nothing that arrives after the caller's syscall is missed).
    /// Not after the peer closed (or the socket failed): a short read then
    /// leaves the end of stream (or the error) to read, with no edge to come.
    pub(crate) fn clear_ready_registered(&mut self, fd: RawFd, interest: Interest) {
        match self.register(fd) {
            Ok(reg) if interest == Interest::Read && reg.read_closed => {}
            Ok(_) => self.clear_ready(fd, interest),
            Err(_) => {}
        }
    }

    /// Forgets `fd`, waking anyone still waiting on it (they will see the
    /// fd closed). Call before closing the fd.
    pub(crate) fn deregister(&mut self, fd: RawFd) {
        if let Some(reg) = self.slot_mut(fd).and_then(Option::take) {
            // SAFETY: the epoll fd is open; a null event is allowed for DEL.
            unsafe {
                libc::epoll_ctl(
                    self.epfd.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    std::ptr::null_mut(),
                )
            };
            reg.read_waiters
                .into_iter()
                .chain(reg.write_waiters)
                .for_each(Waker::wake);
        }
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let max = self.events.len() as libc::c_int;
        if self.has_pwait2 {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `events` has room for `max` entries; `tsp` is null or
            // points at a live timespec; no signal mask is passed.
            let n = unsafe {
                libc::epoll_pwait2(
                    self.epfd.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    max,
                    tsp,
                    std::ptr::null(),
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOSYS) {
                return Err(e);
            }
            self.has_pwait2 = false;
        }
        let ms = match timeout {
            None => -1,
            Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        // SAFETY: `events` has room for `max` entries.
        let n =
            unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), self.events.as_mut_ptr(), max, ms) };
        cvt(n).map(|n| n as usize)
    }
}

impl Backend for Epoll {
    fn poll(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let n = match self.wait(timeout) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => 0,
            Err(e) => return Err(e),
        };
        let mut woken = std::mem::take(&mut self.woken);
        for i in 0..n {
            let ev = self.events[i];
            let (key, bits) = (ev.u64, ev.events as libc::c_int);
            if key == WAKE_KEY {
                crate::sys::eventfd_drain_raw(self.wake_fd);
                continue;
            }
            let Some(reg) = self.reg_mut(key as RawFd) else {
                continue;
            };
            let err = bits & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
            if err || bits & libc::EPOLLRDHUP != 0 {
                reg.read_closed = true;
            }
            if err || bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0 {
                reg.readable = true;
                woken.append(&mut reg.read_waiters);
            }
            if err || bits & libc::EPOLLOUT != 0 {
                reg.writable = true;
                woken.append(&mut reg.write_waiters);
            }
        }
        if n == self.events.len() && self.events.len() < 4096 {
            let len = self.events.len() * 2;
            self.events
                .resize(len, libc::epoll_event { events: 0, u64: 0 });
        }
        woken.drain(..).for_each(Waker::wake);
        self.woken = woken;
        Ok(())
    }
}
