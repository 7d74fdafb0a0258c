//! Completion-style I/O on file descriptors, on either backend.
//!
//! Every call takes its buffer by value and returns it with the result,
//! `(io::Result<T>, B)`, because io_uring may write into a buffer after the
//! future that started the operation was dropped (see [`buf`]). On io_uring
//! a call is one submission; on epoll it is a non-blocking syscall retried
//! on readiness. File descriptors handed to these calls must be
//! non-blocking (`SOCK_NONBLOCK`/`O_NONBLOCK`) and must be closed through
//! [`close`], which also forgets the epoll registration.
//!
//! Regular files and paths are served by [`file`](mod@file) instead (readiness means
//! nothing for them: on epoll those calls run on the blocking pool).
//!
//! This module is the floor the networking and file crates build on; apps
//! normally use `seastar-net` streams instead.
//!
//! ```
//! # seastar_core::block_on(async {
//! use std::os::fd::AsRawFd;
//! let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
//! a.set_nonblocking(true).unwrap();
//! b.set_nonblocking(true).unwrap();
//! let (n, _) = seastar_core::io::send(a.as_raw_fd(), b"ping".to_vec()).await;
//! assert_eq!(n.unwrap(), 4);
//! let (n, buf) = seastar_core::io::recv(b.as_raw_fd(), Vec::with_capacity(16)).await;
//! assert_eq!(&buf[..n.unwrap()], b"ping");
//! # });
//! ```

mod accept;
mod addr;
mod blocking;
pub mod buf;
mod fd;
pub mod file;
pub(crate) mod op;
pub mod pool;
mod pooled_recv;
mod send_all;
mod socket;
mod stream_recv;

pub use crate::reactor::UringFeatures;
pub use accept::{Acceptor, accept, uring_features};
pub use blocking::spawn_blocking;
pub use buf::{IoBuf, IoBufMut};

/// The result of an owned-buffer operation: the outcome and the buffer,
/// handed back whatever happened.
///
/// ```
/// use seastar_core::io::BufResult;
/// let r: BufResult<usize, Vec<u8>> = (Ok(3), b"abc".to_vec());
/// assert_eq!(r.0.unwrap(), r.1.len());
/// ```
pub type BufResult<T, B> = (std::io::Result<T>, B);
pub use fd::{close, fdatasync, fsync, read, read_at, readable, writable, write, write_at, writev};
pub use pooled_recv::{PooledBuf, PooledRecv, PooledRecvStream, recv_pooled};
pub use send_all::SendAll;
pub use socket::{connect, recv, recv_from, recv_stream, send, send_to};
pub use stream_recv::StreamRecv;
