//! [`TlsError`]: what can go wrong configuring TLS or setting up a session.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// An error from building a TLS configuration or from a handshake.
///
/// Errors after the handshake (a bad record, a peer's alert, an unclean
/// close) come from the stream's reads and writes as `io::Error`s, whose
/// inner error is the [`rustls::Error`] when TLS itself failed
/// (`io::ErrorKind::InvalidData`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("reading {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// PEM text could not be parsed, or held nothing of the kind wanted.
    #[error("{what}: {source}")]
    Pem {
        /// What was being parsed (a path or a description).
        what: String,
        /// The parser's complaint (`NoItemsFound` when there was nothing).
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the configuration (e.g. a key that does not match the
    /// certificate, an unsupported key type, a bad CA certificate).
    #[error("TLS configuration ({what}): {source}")]
    Config {
        /// Which part of the configuration.
        what: &'static str,
        /// rustls' reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The name given to [`TlsConnector::connect`](super::TlsConnector::connect)
    /// is neither a DNS name nor an IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// The handshake failed: the peer sent something invalid, an alert, or
    /// a certificate that did not verify.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] rustls::Error),
    /// The handshake did not finish within the handshake timeout.
    #[error("TLS handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed or closed during the handshake
    /// (`UnexpectedEof` when the peer closed it).
    #[error("I/O during the TLS handshake: {0}")]
    Io(#[from] io::Error),
}

impl TlsError {
    pub(crate) fn config(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> TlsError {
        TlsError::Config {
            what,
            source: Box::new(source),
        }
    }
}
