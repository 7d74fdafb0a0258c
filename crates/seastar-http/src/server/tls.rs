//! HTTPS (feature `tls`): [`Server::tls`] makes a server take TLS
//! connections. The handshake runs in the connection's own task, bounded
//! by [`Server::tls_handshake_timeout`] and cut short by a stop; a failed
//! or timed-out handshake is counted
//! ([`ServeStats::tls_handshake_errors`](super::ServeStats::tls_handshake_errors))
//! and closes only its connection. ALPN then chooses the protocol: `h2`
//! (offered only with feature `http2` and [`Server::http2`] on) or
//! `http/1.1` (also what a client without ALPN gets), served by the same
//! hyper builders, limits, timeouts, output budget, graceful stop and
//! connection slots as a plain connection.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{Either, select};
use seastar_net::TcpStream;
use seastar_net::tls::rustls::ServerConfig;
use seastar_net::tls::{DEFAULT_HANDSHAKE_TIMEOUT, TlsAcceptor};

use super::{ConnSlot, Server, Shared, bump};

/// The TLS part of a server's configuration.
#[derive(Debug, Clone)]
pub(crate) struct TlsOptions {
    /// TLS is on when set.
    pub(crate) config: Option<Arc<ServerConfig>>,
    pub(crate) handshake_timeout: Duration,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            config: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl Server {
    /// Serves TLS connections with this rustls configuration (see
    /// [`seastar_net::tls::TlsServerConfig`] to build one from PEM files):
    /// every accepted connection must complete a TLS handshake first. The
    /// server sets the configuration's ALPN list to the protocols it
    /// serves (`h2` when HTTP/2 is on, then `http/1.1`); the rest is used
    /// as given (share one configuration among shards: session tickets
    /// then resume on any shard).
    pub fn tls(mut self, config: Arc<ServerConfig>) -> Server {
        self.config.tls.config = Some(config);
        self
    }

    /// Closes a TLS connection whose handshake has not finished this long
    /// after it was accepted. Default 10 s
    /// ([`DEFAULT_HANDSHAKE_TIMEOUT`]). Only used with [`Server::tls`].
    pub fn tls_handshake_timeout(mut self, t: Duration) -> Server {
        self.config.tls.handshake_timeout = t;
        self
    }
}

/// The ALPN protocols a server with this configuration serves, preferred first.
fn alpn(shared_http2: bool) -> Vec<Vec<u8>> {
    let mut p = Vec::with_capacity(2);
    if cfg!(feature = "http2") && shared_http2 {
        p.push(b"h2".to_vec());
    }
    p.push(b"http/1.1".to_vec());
    p
}

/// The acceptor for one shard's server, if TLS is on: the configuration
/// with the ALPN list of what it serves (copied only if it differs).
pub(crate) fn acceptor(tls: &TlsOptions, http2: bool) -> Option<TlsAcceptor> {
    let given = tls.config.as_ref()?;
    let protocols = alpn(http2);
    let config = if given.alpn_protocols == protocols {
        given.clone()
    } else {
        let mut c = (**given).clone();
        c.alpn_protocols = protocols;
        Arc::new(c)
    };
    Some(TlsAcceptor::new(config).handshake_timeout(tls.handshake_timeout))
}

/// Runs one TLS connection as a task holding its slot; past the shutdown
/// timeout the task's future is dropped, as a plain connection's is.
pub(super) fn spawn(slot: ConnSlot, stream: TcpStream, peer: SocketAddr, acceptor: TlsAcceptor) {
    let shared = slot.shared.clone();
    super::ConnTask::spawn(slot, Box::pin(serve(stream, peer, shared, acceptor)));
}

async fn serve(stream: TcpStream, peer: SocketAddr, shared: Rc<Shared>, acceptor: TlsAcceptor) {
    if shared.config.nodelay {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY");
        }
    }
    let handshake = std::pin::pin!(acceptor.accept(stream));
    let stop = std::pin::pin!(shared.stop.aborted());
    let tls = match select(handshake, stop).await {
        Either::Left((Ok(tls), _)) => tls,
        Either::Left((Err(e), _)) => {
            bump(&shared.stats.tls_errors);
            tracing::debug!(shard = seastar_core::shard_id(), %peer, error = %e, "TLS handshake failed");
            return;
        }
        // Stopping: a connection that has not finished its handshake has
        // no request in flight.
        Either::Right(((), _)) => return,
    };
    #[cfg(feature = "http2")]
    if shared.config.http2 && tls.alpn_protocol() == Some(&b"h2"[..]) {
        // Boxed, as on plain connections: HTTP/1.1 ones stay small.
        return Box::pin(super::h2::serve(tls, peer, &shared)).await;
    }
    super::http1::serve(tls, peer, shared, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_offers_h2_only_when_served() {
        assert_eq!(alpn(false), vec![b"http/1.1".to_vec()]);
        let with_h2 = alpn(true);
        if cfg!(feature = "http2") {
            assert_eq!(with_h2, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        } else {
            assert_eq!(with_h2, vec![b"http/1.1".to_vec()]);
        }
    }
}
