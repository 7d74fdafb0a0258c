//! [`Body`]: the one body type of requests and responses.
//!
//! A request's body is hyper's incoming stream with the server's size limit
//! applied as it is read; a response's body is usually a single buffer
//! (sent with `Content-Length`, no allocation beyond it) and may be any
//! [`http_body::Body`] of [`Bytes`], boxed, `!Send` allowed (a shard never
//! moves its connections).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use seastar_core::timer::Sleep;

use crate::server::ConnWatch;

/// A boxed error from a body, a service or a handler.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The request body is larger than the server's limit
    /// ([`Server::max_body_size`](crate::Server::max_body_size)); answered with 413.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The connection failed while the body was read (client gone, bad
    /// chunked encoding).
    #[error("reading the body: {0}")]
    Hyper(#[from] hyper::Error),
    /// No body byte arrived within the server's
    /// [`body_read_timeout`](crate::Server::body_read_timeout); answered with 408.
    #[error("no request body bytes for {0:?}")]
    Timeout(Duration),
    /// An error from a streaming body.
    #[error("{0}")]
    Other(BoxError),
}

impl BodyError {
    /// The status that answers a request whose body failed this way:
    /// 413, 408, 400 for a malformed body or one cut short, 500 otherwise.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Hyper(_) => StatusCode::BAD_REQUEST,
            BodyError::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Whether hyper's body error is bad framing from the client (a chunk
/// size that is not hex, a missing CRLF), as opposed to a connection that
/// went away.
fn is_bad_framing(e: &hyper::Error) -> bool {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            );
        }
        src = s.source();
    }
    false
}

enum Kind {
    /// One buffer, sent with `Content-Length`; empty for no body (or once
    /// read).
    Full(Bytes),
    /// A stream, in 16 bytes beside `Full`'s buffer: a `Body` is then 32
    /// bytes and a request 256, which `memcpy` moves with one class of
    /// code faster (callgrind: about 20 instructions per move, several
    /// moves per request). Most requests have no body (they get an empty
    /// `Full`).
    Streamed(Streamed),
}

enum Streamed {
    Incoming(Box<Incoming>),
    Boxed(Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError>>>),
}

/// A request body read from hyper, with the server's limits.
struct Incoming {
    body: hyper::body::Incoming,
    /// Bytes still allowed, when limited.
    remaining: Option<u64>,
    limit: u64,
    /// The body read timeout and its timer, armed while waiting.
    timeout: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    /// Told when the body fails (the server may owe a reply).
    watch: Option<Rc<ConnWatch>>,
}

/// A request or response body.
///
/// ```
/// use http_body::Body as _;
/// use seastar_http::Body;
///
/// assert_eq!(Body::from("hello").size_hint().exact(), Some(5));
/// assert!(Body::empty().is_end_stream());
/// ```
pub struct Body {
    kind: Kind,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Full(b) if b.is_empty() => "empty",
            Kind::Full(_) => "full",
            Kind::Streamed(Streamed::Incoming(_)) => "incoming",
            Kind::Streamed(Streamed::Boxed(_)) => "stream",
        };
        f.debug_tuple("Body").field(&kind).finish()
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl Body {
    /// No bytes.
    pub fn empty() -> Body {
        Body {
            kind: Kind::Full(Bytes::new()),
        }
    }

    /// Any body of [`Bytes`] frames: a stream, a [`JsonBody`](seastar_json::JsonBody),
    /// another service's response body.
    ///
    /// ```
    /// use http_body_util::{BodyExt, StreamBody};
    /// use http_body::Frame;
    /// use bytes::Bytes;
    ///
    /// let chunks = futures::stream::iter(["a", "b"].map(|s| {
    ///     Ok::<_, std::io::Error>(Frame::data(Bytes::from(s)))
    /// }));
    /// let body = seastar_http::Body::new(StreamBody::new(chunks));
    /// let all = futures::executor::block_on(body.collect()).unwrap().to_bytes();
    /// assert_eq!(&all[..], b"ab");
    /// ```
    pub fn new<B>(body: B) -> Body
    where
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        Body {
            kind: Kind::Streamed(Streamed::Boxed(Box::pin(ErrInto { inner: body }))),
        }
    }

    /// A request body from hyper, limited to `limit` bytes if given,
    /// failing after `timeout` without a byte if given; empty (and no
    /// allocation) when hyper knows there is none.
    pub(crate) fn incoming(
        body: hyper::body::Incoming,
        limit: Option<u64>,
        timeout: Option<Duration>,
        watch: impl FnOnce() -> Option<Rc<ConnWatch>>,
    ) -> Body {
        if http_body::Body::is_end_stream(&body) {
            return Body::empty();
        }
        Body {
            kind: Kind::Streamed(Streamed::Incoming(Box::new(Incoming {
                body,
                remaining: limit,
                limit: limit.unwrap_or(u64::MAX),
                timeout,
                timer: None,
                watch: watch(),
            }))),
        }
    }

    /// Reads the whole body into one buffer.
    ///
    /// ```
    /// let b = futures::executor::block_on(seastar_http::Body::from("abc").to_bytes()).unwrap();
    /// assert_eq!(&b[..], b"abc");
    /// ```
    pub async fn to_bytes(self) -> Result<Bytes, BodyError> {
        if let Kind::Full(b) = self.kind {
            return Ok(b);
        }
        Ok(self.collect().await?.to_bytes())
    }

    /// A copy of a body that is still whole in memory (empty, or one
    /// buffer not yet read), to send again; `None` for a stream.
    pub(crate) fn try_clone(&self) -> Option<Body> {
        let kind = match &self.kind {
            Kind::Full(b) => Kind::Full(b.clone()),
            Kind::Streamed(_) => return None,
        };
        Some(Body { kind })
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        if b.is_empty() {
            return Body::empty();
        }
        Body {
            kind: Kind::Full(b),
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Bytes::from_static(s).into()
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(b) if b.is_empty() => Poll::Ready(None),
            Kind::Full(b) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(b))))),
            Kind::Streamed(Streamed::Incoming(incoming)) => {
                let Incoming {
                    body,
                    remaining,
                    limit,
                    timeout,
                    timer,
                    watch,
                } = &mut **incoming;
                let frame = match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(f) => {
                        *timer = None;
                        f
                    }
                    Poll::Pending => {
                        let Some(t) = *timeout else {
                            return Poll::Pending;
                        };
                        let timer =
                            timer.get_or_insert_with(|| Box::pin(seastar_core::timer::sleep(t)));
                        ready!(timer.as_mut().poll(cx));
                        *timeout = None;
                        if let Some(w) = watch {
                            w.body_failed(http::StatusCode::REQUEST_TIMEOUT);
                        }
                        return Poll::Ready(Some(Err(BodyError::Timeout(t))));
                    }
                };
                if let Some(Err(e)) = &frame {
                    if let (Some(w), true) = (watch.as_ref(), is_bad_framing(e)) {
                        w.body_failed(http::StatusCode::BAD_REQUEST);
                    }
                }
                if let (Some(Ok(f)), Some(left)) = (&frame, remaining.as_mut()) {
                    if let Some(d) = f.data_ref() {
                        let n = d.len() as u64;
                        if n > *left {
                            return Poll::Ready(Some(Err(BodyError::TooLarge { limit: *limit })));
                        }
                        *left -= n;
                    }
                }
                Poll::Ready(frame.map(|r| r.map_err(BodyError::Hyper)))
            }
            Kind::Streamed(Streamed::Boxed(b)) => b
                .as_mut()
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BodyError::Other))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_empty(),
            Kind::Streamed(Streamed::Incoming(i)) => i.body.is_end_stream(),
            Kind::Streamed(Streamed::Boxed(b)) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.len() as u64),
            Kind::Streamed(Streamed::Incoming(i)) => i.body.size_hint(),
            Kind::Streamed(Streamed::Boxed(b)) => b.size_hint(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A body whose error is boxed.
    struct ErrInto<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for ErrInto<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project()
            .inner
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    #[test]
    fn full_bodies_have_exact_sizes_and_end() {
        let mut b = Body::from(String::from("hello"));
        assert_eq!(b.size_hint().exact(), Some(5));
        assert!(!b.is_end_stream());
        let f = futures::executor::block_on(b.frame()).unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), "hello");
        assert!(b.is_end_stream());
        assert!(Body::from(Bytes::new()).is_end_stream());
        assert_eq!(Body::from(()).size_hint().exact(), Some(0));
    }

    #[test]
    fn a_request_fits_the_fast_memcpy_class() {
        // Moves of up to 256 bytes take glibc's short path (see `Kind`).
        assert_eq!(std::mem::size_of::<Body>(), 32);
        assert!(std::mem::size_of::<crate::Request>() <= 256);
    }

    #[test]
    fn stream_errors_surface_as_other() {
        let s = futures::stream::iter([
            Ok(Frame::data(Bytes::from("a"))),
            Err(std::io::Error::other("boom")),
        ]);
        let body = Body::new(http_body_util::StreamBody::new(s));
        let err = futures::executor::block_on(body.to_bytes()).unwrap_err();
        assert!(matches!(err, BodyError::Other(_)));
        assert_eq!(err.to_string(), "boom");
    }
}
