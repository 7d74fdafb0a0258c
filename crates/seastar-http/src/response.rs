//! [`IntoResponse`]: what a handler may return, and [`Redirect`].

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::{Body, Response};

/// Turns a handler's return value into a response.
///
/// Implemented for [`Response`], [`StatusCode`], strings and bytes (200,
/// `text/plain` or `application/octet-stream`), `(StatusCode, T)`,
/// `(StatusCode, HeaderMap, T)`, `Result<T, E>` when both sides are,
/// [`Json`](seastar_json::Json) (`application/json`), [`Redirect`] and the
/// crate's errors.
///
/// ```
/// use http::StatusCode;
/// use seastar_http::IntoResponse;
///
/// let r = (StatusCode::CREATED, "made").into_response();
/// assert_eq!(r.status(), 201);
/// assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
/// ```
pub trait IntoResponse {
    /// The response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = self;
        r
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Body::empty())
    }
}

/// Answers with `body` and a `Content-Type`. The values are constants:
/// `HeaderValue::from_static` validates its bytes at run time unless the
/// compiler can fold it, which it cannot through a parameter (measured with
/// callgrind on the hello route: a third of this function's instructions).
fn with_type(body: Body, ty: &HeaderValue) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, ty.clone());
    r
}

/// `text/plain; charset=utf-8`.
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
/// `application/octet-stream`.
const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        with_type(self.into(), &TEXT)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        with_type(self.into(), &TEXT)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        with_type(self.into(), &OCTETS)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Bytes::from(self).into_response()
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        let mut r = self.1.into_response();
        *r.status_mut() = self.0;
        r
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, HeaderMap, T) {
    fn into_response(self) -> Response {
        let mut r = self.2.into_response();
        *r.status_mut() = self.0;
        r.headers_mut().extend(self.1);
        r
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(t) => t.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// A plain-text error response: `status` with `message` as the body.
///
/// ```
/// let r = seastar_http::response::error(http::StatusCode::NOT_FOUND, "no such user");
/// assert_eq!(r.status(), 404);
/// ```
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut m = message.into();
    if !m.ends_with('\n') {
        m.push('\n');
    }
    (status, m).into_response()
}

/// A redirect: `Location` plus the status that says how to follow it.
///
/// ```
/// use seastar_http::{IntoResponse, Redirect};
///
/// let r = Redirect::permanent("/new").into_response();
/// assert_eq!(r.status(), 308);
/// assert_eq!(r.headers()["location"], "/new");
/// ```
#[derive(Debug, Clone)]
pub struct Redirect {
    status: StatusCode,
    location: HeaderValue,
}

impl Redirect {
    fn with(status: StatusCode, to: &str) -> Redirect {
        let location = HeaderValue::try_from(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
        Redirect { status, location }
    }

    /// 303 See Other: fetch `to` with GET (after a POST).
    pub fn to(to: &str) -> Redirect {
        Self::with(StatusCode::SEE_OTHER, to)
    }

    /// 307 Temporary Redirect: same method and body, this time only.
    pub fn temporary(to: &str) -> Redirect {
        Self::with(StatusCode::TEMPORARY_REDIRECT, to)
    }

    /// 308 Permanent Redirect: same method and body, from now on.
    pub fn permanent(to: &str) -> Redirect {
        Self::with(StatusCode::PERMANENT_REDIRECT, to)
    }

    /// 301 Moved Permanently (clients may switch to GET).
    pub fn moved(to: &str) -> Redirect {
        Self::with(StatusCode::MOVED_PERMANENTLY, to)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        r.headers_mut().insert(header::LOCATION, self.location);
        r
    }
}

/// A [`Redirect`] is also a handler: `route("/old", get(Redirect::permanent("/new")))`.
impl crate::Handler for Redirect {
    fn call(&self, _req: crate::Request) -> crate::handler::HandlerFuture {
        let r = self.clone().into_response();
        Box::pin(std::future::ready(r))
    }
}
