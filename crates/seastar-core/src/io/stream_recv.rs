//! [`StreamRecv`]: [`recv_stream`](super::recv_stream) as a value its
//! owner keeps and polls, for poll-style streams (hyper's `Read`,
//! futures-io), which would otherwise box the future once per receive.

use std::io;
use std::os::fd::RawFd;
use std::task::{Context, Poll};

use super::buf::IoBufMut;
use super::op::{Op, RecvStream};

/// A receive on a stream socket, as [`recv_stream`](super::recv_stream)
/// does it (no doomed attempt after a short receive), started by
/// [`StreamRecv::start`] and driven by [`poll`](StreamRecv::poll).
///
/// Dropping it before it completes cancels the receive; on io_uring, bytes
/// that arrive before the cancellation lands may be lost with its buffer,
/// so keep it until it completes when the data matters.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::os::fd::AsRawFd;
/// use seastar_core::io::StreamRecv;
///
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// b.set_nonblocking(true).unwrap();
/// std::io::Write::write_all(&mut &b, b"hi").unwrap();
/// let mut recv = StreamRecv::start(a.as_raw_fd(), vec![0u8; 16], false);
/// let (r, buf) = std::future::poll_fn(|cx| recv.poll(cx)).await;
/// let (n, drained) = r.unwrap();
/// assert_eq!((n, drained, &buf[..n]), (2, true, &b"hi"[..]));
/// # });
/// ```
///
/// Bound to the shard that started it (its key indexes that shard's
/// operation table):
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// # seastar_core::block_on(async {
/// send(seastar_core::io::StreamRecv::start(0, vec![0u8; 16], false));
/// # });
/// ```
pub struct StreamRecv<B: IoBufMut> {
    op: Op<RecvStream<B>>,
}

impl<B: IoBufMut> StreamRecv<B> {
    /// Starts receiving into `buf`; `drained`: the previous receive on `fd`
    /// was short (see [`recv_stream`](super::recv_stream)).
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn start(fd: RawFd, buf: B, drained: bool) -> StreamRecv<B> {
        StreamRecv {
            op: Op::new(RecvStream::new(fd, buf, drained)),
        }
    }

    /// Completes with the count received (`0`: end of stream) and whether
    /// the receive was short (the next `start`'s `drained`), and gives the
    /// buffer back (its first `n` bytes initialised).
    ///
    /// # Panics
    ///
    /// If polled again after it completed.
    #[inline]
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<(io::Result<(usize, bool)>, B)> {
        self.op.poll_op(cx)
    }
}

impl<B: IoBufMut> std::fmt::Debug for StreamRecv<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecv")
            .field("fd", &self.op.get().map(|r| r.fd))
            .field("done", &self.op.is_done())
            .finish()
    }
}
