//! The TLS options of `rpc server` and `rpc bench`: PEM files in, rustls
//! acceptors and connectors out (seastar-net's `tls` module).
//!
//! The server's certificate and key serve both ports (native and gRPC,
//! whose ALPN is `h2`); `--tls-client-ca` requires every client to present
//! a certificate issued by one of that file's CAs (mutual TLS).

use std::path::PathBuf;

use seastar_net::tls::{TlsAcceptor, TlsClientConfig, TlsConnector, TlsServerConfig};
use seastar_rpc::tls::ClientTls;

/// `rpc server`'s TLS options.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServerTlsArgs {
    /// Serve both ports over TLS with this certificate chain (PEM, leaf
    /// first); needs `--tls-key`. Without it, no TLS (the default).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM); none by default.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by a CA in this PEM file (mutual
    /// TLS); off by default.
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ServerTlsArgs {
    /// The acceptor, if TLS was asked for; the error names the bad file.
    pub fn acceptor(&self) -> Result<Option<TlsAcceptor>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut config = TlsServerConfig::from_pem_files(cert, key).map_err(|e| e.to_string())?;
        if let Some(ca) = &self.tls_client_ca {
            config = config.client_ca_pem_file(ca).map_err(|e| e.to_string())?;
        }
        let config = config.build().map_err(|e| e.to_string())?;
        Ok(Some(TlsAcceptor::new(config)))
    }
}

/// `rpc bench`'s TLS options.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientTlsArgs {
    /// Connect over TLS, trusting the CAs in this PEM file; without it,
    /// plain TCP (the default).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry (sent as SNI).
    #[arg(long, default_value = "localhost", requires = "tls_ca")]
    pub tls_server_name: String,
    /// Present this client certificate chain (PEM) for mutual TLS; needs
    /// `--tls-client-key`; none by default.
    #[arg(long, requires_all = ["tls_ca", "tls_client_key"])]
    pub tls_client_cert: Option<PathBuf>,
    /// The private key of `--tls-client-cert` (PEM); none by default.
    #[arg(long, requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
}

impl ClientTlsArgs {
    /// The client's TLS settings, if TLS was asked for.
    pub fn client(&self) -> Result<Option<ClientTls>, String> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let mut config = TlsClientConfig::new()
            .root_pem_file(ca)
            .map_err(|e| e.to_string())?;
        if let (Some(cert), Some(key)) = (&self.tls_client_cert, &self.tls_client_key) {
            config = config
                .client_auth_pem_files(cert, key)
                .map_err(|e| e.to_string())?;
        }
        let config = config.build().map_err(|e| e.to_string())?;
        Ok(Some(ClientTls::new(
            TlsConnector::new(config),
            self.tls_server_name.clone(),
        )))
    }
}
