//! [`Client`]: HTTP/1.1 requests from a shard, over a per-shard pool of
//! keep-alive connections.
//!
//! A `Client` is shard-local (`Rc` inside, `!Send`): make one per shard
//! (cloning shares the pool), or use [`Client::shard_local`], which every
//! caller on a shard shares. Connections are keyed by `host:port`; after a
//! response's head arrives its connection goes back to the pool and is
//! reused once the response body has been read to the end (a body dropped
//! early closes the connection). Idle connections beyond
//! [`max_idle_per_host`](ClientBuilder::max_idle_per_host) or older than
//! [`idle_timeout`](ClientBuilder::idle_timeout) (on the shard's clock) are
//! closed. A request that finds its pooled connection closed by the server
//! is sent again on a new one when that is safe: it was never written, or
//! it is idempotent with its body in memory. Bodies stream
//! both ways: the request body is any [`Body`], the response body is
//! hyper's [`Incoming`].
//!
//! `https://` with feature `tls` (see [`tls`](self#https)); a host name is
//! resolved on the blocking helper thread, an IP literal is not.
//!
//! # HTTPS
//!
//! With feature `tls`, `https://` URLs go through seastar-net's
//! [`TlsConnector`](seastar_net::tls::TlsConnector): the URL's host is the
//! SNI name and the name the certificate must carry, and ALPN offers `h2`
//! (with feature `http2`) and `http/1.1`. An `h2` connection is one pooled
//! connection per host that every request multiplexes on; an `http/1.1`
//! one is pooled as a plain one. The trusted roots are Mozilla's, compiled
//! in (`webpki-roots`: no file or network is read at run time, the same on
//! every machine), unless [`ClientBuilder::tls`] gives a configuration of
//! its own (e.g. a private CA). A certificate that does not verify fails
//! the request with [`ClientError::Certificate`], carrying rustls'
//! [`CertificateError`](seastar_net::tls::rustls::CertificateError)
//! (`UnknownIssuer`, `NotValidForName`, `Expired`, ...).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Uri};
use hyper::body::Incoming;
use seastar_core::shard_local::{self, SlotKey};
use seastar_core::timer::lowres_now;

use crate::{Body, Request};

mod conn;
#[cfg(feature = "tls")]
mod tls;

use conn::{Sender, Target};

/// A response as the client returns it: the body streams from the connection.
pub type ClientResponse = http::Response<Incoming>;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URI has no host, or a scheme other than `http` (or `https`
    /// with feature `tls`).
    #[error("unsupported URI `{0}`: need http://host[:port]/... (or https:// with feature tls)")]
    BadUri(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The connection did not open within the connect timeout.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// No response head arrived within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The HTTP exchange failed (connection closed, malformed response).
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    /// The server's certificate did not verify (feature `tls`): unknown
    /// issuer, another name, expired, ...
    #[cfg(feature = "tls")]
    #[error("certificate of {host} rejected: {error}")]
    Certificate {
        /// The host name the certificate was checked against.
        host: String,
        /// rustls' reason.
        error: seastar_net::tls::rustls::CertificateError,
    },
    /// The TLS handshake failed for another reason (feature `tls`): an
    /// alert from the server, no common protocol version or ALPN, a
    /// handshake timeout, a connection closed mid-handshake.
    #[cfg(feature = "tls")]
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// The host.
        host: String,
        /// What went wrong.
        #[source]
        source: seastar_net::tls::TlsError,
    },
}

#[derive(Debug, Clone)]
struct Config {
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
}

struct Pooled {
    sender: Sender,
    since: Instant,
}

struct Inner {
    config: Config,
    pool: RefCell<HashMap<String, Vec<Pooled>>>,
    #[cfg(feature = "tls")]
    tls: RefCell<Option<seastar_net::tls::TlsConnector>>,
    #[cfg(feature = "tls")]
    tls_given: Option<std::sync::Arc<seastar_net::tls::rustls::ClientConfig>>,
}

/// An HTTP/1.1 client with a connection pool; see the [module docs](self).
///
/// ```
/// seastar_core::block_on(async {
///     let client = seastar_http::Client::builder()
///         .connect_timeout(std::time::Duration::from_millis(500))
///         .build();
///     // Nothing listens on port 1.
///     assert!(client.get("http://127.0.0.1:1/").await.is_err());
/// });
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idle: usize = self.inner.pool.borrow().values().map(Vec::len).sum();
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("pooled", &idle)
            .finish()
    }
}

/// Options of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<seastar_net::tls::rustls::ClientConfig>>,
}

impl ClientBuilder {
    /// How long a TCP connect may take (default 10 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// How long until the response head arrives, from sending (default 30 s; `None`: no limit).
    pub fn request_timeout(mut self, t: impl Into<Option<Duration>>) -> Self {
        self.config.request_timeout = t.into();
        self
    }

    /// Idle connections kept per host (default 32).
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.config.max_idle_per_host = n;
        self
    }

    /// Idle connections older than this are closed instead of reused (default 90 s).
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.config.idle_timeout = t;
        self
    }

    /// The TLS configuration for `https://` (feature `tls`), e.g. one
    /// trusting a private CA, built with
    /// [`TlsClientConfig`](seastar_net::tls::TlsClientConfig). Its ALPN list,
    /// if empty, becomes `h2` (feature `http2`) and `http/1.1`. Default:
    /// Mozilla's roots (`webpki-roots`), no client certificate.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<seastar_net::tls::rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        Client {
            inner: Rc::new(Inner {
                config: self.config,
                pool: RefCell::new(HashMap::new()),
                #[cfg(feature = "tls")]
                tls: RefCell::new(None),
                #[cfg(feature = "tls")]
                tls_given: self.tls,
            }),
        }
    }
}

/// The shard's shared client, kept in the shard's slots
/// ([`seastar_core::shard_local`]) so that it, and its pooled connections,
/// end with the runtime that made them.
struct ShardClient(Client);

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the default options.
    pub fn new() -> Client {
        Client::builder().build()
    }

    /// Options for a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: Config {
                connect_timeout: Duration::from_secs(10),
                request_timeout: Some(Duration::from_secs(30)),
                max_idle_per_host: 32,
                idle_timeout: Duration::from_secs(90),
            },
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// This shard's shared client (default options), made on first use.
    ///
    /// ```
    /// seastar_core::block_on(async {
    ///     let a = seastar_http::Client::shard_local();
    ///     let b = seastar_http::Client::shard_local();
    ///     assert!(a.same_pool(&b));
    /// });
    /// ```
    ///
    /// The client lives in the shard's slots: the next runtime on the same
    /// thread starts with a fresh one, and a runtime's pooled connections
    /// are closed with it.
    pub fn shard_local() -> Client {
        shard_local::get_or_init(SlotKey::SINGLETON, || ShardClient(Client::new()))
            .0
            .clone()
    }

    /// Whether two handles share one pool.
    pub fn same_pool(&self, other: &Client) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Idle (pooled) connections to all hosts.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.borrow().values().map(Vec::len).sum()
    }

    /// `GET uri`.
    pub async fn get(&self, uri: &str) -> Result<ClientResponse, ClientError> {
        let uri: Uri = uri
            .parse()
            .map_err(|_| ClientError::BadUri(uri.to_owned()))?;
        let req = http::Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(Body::empty())
            .expect("valid parts");
        self.request(req).await
    }

    /// Sends `req` (absolute `http://` or, with feature `tls`, `https://`
    /// URI) and returns the response once its head has arrived; the body
    /// streams after.
    pub async fn request(&self, mut req: Request) -> Result<ClientResponse, ClientError> {
        let uri = req.uri().clone();
        let tls = match uri.scheme() {
            None => false,
            Some(s) if *s == Scheme::HTTP => false,
            Some(s) if cfg!(feature = "tls") && *s == Scheme::HTTPS => true,
            Some(_) => return Err(ClientError::BadUri(uri.to_string())),
        };
        let Some(authority) = uri.authority().cloned() else {
            return Err(ClientError::BadUri(uri.to_string()));
        };
        let target = Target { authority, tls };
        let key = target.key();
        let authority = &target.authority;
        // Origin form on the wire, with a Host header.
        if !req.headers().contains_key(HOST) {
            let host = HeaderValue::from_str(authority.as_str())
                .map_err(|_| ClientError::BadUri(uri.to_string()))?;
            req.headers_mut().insert(HOST, host);
        }
        let pq = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(pq);

        let (mut sender, reused) = match self.checkout(&key).await {
            Some(s) => (s, true),
            None => (self.connect(&target).await?, false),
        };
        // A pooled connection may have been closed by the server a moment
        // ago (its idle timeout, a request cap) without our side having
        // seen it yet: the request then fails before any response. It is
        // sent once more on a new connection if hyper hands it back
        // unsent, or if it is idempotent with a body still in memory (the
        // rule of Go's net/http); anything else gets the error.
        let replay = if reused { replayable(&req) } else { None };
        let resp = match self.send(&mut sender, req).await {
            Ok(resp) => resp,
            Err(Failed::Http { error, unsent }) if reused && is_stale(&error) => {
                let Some(req) = unsent.map(|r| *r).or(replay) else {
                    return Err(error.into());
                };
                tracing::debug!(shard = seastar_core::shard_id(), error = %error, "pooled connection was closed; retrying on a new one");
                sender = self.connect(&target).await?;
                let resp = self
                    .send(&mut sender, req)
                    .await
                    .map_err(ClientError::from)?;
                self.checkin(key, sender, false);
                return Ok(resp);
            }
            Err(f) => return Err(f.into()),
        };
        self.checkin(key, sender, reused);
        Ok(resp)
    }

    /// One attempt on `sender`, bounded by the request timeout.
    async fn send(&self, sender: &mut Sender, req: Request) -> Result<ClientResponse, Failed> {
        let send = sender.try_send_request(req);
        let sent = match self.inner.config.request_timeout {
            Some(t) => seastar_core::timer::timeout(t, send)
                .await
                .map_err(|_| Failed::Timeout)?,
            None => send.await,
        };
        sent.map_err(|mut e| Failed::Http {
            unsent: e.take_message().map(Box::new),
            error: e.into_error(),
        })
    }

    async fn checkout(&self, key: &str) -> Option<Sender> {
        let idle_timeout = self.inner.config.idle_timeout;
        for attempt in 0..2 {
            let mut waiting = false;
            {
                let mut pool = self.inner.pool.borrow_mut();
                let list = pool.get_mut(key)?;
                // The shard's loop clock (the manual clock in tests).
                let now = lowres_now();
                list.retain(|p| !p.sender.is_closed() && now - p.since < idle_timeout);
                if let Some(i) = list.iter().rposition(|p| p.sender.is_ready()) {
                    // An HTTP/2 connection stays pooled: requests share it.
                    return Some(match list[i].sender.shared() {
                        Some(shared) => shared,
                        None => list.swap_remove(i).sender,
                    });
                }
                waiting |= !list.is_empty();
            }
            // A connection whose last body was just read becomes ready once
            // its task runs: give it that chance once.
            if !waiting || attempt == 1 {
                return None;
            }
            seastar_core::yield_now().await;
        }
        None
    }

    /// Pools `sender` after a request on it (an HTTP/2 connection taken
    /// from the pool is still there: `reused` says so).
    fn checkin(&self, key: String, sender: Sender, reused: bool) {
        if reused && sender.is_shared() {
            return;
        }
        let max = self.inner.config.max_idle_per_host;
        let mut pool = self.inner.pool.borrow_mut();
        let list = pool.entry(key).or_default();
        if list.len() < max {
            list.push(Pooled {
                sender,
                since: lowres_now(),
            });
        }
    }

    async fn connect(&self, target: &Target) -> Result<Sender, ClientError> {
        let addr = resolve(&target.authority, target.port()).await?;
        let t = self.inner.config.connect_timeout;
        let stream =
            match seastar_core::timer::timeout(t, seastar_net::TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
                Err(_) => return Err(ClientError::ConnectTimeout(addr)),
            };
        let _ = stream.set_nodelay(true);
        #[cfg(feature = "tls")]
        if target.tls {
            let connector = self.tls_connector();
            return tls::connect(&connector, target.host(), stream).await;
        }
        conn::http1(stream).await
    }

    /// This client's connector, made on first use.
    #[cfg(feature = "tls")]
    fn tls_connector(&self) -> seastar_net::tls::TlsConnector {
        self.inner
            .tls
            .borrow_mut()
            .get_or_insert_with(|| tls::connector(self.inner.tls_given.as_ref()))
            .clone()
    }
}

/// A failed attempt: the request back if it was never written.
enum Failed {
    Timeout,
    Http {
        error: hyper::Error,
        /// Boxed: the error path only.
        unsent: Option<Box<Request>>,
    },
}

impl From<Failed> for ClientError {
    fn from(f: Failed) -> ClientError {
        match f {
            Failed::Timeout => ClientError::Timeout,
            Failed::Http { error, .. } => ClientError::Http(error),
        }
    }
}

/// Whether `e` says the connection was gone before a response came: what
/// a request on a connection the server just closed runs into.
fn is_stale(e: &hyper::Error) -> bool {
    use std::error::Error as _;
    if e.is_canceled() || e.is_incomplete_message() || e.is_closed() {
        return true;
    }
    e.source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        })
}

/// A copy of an idempotent request whose body can be sent again.
fn replayable(req: &Request) -> Option<Request> {
    if !matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    ) {
        return None;
    }
    let mut copy = http::Request::new(req.body().try_clone()?);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

async fn resolve(a: &Authority, port: u16) -> Result<SocketAddr, ClientError> {
    let host = a
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let h = host.clone();
    let found = seastar_core::io::spawn_blocking(move || {
        (h.as_str(), port).to_socket_addrs().map(|mut a| a.next())
    })
    .await;
    match found {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => Err(ClientError::Resolve {
            host,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        }),
        Err(source) => Err(ClientError::Resolve { host, source }),
    }
}
