//! What a handler reads from a request: path parameters ([`PathParams`]),
//! the query ([`Query`]), the body as bytes or JSON; see [`RequestExt`].

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::Request;
use crate::body::BodyError;
use crate::json::JsonRejection;
use crate::util::percent_decode;

/// The parameters a route pattern captured (`{id}`, `{*path}`),
/// percent-decoded, in pattern order.
///
/// ```
/// use seastar_http::{Request, RequestExt};
///
/// let req = Request::new(Default::default());
/// assert!(req.params().is_empty());
/// assert_eq!(req.param("id"), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PathParams {
    pairs: Vec<(Arc<str>, String)>,
}

impl PathParams {
    pub(crate) fn push(&mut self, name: Arc<str>, value: String) {
        self.pairs.push((name, value));
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `(name, value)` in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (&**k, v.as_str()))
    }

    /// Whether the pattern had no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// How many parameters.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }
}

/// A parsed query string: `+` and `%XX` decoded, repeated keys kept in
/// order, a pair that does not decode skipped.
///
/// ```
/// let q = seastar_http::Query::parse("q=rust+http&tag=a&tag=b%26c&flag");
/// assert_eq!(q.get("q"), Some("rust http"));
/// assert_eq!(q.get_all("tag").collect::<Vec<_>>(), ["a", "b&c"]);
/// assert_eq!(q.get("flag"), Some(""));
/// assert_eq!(q.get("none"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b=2` (no leading `?`).
    pub fn parse(query: &str) -> Query {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((percent_decode(k, true)?, percent_decode(v, true)?))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every `(key, value)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Reading a request in a handler.
///
/// ```
/// use seastar_http::{Request, RequestExt};
///
/// let req: Request = http::Request::builder()
///     .uri("/search?q=a%20b")
///     .body(seastar_http::Body::from("payload"))
///     .unwrap();
/// assert_eq!(req.query().get("q"), Some("a b"));
/// let body = futures::executor::block_on(req.bytes()).unwrap();
/// assert_eq!(&body[..], b"payload");
/// ```
#[allow(async_fn_in_trait)]
pub trait RequestExt {
    /// The route parameter `name`.
    fn param(&self, name: &str) -> Option<&str>;
    /// Every route parameter.
    fn params(&self) -> &PathParams;
    /// The parsed query string (empty if none).
    fn query(&self) -> Query;
    /// The whole body (413 as a response when over the server's limit).
    async fn bytes(self) -> Result<Bytes, BodyError>;
    /// The body as JSON of type `T`: 415 unless the content type is
    /// `application/json` (or `+json`), 400 naming the serde error and its
    /// position if it does not parse, 413 when too large.
    async fn json<T: DeserializeOwned>(self) -> Result<T, JsonRejection>;
}

static NO_PARAMS: PathParams = PathParams { pairs: Vec::new() };

impl RequestExt for Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.params().get(name)
    }

    fn params(&self) -> &PathParams {
        self.extensions().get::<PathParams>().unwrap_or(&NO_PARAMS)
    }

    fn query(&self) -> Query {
        self.uri().query().map(Query::parse).unwrap_or_default()
    }

    async fn bytes(self) -> Result<Bytes, BodyError> {
        self.into_body().to_bytes().await
    }

    async fn json<T: DeserializeOwned>(self) -> Result<T, JsonRejection> {
        crate::json::from_request(self).await.map(|j| j.0)
    }
}
