//! The floor for apps/echo: a bare, hand-written single-threaded epoll TCP
//! echo server (no runtime, no allocation per message): edge-triggered
//! readiness, `read` until `EAGAIN`, `write` back, `EPOLLOUT` only while the
//! socket buffer is full. It is what a framework's CPU per message is
//! compared with to see its own overhead.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use clap::Parser;

/// Bare epoll TCP echo server.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    listen: bench_peers::Listen,
}

/// Edge-triggered read interest.
const READ: u32 = (libc::EPOLLIN | libc::EPOLLET) as u32;

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet written back (the socket buffer was full).
    pending: Vec<u8>,
}

fn epoll_ctl(ep: RawFd, op: i32, fd: RawFd, events: u32) -> io::Result<()> {
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

/// Echoes what is readable; returns false when the connection is done.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> bool {
    if !conn.pending.is_empty() {
        match conn.stream.write(&conn.pending) {
            Ok(n) => drop(conn.pending.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        if !conn.pending.is_empty() {
            return true;
        }
    }
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        match conn.stream.write(&buf[..n]) {
            Ok(w) if w == n => {}
            Ok(w) => conn.pending.extend_from_slice(&buf[w..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.pending.extend_from_slice(&buf[..n])
            }
            Err(_) => return false,
        }
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen.addr())?;
    listener.set_nonblocking(true)?;
    // SAFETY: plain syscall; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    let lfd = listener.as_raw_fd();
    epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32)?;
    let mut conns: HashMap<RawFd, Conn> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 64 * 1024];
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
                    epoll_ctl(ep, libc::EPOLL_CTL_ADD, cfd, READ)?;
                    conns.insert(
                        cfd,
                        Conn {
                            stream,
                            pending: Vec::new(),
                        },
                    );
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&fd) else {
                continue;
            };
            let was_blocked = !conn.pending.is_empty();
            let open = serve(conn, &mut buf);
            let blocked = !conn.pending.is_empty();
            if open && blocked != was_blocked {
                // Ask for writability only while output is waiting: an
                // always-on EPOLLOUT would wake the loop on every ACK.
                let interest = if blocked {
                    READ | libc::EPOLLOUT as u32
                } else {
                    READ
                };
                epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, interest)?;
            }
            if !open {
                // Closing the fd removes it from the epoll set.
                conns.remove(&fd);
            }
        }
    }
}
