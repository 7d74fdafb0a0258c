//! [`TlsAcceptor`] and [`TlsConnector`]: a handshake over a [`TcpStream`],
//! run by the calling task on its shard, bounded by a timeout.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::{TlsError, TlsStream};
use crate::TcpStream;

/// The handshake timeout unless set: a client that has not finished its
/// handshake by then is dropped.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn handshake(
    tcp: TcpStream,
    conn: Connection,
    offload: bool,
    timeout: Duration,
) -> Result<TlsStream, TlsError> {
    let mut stream = TlsStream::new(tcp, conn, offload);
    let done = seastar_core::timer::timeout(timeout, poll_fn(|cx| stream.poll_handshake(cx)));
    match done.await {
        Ok(Ok(())) => Ok(stream),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(TlsError::Timeout(timeout)),
    }
}

/// Sets up server sessions: [`accept`](Self::accept) runs the handshake
/// over an accepted connection. Cheap to clone (an `Arc`): give each
/// shard's accept loop its own clone of one acceptor.
///
/// ```no_run
/// use seastar_net::tls::{TlsAcceptor, TlsServerConfig};
/// use seastar_net::{ListenOptions, TcpListener};
///
/// # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
/// let acceptor = TlsAcceptor::new(TlsServerConfig::from_pem_files("cert.pem", "key.pem")?.build()?);
/// let listener = TcpListener::bind("0.0.0.0:8443".parse()?, ListenOptions::default()).await?;
/// loop {
///     let (tcp, _peer) = listener.accept().await?;
///     let acceptor = acceptor.clone();
///     seastar_core::spawn_local(async move {
///         let Ok(mut tls) = acceptor.accept(tcp).await else { return };
///         let (n, buf) = tls.read(Vec::with_capacity(4096)).await;
///         if n.is_ok() {
///             let _ = tls.write_all(buf).await;
///             let _ = tls.shutdown().await;
///         }
///     })
///     .detach();
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    timeout: Duration,
}

impl From<Arc<ServerConfig>> for TlsAcceptor {
    fn from(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor::new(config)
    }
}

impl TlsAcceptor {
    /// An acceptor with this configuration (see
    /// [`TlsServerConfig`](super::TlsServerConfig)) and the
    /// [default handshake timeout](DEFAULT_HANDSHAKE_TIMEOUT).
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Gives up a handshake not finished after `timeout` (on the shard's
    /// timer: a silent or slow client holds its connection no longer).
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.timeout = timeout;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the server side of the handshake over `tcp`. On failure the
    /// connection is closed (after rustls' alert, when it has one).
    pub async fn accept(&self, tcp: TcpStream) -> Result<TlsStream, TlsError> {
        let conn = ServerConnection::new(self.config.clone()).map_err(TlsError::Handshake)?;
        // Secret extraction allowed: the records may leave rustls after
        // the handshake (TlsServerConfig::record_offload).
        let offload = self.config.enable_secret_extraction;
        handshake(tcp, Connection::Server(conn), offload, self.timeout).await
    }
}

/// Sets up client sessions: [`connect`](Self::connect) runs the handshake
/// over a connected socket. Cheap to clone (an `Arc`); clones share the
/// session cache, so a second connection to a server resumes.
///
/// ```no_run
/// use seastar_net::TcpStream;
/// use seastar_net::tls::{TlsClientConfig, TlsConnector};
///
/// # async fn get() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = TlsConnector::new(TlsClientConfig::new().root_pem_file("ca.pem")?.build()?);
/// let tcp = TcpStream::connect("127.0.0.1:8443".parse()?).await?;
/// let mut tls = connector.connect("localhost", tcp).await?;
/// tls.write_all(b"ping".to_vec()).await.0?;
/// let (n, buf) = tls.read(Vec::with_capacity(64)).await;
/// println!("{:?}", &buf[..n?]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    timeout: Duration,
}

impl From<Arc<ClientConfig>> for TlsConnector {
    fn from(config: Arc<ClientConfig>) -> Self {
        TlsConnector::new(config)
    }
}

impl TlsConnector {
    /// A connector with this configuration (see
    /// [`TlsClientConfig`](super::TlsClientConfig)) and the
    /// [default handshake timeout](DEFAULT_HANDSHAKE_TIMEOUT).
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Gives up a handshake not finished after `timeout`.
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsConnector {
        self.timeout = timeout;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the client side of the handshake over `tcp`: `server_name` (a
    /// DNS name, sent as SNI, or an IP address) is what the server's
    /// certificate must name. With TLS 1.3 the server checks a client
    /// certificate after this returns: a rejection shows as an error on
    /// the first read.
    pub async fn connect(&self, server_name: &str, tcp: TcpStream) -> Result<TlsStream, TlsError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::ServerName(server_name.to_owned()))?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(TlsError::Handshake)?;
        handshake(tcp, Connection::Client(conn), false, self.timeout).await
    }
}
