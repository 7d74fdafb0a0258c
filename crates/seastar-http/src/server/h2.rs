//! HTTP/2 (feature `http2`): detection (read the first bytes of a
//! connection and compare them with the client preface; hand the bytes
//! back to whichever protocol serves it through [`Rewind`]) and serving.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use seastar_net::TcpStream;
use seastar_net::hyper::{ShardExecutor, ShardTimer};

use super::conn::ConnService;
use super::{ConnWatch, Shared, bump};

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

/// Serves an HTTP/2 connection (its preface still to be read from `io`):
/// on stop asks hyper to finish gracefully (or ends at once if no stream
/// reached the service), counts an error ending.
pub(crate) async fn serve<I>(io: I, peer: SocketAddr, shared: &Rc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let watch = Rc::new(ConnWatch::new());
    let h = &shared.config.h2;
    let mut b = hyper::server::conn::http2::Builder::new(ShardExecutor);
    b.timer(ShardTimer)
        .max_header_list_size(shared.config.max_header_size as u32)
        .max_concurrent_streams(h.max_concurrent_streams)
        .max_send_buf_size(h.max_send_buf_size)
        .initial_stream_window_size(h.stream_window)
        .initial_connection_window_size(h.connection_window)
        .keep_alive_interval(h.keep_alive_interval)
        .keep_alive_timeout(h.keep_alive_timeout);
    let mut conn = std::pin::pin!(b.serve_connection(io, service(shared, &watch)));
    let mut stop = std::pin::pin!(shared.stop.aborted());
    let mut stopping = false;
    let result = std::future::poll_fn(|cx| {
        if !stopping && stop.as_mut().poll(cx).is_ready() {
            stopping = true;
            conn.as_mut().graceful_shutdown();
        }
        let r = conn.as_mut().poll(cx);
        if r.is_pending() && stopping && watch.requests() == 0 {
            // Stopping, and no stream ever reached us: nothing to finish,
            // and a client that never acknowledges the GOAWAY's ping
            // cannot hold the stop (the GOAWAY was queued by the poll).
            return Poll::Ready(Ok(()));
        }
        r
    })
    .await;
    if let Err(e) = result {
        bump(&shared.stats.errors);
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
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

/// The connection's hyper service.
fn service(shared: &Rc<Shared>, watch: &Rc<ConnWatch>) -> ConnService {
    ConnService {
        shared: shared.clone(),
        served: Cell::new(0),
        watch: watch.clone(),
    }
}
