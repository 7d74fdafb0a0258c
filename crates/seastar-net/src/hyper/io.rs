//! `hyper::rt::{Read, Write}` for [`TcpStream`] and [`UnixStream`], so
//! hyper's connections run on a shard directly.
//!
//! hyper reads through a `ReadBufCursor` it owns, which a completion-based
//! socket cannot hand to the kernel (the kernel may write after the future
//! is dropped). So bytes are received into a buffer lent by the shard
//! (a pooled receive: none is held while the connection waits) and copied
//! into hyper's: one copy per read. Writes are copied too
//! (up to 64 KiB per call) and sent behind; `poll_flush` waits for the send
//! and reports its error. See [`TcpStream::poll_read`] and
//! [`TcpStream::poll_write`].
//!
//! ```
//! use http_body_util::Full;
//! use hyper::body::Bytes;
//! use hyper::service::service_fn;
//! use seastar_net::{ListenOptions, TcpListener, TcpStream};
//!
//! seastar_core::block_on(async {
//!     let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
//!     let addr = l.local_addr().unwrap();
//!     seastar_core::spawn_local(async move {
//!         let (conn, _) = l.accept().await.unwrap();
//!         let svc = service_fn(|_req| async {
//!             Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from("hi"))))
//!         });
//!         hyper::server::conn::http1::Builder::new().serve_connection(conn, svc).await.unwrap();
//!     })
//!     .detach();
//!     let (mut sender, conn) =
//!         hyper::client::conn::http1::handshake(TcpStream::connect(addr).await.unwrap()).await.unwrap();
//!     seastar_core::spawn_local(conn).detach();
//!     let resp = sender
//!         .send_request(hyper::Request::new(Full::new(Bytes::new())))
//!         .await
//!         .unwrap();
//!     assert_eq!(resp.status(), 200);
//! });
//! ```

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::hyper::rt::{Read, ReadBufCursor, Write};

use crate::{TcpStream, UnixStream};

macro_rules! impl_hyper {
    ($ty:ty) => {
        impl Read for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                mut buf: ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                let (pio, fd) = self.get_mut().poll_parts();
                let data = ready!(pio.poll_fill(fd, cx))?;
                let n = data.len().min(buf.remaining());
                buf.put_slice(&data[..n]);
                pio.consume(n);
                Poll::Ready(Ok(()))
            }
        }

        impl Write for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_flush(cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_shutdown(cx)
            }
        }
    };
}

impl_hyper!(TcpStream);
impl_hyper!(UnixStream);
