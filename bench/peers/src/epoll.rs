//! The single-threaded epoll loop shared by the bare floor servers
//! (`epoll-echo`, `memcached-floor`): no runtime, no allocation per event.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use crate::Listen;

fn ctl(ep: RawFd, op: i32, fd: RawFd, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Serves every connection accepted on `listen` from one epoll loop.
///
/// Accepted streams are non-blocking with `TCP_NODELAY`, registered for
/// `read` (the readable events, e.g. `EPOLLIN | EPOLLET`) and turned into a
/// connection by `open`. On each event of a connection `serve` runs and
/// says whether it stays open (closed ones are dropped, which removes them
/// from the epoll set). Writability is asked for only while `blocked`
/// holds: an always-on `EPOLLOUT` would wake the loop on every ACK.
pub fn serve<C>(
    listen: Listen,
    read: u32,
    mut open: impl FnMut(TcpStream) -> C,
    mut serve: impl FnMut(&mut C) -> bool,
    blocked: impl Fn(&C) -> bool,
) -> io::Result<()> {
    let listener = TcpListener::bind(listen.addr())?;
    listener.set_nonblocking(true)?;
    // SAFETY: plain syscall; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    let lfd = listener.as_raw_fd();
    ctl(ep, libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32)?;
    let mut conns: HashMap<RawFd, C> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        // SAFETY: `events` has room for `events.len()` entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            if fd == lfd {
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    let cfd = stream.as_raw_fd();
                    ctl(ep, libc::EPOLL_CTL_ADD, cfd, read)?;
                    conns.insert(cfd, open(stream));
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&fd) else {
                continue;
            };
            let was_blocked = blocked(conn);
            let alive = serve(conn);
            let now_blocked = blocked(conn);
            if alive && now_blocked != was_blocked {
                let interest = if now_blocked {
                    read | libc::EPOLLOUT as u32
                } else {
                    read
                };
                ctl(ep, libc::EPOLL_CTL_MOD, fd, interest)?;
            }
            if !alive {
                conns.remove(&fd);
            }
        }
    }
}

/// Writes what an earlier write left in `pending`. `Some(open)` when the
/// event is handled (output still blocked, or the connection failed);
/// `None` when nothing is pending any more and serving may go on.
pub fn flush_pending(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<bool> {
    if pending.is_empty() {
        return None;
    }
    match stream.write(pending) {
        Ok(n) => drop(pending.drain(..n)),
        Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(true),
        Err(_) => return Some(false),
    }
    (!pending.is_empty()).then_some(true)
}

/// Writes `data`, keeping what the socket does not take in `pending`;
/// false when the connection failed.
pub fn write_or_keep(stream: &mut TcpStream, data: &[u8], pending: &mut Vec<u8>) -> bool {
    match stream.write(data) {
        Ok(w) => pending.extend_from_slice(&data[w..]),
        Err(e) if e.kind() == ErrorKind::WouldBlock => pending.extend_from_slice(data),
        Err(_) => return false,
    }
    true
}
