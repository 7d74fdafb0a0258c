//! [`SendBehind`]: a whole-buffer send that runs while its owner goes on
//! (reads the next request), from [`TcpStream::send_behind`](crate::TcpStream::send_behind).
//!
//! A server that answers and then awaits the send before reading again
//! costs a wake of its task per answer (the send's completion) and leaves
//! the next receive for the loop iteration after. Sending behind, the
//! receive is submitted with the send, and the send's completion wakes
//! nobody when it took the whole buffer ([`SendAll::poll_quiet`]); only a
//! short send or an error does, and the owner must then poll it again
//! (typically while waiting for its next read) so that it continues.

use std::fmt;
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::pin;
use std::task::{Context, Poll, ready};

use seastar_core::io::{IoBuf, SendAll};

use crate::BufResult;

/// A send of all of a buffer started by
/// [`TcpStream::send_behind`](crate::TcpStream::send_behind) (or the
/// [`UnixStream`](crate::UnixStream) one). Dropping it before it finishes
/// cancels the send.
///
/// ```
/// use seastar_net::{ListenOptions, TcpListener, TcpStream};
///
/// seastar_core::block_on(async {
///     let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
///     let (s, _) = l.accept().await.unwrap();
///     let mut sending = s.send_behind(b"pong".to_vec());
///     // ... read the next request meanwhile, polling `sending` quietly ...
///     let (n, buf) = sending.finish().await;
///     assert_eq!(n.unwrap(), 4);
///     let (n, got) = c.read(vec![0; 8]).await;
///     assert_eq!(&got[..n.unwrap()], b"pong");
///     # drop(buf);
/// });
/// ```
pub struct SendBehind<B: IoBuf> {
    op: SendAll<B>,
}

impl<B: IoBuf> SendBehind<B> {
    /// Starts sending `buf` on `fd`. Counts nothing: the caller counts the
    /// bytes on the socket's meter (it holds the socket; the send does not,
    /// which spares it a reference count per send).
    pub(crate) fn start(fd: RawFd, buf: B) -> SendBehind<B> {
        SendBehind {
            op: SendAll::start(fd, buf),
        }
    }

    /// Completes once every byte is sent (the count) or the send failed;
    /// wakes the task on completion.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<BufResult<usize, B>> {
        let r = ready!(self.op.poll(cx));
        Poll::Ready(r)
    }

    /// As [`poll`](Self::poll), but the completion of a send that took the
    /// rest of the buffer does not wake the task (see the module docs).
    pub fn poll_quiet(&mut self, cx: &mut Context<'_>) -> Poll<BufResult<usize, B>> {
        let r = ready!(self.op.poll_quiet(cx));
        Poll::Ready(r)
    }

    /// Bytes sent so far.
    pub(crate) fn sent(&self) -> usize {
        self.op.sent()
    }

    /// Waits for the send to finish.
    pub async fn finish(mut self) -> BufResult<usize, B> {
        std::future::poll_fn(|cx| self.poll(cx)).await
    }

    /// Awaits `fut` (the next read) while polling the send in `sending`
    /// quietly: a short send continues, one that took the whole rest wakes
    /// nobody, and a finished one leaves `sending` empty and is returned
    /// with `fut`'s output.
    ///
    /// ```
    /// use seastar_net::{ListenOptions, SendBehind, TcpListener, TcpStream};
    ///
    /// seastar_core::block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     let (s, _) = l.accept().await.unwrap();
    ///     let mut sending = Some(s.send_behind(b"ping".to_vec()));
    ///     seastar_core::spawn_local(async move {
    ///         let (_, b) = c.read(vec![0; 4]).await; // the peer answers the ping
    ///         c.write_all(b).await.0.unwrap();
    ///     })
    ///     .detach();
    ///     let ((n, got), _sent) = SendBehind::during(&mut sending, s.read(vec![0; 4])).await;
    ///     assert_eq!(&got[..n.unwrap()], b"ping");
    /// });
    /// ```
    pub async fn during<F: Future>(
        sending: &mut Option<SendBehind<B>>,
        fut: F,
    ) -> (F::Output, Option<BufResult<usize, B>>) {
        let mut fut = pin!(fut);
        let mut sent = None;
        let out = std::future::poll_fn(|cx| {
            if let Some(s) = sending.as_mut()
                && let Poll::Ready(r) = s.poll_quiet(cx)
            {
                *sending = None;
                sent = Some(r);
            }
            fut.as_mut().poll(cx)
        })
        .await;
        (out, sent)
    }
}

impl<B: IoBuf> fmt::Debug for SendBehind<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendBehind")
            .field("sent", &self.op.sent())
            .finish()
    }
}
