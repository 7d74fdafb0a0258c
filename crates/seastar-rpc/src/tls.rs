//! TLS (feature `tls`) for the native protocol and, with feature `grpc`,
//! for gRPC: rustls sessions from seastar-net ([`TlsAcceptor`],
//! [`TlsConnector`]), one per connection, driven on the connection's shard.
//!
//! - **Native server:** [`ServerOptions::tls`](crate::ServerOptions::tls)
//!   makes [`RpcServer::serve`](crate::RpcServer::serve) and
//!   [`listen`](crate::RpcServer::listen) take TLS connections: the
//!   handshake runs in the connection's task within the negotiation
//!   timeout, then the protocol is the same, frame for frame. A failed
//!   handshake (garbage, a truncated record, a client certificate that
//!   does not verify) is counted
//!   ([`ServerStats::tls_handshake_errors`](crate::ServerStats::tls_handshake_errors))
//!   and closes that connection only. Mutual TLS is the acceptor's
//!   configuration: [`TlsServerConfig::client_ca_pem_file`](seastar_net::tls::TlsServerConfig::client_ca_pem_file).
//! - **Native client:** [`ClientOptions::tls`](crate::ClientOptions::tls)
//!   with a connector and the name the server's certificate must carry
//!   (sent as SNI); reconnections handshake again (resuming when the
//!   server issued a ticket).
//! - **gRPC** (feature `grpc`): [`GrpcOptions::tls`](crate::grpc::GrpcOptions::tls)
//!   and [`GrpcChannel::connect_tls`](crate::grpc::GrpcChannel::connect_tls);
//!   ALPN `h2` is set on both sides (a configuration with another ALPN
//!   list gets `h2` instead), so any gRPC client with TLS credentials
//!   (tonic, grpcio, grpcurl) connects.
//!
//! A native TLS connection's reader and writer are two tasks sharing one
//! session (`conn::tls`); the server holds a second descriptor of each TLS
//! connection's socket, so that a stop can shut its read side as it does
//! a plain connection's.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use seastar_net::TcpStream;
#[cfg(feature = "grpc")]
use seastar_net::tls::rustls;
pub use seastar_net::tls::{TlsAcceptor, TlsConnector, TlsError};

/// The client side of TLS: the connector and the name the server's
/// certificate must carry (a DNS name, sent as SNI, or an IP address).
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// Makes the sessions (its configuration: trusted roots, a client
    /// certificate for mutual TLS).
    pub connector: TlsConnector,
    /// The server's name as its certificate gives it.
    pub server_name: String,
}

impl ClientTls {
    /// `connector` to a server whose certificate names `server_name`.
    pub fn new(connector: TlsConnector, server_name: impl Into<String>) -> ClientTls {
        ClientTls {
            connector,
            server_name: server_name.into(),
        }
    }
}

/// A second descriptor of `conn`'s socket, as a stream of its own, for the
/// server's [`Connections`](seastar_net::Connections): a stop shuts the
/// socket's read side through it (the session owns the first).
pub(crate) fn shadow(conn: &TcpStream) -> io::Result<TcpStream> {
    // SAFETY: `fcntl` with `F_DUPFD_CLOEXEC` only reads `conn`'s descriptor,
    // which `conn` keeps open for the duration of the call.
    let fd = unsafe { libc::fcntl(conn.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor just made for us: valid, and owned by
    // nothing else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    TcpStream::from_std(std::net::TcpStream::from(owned))
}

/// `config` with ALPN exactly `h2` (a copy if it had another list).
#[cfg_attr(not(feature = "grpc"), allow(dead_code))]
pub(crate) fn with_h2<C: Clone>(
    config: &Arc<C>,
    alpn: impl Fn(&mut C) -> &mut Vec<Vec<u8>>,
) -> Arc<C> {
    let mut copy = (**config).clone();
    let list = alpn(&mut copy);
    if *list == [b"h2".to_vec()] {
        return config.clone();
    }
    *list = vec![b"h2".to_vec()];
    Arc::new(copy)
}

/// An acceptor for gRPC: `acceptor`'s configuration with ALPN `h2`.
#[cfg(feature = "grpc")]
pub(crate) fn grpc_acceptor(acceptor: &TlsAcceptor) -> TlsAcceptor {
    let config = with_h2(acceptor.config(), |c: &mut rustls::ServerConfig| {
        &mut c.alpn_protocols
    });
    TlsAcceptor::new(config)
}

/// A connector for gRPC: `connector`'s configuration with ALPN `h2`.
#[cfg(feature = "grpc")]
pub(crate) fn grpc_connector(connector: &TlsConnector) -> TlsConnector {
    let config = with_h2(connector.config(), |c: &mut rustls::ClientConfig| {
        &mut c.alpn_protocols
    });
    TlsConnector::new(config)
}
