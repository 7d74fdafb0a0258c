//! `futures::io::{AsyncRead, AsyncBufRead, AsyncWrite}` for [`TcpStream`]
//! and [`UnixStream`] (feature `futures-io`).
//!
//! Reads go through the stream's internal buffer (one copy into the
//! caller's slice; `AsyncBufRead` lends the buffer itself, no copy); writes
//! are copied and sent behind, `poll_flush` waits for them and `poll_close`
//! flushes and shuts the write side down. See [`TcpStream::poll_read`] and
//! [`TcpStream::poll_write`].
//!
//! The streams' inherent owned-buffer methods (`read`, `write`,
//! `write_all`) take precedence over the extension traits' methods of the
//! same name; call those through the trait (`AsyncWriteExt::write_all(&mut
//! s, buf)`) or use the ones without a twin (`read_exact`, `read_to_end`,
//! `flush`, `close`).
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use seastar_net::UnixStream;
//!
//! seastar_core::block_on(async {
//!     let (mut a, mut b) = UnixStream::pair().unwrap();
//!     AsyncWriteExt::write_all(&mut a, b"ping").await.unwrap();
//!     a.flush().await.unwrap();
//!     let mut buf = [0u8; 4];
//!     b.read_exact(&mut buf).await.unwrap();
//!     assert_eq!(&buf, b"ping");
//! });
//! ```

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

use crate::{TcpStream, UnixStream};

macro_rules! impl_futures_io {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().poll_read(cx, buf)
            }
        }

        impl AsyncBufRead for $ty {
            fn poll_fill_buf(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<&[u8]>> {
                let (pio, fd) = self.get_mut().poll_parts();
                pio.poll_fill(fd, cx)
            }

            fn consume(self: Pin<&mut Self>, amt: usize) {
                self.get_mut().poll_parts().0.consume(amt);
            }
        }

        impl AsyncWrite for $ty {
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

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_flush(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_shutdown(cx)
            }
        }
    };
}

impl_futures_io!(TcpStream);
impl_futures_io!(UnixStream);
