//! `https://` for the client (feature `tls`): the default configuration
//! (Mozilla's roots from `webpki-roots`, ALPN), the handshake, and its
//! errors as [`ClientError`]s.

use std::sync::{Arc, OnceLock};

use seastar_net::TcpStream;
use seastar_net::tls::rustls::{self, ClientConfig, RootCertStore};
use seastar_net::tls::{TlsClientConfig, TlsConnector, TlsError};

use super::ClientError;
use super::conn::Sender;

/// The ALPN protocols offered, preferred first.
fn alpn() -> Vec<Vec<u8>> {
    let mut p = Vec::with_capacity(2);
    if cfg!(feature = "http2") {
        p.push(b"h2".to_vec());
    }
    p.push(b"http/1.1".to_vec());
    p
}

/// The default configuration, one for the process (so every shard's
/// client shares the session cache): Mozilla's roots, no client
/// certificate, our ALPN.
fn default_config() -> Arc<ClientConfig> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            TlsClientConfig::new()
                .roots(roots)
                .alpn(alpn())
                .build()
                .expect("the default TLS client configuration builds")
        })
        .clone()
}

/// The connector for a client: its own configuration (with our ALPN if it
/// set none) or the default one.
pub(super) fn connector(given: Option<&Arc<ClientConfig>>) -> TlsConnector {
    let config = match given {
        None => default_config(),
        Some(c) if !c.alpn_protocols.is_empty() => c.clone(),
        Some(c) => {
            let mut c = (**c).clone();
            c.alpn_protocols = alpn();
            Arc::new(c)
        }
    };
    TlsConnector::new(config)
}

/// The handshake over `tcp`, then HTTP/2 or HTTP/1.1 as ALPN chose (no
/// ALPN: HTTP/1.1).
pub(super) async fn connect(
    connector: &TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<Sender, ClientError> {
    let stream = connector
        .connect(host, tcp)
        .await
        .map_err(|e| error(host, e))?;
    #[cfg(feature = "http2")]
    if stream.alpn_protocol() == Some(b"h2") {
        return super::conn::http2(stream).await;
    }
    super::conn::http1(stream).await
}

/// A handshake error as the client reports it: a certificate that did not
/// verify gets its own variant.
fn error(host: &str, e: TlsError) -> ClientError {
    match e {
        TlsError::Handshake(rustls::Error::InvalidCertificate(error)) => ClientError::Certificate {
            host: host.to_owned(),
            error,
        },
        source => ClientError::Tls {
            host: host.to_owned(),
            source,
        },
    }
}
