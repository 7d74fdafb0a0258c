//! Certificates and keys from PEM text or files.
//!
//! Files are read with blocking calls: configurations are built at start-up,
//! before a shard serves anything.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Reads a whole file (blocking; start-up only).
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in `pem` (at least one), in order.
pub(crate) fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: what.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            source: rustls::pki_types::pem::Error::NoItemsFound,
        });
    }
    Ok(certs)
}

/// The first private key in `pem` (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|source| TlsError::Pem {
        what: what.to_owned(),
        source,
    })
}

/// A root store holding every certificate in `pem`.
pub(crate) fn add_roots(
    store: &mut rustls::RootCertStore,
    pem: &[u8],
    what: &str,
) -> Result<(), TlsError> {
    for cert in certs(pem, what)? {
        store
            .add(cert)
            .map_err(|e| TlsError::config("CA certificate", e))?;
    }
    Ok(())
}

pub(crate) fn describe(path: &Path) -> String {
    path.display().to_string()
}
