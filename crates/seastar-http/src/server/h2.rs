//! HTTP/2 detection (feature `http2`): read the first bytes of a
//! connection and compare them with the client preface; hand the bytes
//! back to whichever protocol serves it through [`Rewind`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use seastar_net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A stream whose first reads return bytes already read from it.
pub(crate) struct Rewind {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

/// Reads until the bytes either are or cannot be the HTTP/2 preface
/// (bounded by `timeout`, so a silent client cannot hold the task).
pub(crate) async fn sniff(
    mut stream: TcpStream,
    timeout: Option<Duration>,
) -> io::Result<(bool, Rewind)> {
    let mut prefix = Vec::with_capacity(PREFACE.len());
    let read = async {
        while prefix.len() < PREFACE.len() && PREFACE.starts_with(&prefix) {
            let mut tmp = [0u8; 24];
            let want = PREFACE.len() - prefix.len();
            let n = std::future::poll_fn(|cx| {
                let mut buf = hyper::rt::ReadBuf::new(&mut tmp[..want]);
                match Pin::new(&mut stream).poll_read(cx, buf.unfilled()) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            prefix.extend_from_slice(&tmp[..n]);
        }
        Ok(())
    };
    match timeout {
        Some(t) => seastar_core::timer::timeout(t, read)
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??,
        None => read.await?,
    }
    let is_h2 = prefix == PREFACE;
    Ok((
        is_h2,
        Rewind {
            prefix,
            pos: 0,
            inner: stream,
        },
    ))
}

impl Read for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                // Handed back whole: free it for the connection's life.
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl Write for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
