//! A pooled connection's request half ([`Sender`]: HTTP/1.1, or HTTP/2
//! multiplexed), where a request goes ([`Target`]), and the HTTP
//! handshakes over a connected stream.

use http::uri::Authority;
#[cfg(feature = "http2")]
use hyper::client::conn::http2;
use hyper::client::conn::{TrySendError, http1};

use super::{ClientError, ClientResponse};
use crate::{Body, Request};

/// The origin a request goes to: host and port, and whether over TLS.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) authority: Authority,
    pub(super) tls: bool,
}

impl Target {
    /// The port: the URI's, or the scheme's default.
    pub(super) fn port(&self) -> u16 {
        self.authority
            .port_u16()
            .unwrap_or(if self.tls { 443 } else { 80 })
    }

    /// The host as the certificate must name it (no IPv6 brackets).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(super) fn host(&self) -> &str {
        self.authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    /// The pool key: a TLS and a plain connection to one host:port are
    /// never mixed up.
    pub(super) fn key(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.authority.host(), self.port())
    }
}

/// The request half of a client connection.
pub(super) enum Sender {
    /// One request at a time; pooled between requests.
    Http1(http1::SendRequest<Body>),
    /// Any number of requests at once; stays in the pool while used.
    #[cfg(feature = "http2")]
    Http2(http2::SendRequest<Body>),
}

impl Sender {
    pub(super) fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_closed(),
            #[cfg(feature = "http2")]
            Sender::Http2(s) => s.is_closed(),
        }
    }

    pub(super) fn is_ready(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_ready(),
            #[cfg(feature = "http2")]
            Sender::Http2(s) => s.is_ready(),
        }
    }

    /// Whether requests share this connection (HTTP/2).
    pub(super) fn is_shared(&self) -> bool {
        match self {
            Sender::Http1(_) => false,
            #[cfg(feature = "http2")]
            Sender::Http2(_) => true,
        }
    }

    /// Another handle on a shared (HTTP/2) connection; `None` for HTTP/1.1.
    pub(super) fn shared(&self) -> Option<Sender> {
        match self {
            Sender::Http1(_) => None,
            #[cfg(feature = "http2")]
            Sender::Http2(s) => Some(Sender::Http2(s.clone())),
        }
    }

    pub(super) async fn try_send_request(
        &mut self,
        req: Request,
    ) -> Result<ClientResponse, TrySendError<Request>> {
        match self {
            Sender::Http1(s) => s.try_send_request(req).await,
            #[cfg(feature = "http2")]
            Sender::Http2(s) => s.try_send_request(req).await,
        }
    }
}

/// Runs a connection's protocol half as a task of its own.
fn drive<F>(conn: F)
where
    F: std::future::Future<Output = Result<(), hyper::Error>> + 'static,
{
    seastar_core::spawn_local(async move {
        if let Err(e) = conn.await {
            tracing::debug!(shard = seastar_core::shard_id(), error = %e, "client connection ended");
        }
    })
    .detach();
}

/// HTTP/1.1 over `io`.
pub(super) async fn http1<T>(io: T) -> Result<Sender, ClientError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, conn) = http1::Builder::new().handshake(io).await?;
    drive(conn);
    Ok(Sender::Http1(sender))
}

/// HTTP/2 over `io` (chosen by ALPN); stream tasks run on the shard.
#[cfg(feature = "http2")]
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(super) async fn http2<T>(io: T) -> Result<Sender, ClientError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, conn) = http2::Builder::new(seastar_net::hyper::ShardExecutor)
        .timer(seastar_net::hyper::ShardTimer)
        .handshake(io)
        .await?;
    drive(conn);
    Ok(Sender::Http2(sender))
}
