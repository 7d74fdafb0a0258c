//! [`TlsServerConfig`] and [`TlsClientConfig`]: rustls configurations from
//! PEM files, on the `ring` provider.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::{TlsError, pem};

/// The crypto provider every configuration of this module uses: `ring`
/// (see the [module docs](super) for why).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    // Deprecated since rustls 0.23.48 for lacking post-quantum key exchange
    // (X25519MLKEM768, which only aws-lc-rs has): a deliberate trade, see
    // the module docs.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    // rustls 0.23.48 lists P-384 first for `ring`, whose P-384 has no fast
    // path: a handshake then costs about four times its X25519 price. The
    // order nginx and OpenSSL use: X25519, then P-256, then P-384.
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    Arc::new(provider)
}

static TLS13_AND_12: [&SupportedProtocolVersion; 2] = [&TLS13, &TLS12];
static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&TLS13];

fn versions(tls12: bool) -> &'static [&'static SupportedProtocolVersion] {
    if tls12 { &TLS13_AND_12 } else { &TLS13_ONLY }
}

fn alpn_list<I, P>(protocols: I) -> Vec<Vec<u8>>
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    protocols.into_iter().map(|p| p.as_ref().to_vec()).collect()
}

/// A server configuration: certificate chain and key, optionally the CAs
/// whose client certificates are accepted (mutual TLS), ALPN protocols and
/// session tickets. [`build`](Self::build) makes the `Arc<ServerConfig>` a
/// [`TlsAcceptor`](super::TlsAcceptor) takes.
///
/// TLS 1.3 and 1.2 are on; session tickets (rustls' rotating `Ticketer`)
/// are on, so a client that comes back resumes without a full handshake.
///
/// ```no_run
/// use seastar_net::tls::{TlsAcceptor, TlsServerConfig};
///
/// let config = TlsServerConfig::from_pem_files("cert.pem", "key.pem")?
///     .client_ca_pem_file("clients-ca.pem")? // mutual TLS
///     .alpn(["h2", "http/1.1"])
///     .build()?;
/// let acceptor = TlsAcceptor::new(config);
/// # Ok::<(), seastar_net::tls::TlsError>(())
/// ```
pub struct TlsServerConfig {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<RootCertStore>,
    client_auth_optional: bool,
    alpn: Vec<Vec<u8>>,
    tickets: bool,
    tls12: bool,
    offload: bool,
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfig")
            .field("certs", &self.certs.len())
            .field("client_ca", &self.client_ca.as_ref().map(|r| r.len()))
            .field("client_auth_optional", &self.client_auth_optional)
            .field("alpn", &self.alpn)
            .field("tickets", &self.tickets)
            .field("tls12", &self.tls12)
            .field("record_offload", &self.offload)
            .finish_non_exhaustive()
    }
}

impl TlsServerConfig {
    /// The certificate chain (leaf first) and private key from PEM files
    /// (read with blocking calls: build configurations at start-up).
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsServerConfig, TlsError> {
        let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
        Ok(TlsServerConfig::new(
            pem::certs(&pem::read_file(cert_chain)?, &pem::describe(cert_chain))?,
            pem::key(&pem::read_file(key)?, &pem::describe(key))?,
        ))
    }

    /// The certificate chain (leaf first) and private key from PEM text.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<TlsServerConfig, TlsError> {
        Ok(TlsServerConfig::new(
            pem::certs(cert_chain, "certificate chain PEM")?,
            pem::key(key, "private key PEM")?,
        ))
    }

    /// The certificate chain (leaf first) and private key, already parsed.
    pub fn new(
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> TlsServerConfig {
        TlsServerConfig {
            certs: cert_chain,
            key,
            client_ca: None,
            client_auth_optional: false,
            alpn: Vec::new(),
            tickets: true,
            tls12: true,
            offload: true,
        }
    }

    /// Requires a client certificate issued by one of the CAs in this PEM
    /// file (mutual TLS); may be called again to add more CAs.
    pub fn client_ca_pem_file(self, path: impl AsRef<Path>) -> Result<TlsServerConfig, TlsError> {
        let path = path.as_ref();
        self.add_client_ca(&pem::read_file(path)?, &pem::describe(path))
    }

    /// As [`client_ca_pem_file`](Self::client_ca_pem_file), from PEM text.
    pub fn client_ca_pem(self, pem: &[u8]) -> Result<TlsServerConfig, TlsError> {
        self.add_client_ca(pem, "client CA PEM")
    }

    fn add_client_ca(mut self, text: &[u8], what: &str) -> Result<TlsServerConfig, TlsError> {
        let store = self.client_ca.get_or_insert_with(RootCertStore::empty);
        pem::add_roots(store, text, what)?;
        Ok(self)
    }

    /// With client CAs set: also accept clients that send no certificate
    /// (a certificate they do send must still verify). Default: required.
    pub fn client_auth_optional(mut self, optional: bool) -> TlsServerConfig {
        self.client_auth_optional = optional;
        self
    }

    /// The ALPN protocols offered, most preferred first: the server picks
    /// the first of these the client also offers (e.g. `["h2",
    /// "http/1.1"]`). A client offering none of them fails the handshake
    /// (`NoApplicationProtocol`); one offering no ALPN at all is served.
    pub fn alpn<I, P>(mut self, protocols: I) -> TlsServerConfig
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        self.alpn = alpn_list(protocols);
        self
    }

    /// Issues session tickets (TLS 1.3 resumption and TLS 1.2 tickets),
    /// encrypted with rustls' `Ticketer` whose key rotates every 6 hours.
    /// Default: on.
    pub fn session_tickets(mut self, on: bool) -> TlsServerConfig {
        self.tickets = on;
        self
    }

    /// Also speaks TLS 1.2 (default: on); off, only TLS 1.3.
    pub fn tls12(mut self, on: bool) -> TlsServerConfig {
        self.tls12 = on;
        self
    }

    /// Record offload (default: on): once a TLS 1.3 session's handshake is
    /// done, its records are sealed and opened by the stream itself with
    /// the keys rustls negotiated, without rustls' buffering (about 2,000
    /// fewer instructions per small request and response). The price: a
    /// peer's `KeyUpdate` then ends the session with an alert, and a
    /// session stops after 2^24 records sent with AES-GCM instead of
    /// updating its keys. Off, rustls runs every record. Sets rustls'
    /// `enable_secret_extraction`, which is what
    /// [`TlsAcceptor`](super::TlsAcceptor) looks at: a configuration built
    /// elsewhere gets offload by setting it.
    pub fn record_offload(mut self, on: bool) -> TlsServerConfig {
        self.offload = on;
        self
    }

    /// The rustls configuration, to share (one `Arc`) among every shard's
    /// acceptor so that a ticket issued on one shard resumes on another.
    pub fn build(self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = crypto_provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions(self.tls12))
            .map_err(|e| TlsError::config("protocol versions", e))?;
        let builder = match self.client_ca {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if self.client_auth_optional {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::config("client certificate verifier", e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(self.certs, self.key)
            .map_err(|e| TlsError::config("certificate and key", e))?;
        config.alpn_protocols = self.alpn;
        config.enable_secret_extraction = self.offload;
        if self.tickets {
            config.ticketer = rustls::crypto::ring::Ticketer::new()
                .map_err(|e| TlsError::config("session tickets", e))?;
        }
        Ok(Arc::new(config))
    }
}

/// A client configuration: the CAs trusted to sign servers' certificates,
/// optionally a client certificate (mutual TLS), ALPN protocols.
/// [`build`](Self::build) makes the `Arc<ClientConfig>` a
/// [`TlsConnector`](super::TlsConnector) takes.
///
/// Sessions are cached (in memory, 256 servers) so that a second connection
/// to a server resumes; share the built `Arc` among shards to share it.
///
/// ```no_run
/// use seastar_net::tls::{TlsClientConfig, TlsConnector};
///
/// let config = TlsClientConfig::new()
///     .root_pem_file("ca.pem")?
///     .alpn(["h2", "http/1.1"])
///     .build()?;
/// let connector = TlsConnector::new(config);
/// # Ok::<(), seastar_net::tls::TlsError>(())
/// ```
pub struct TlsClientConfig {
    roots: RootCertStore,
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: Vec<Vec<u8>>,
    resumption: bool,
    tls12: bool,
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("roots", &self.roots.len())
            .field("client_auth", &self.client_auth.is_some())
            .field("alpn", &self.alpn)
            .field("resumption", &self.resumption)
            .field("tls12", &self.tls12)
            .finish()
    }
}

impl Default for TlsClientConfig {
    fn default() -> Self {
        TlsClientConfig::new()
    }
}

impl TlsClientConfig {
    /// No trusted roots yet (add some: a server cannot verify without),
    /// no client certificate, no ALPN, resumption on, TLS 1.3 and 1.2.
    pub fn new() -> TlsClientConfig {
        TlsClientConfig {
            roots: RootCertStore::empty(),
            client_auth: None,
            alpn: Vec::new(),
            resumption: true,
            tls12: true,
        }
    }

    /// Trusts every CA certificate in this PEM file (blocking read).
    pub fn root_pem_file(self, path: impl AsRef<Path>) -> Result<TlsClientConfig, TlsError> {
        let path = path.as_ref();
        self.add_roots(&pem::read_file(path)?, &pem::describe(path))
    }

    /// Trusts every CA certificate in this PEM text.
    pub fn root_pem(self, pem: &[u8]) -> Result<TlsClientConfig, TlsError> {
        self.add_roots(pem, "root CA PEM")
    }

    fn add_roots(mut self, text: &[u8], what: &str) -> Result<TlsClientConfig, TlsError> {
        pem::add_roots(&mut self.roots, text, what)?;
        Ok(self)
    }

    /// Trusts these roots too (e.g. the system's, loaded by the caller).
    pub fn roots(mut self, roots: RootCertStore) -> TlsClientConfig {
        self.roots.roots.extend(roots.roots);
        self
    }

    /// Presents this certificate chain and key when the server asks
    /// (mutual TLS), from PEM files (blocking reads).
    pub fn client_auth_pem_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsClientConfig, TlsError> {
        let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
        self.client_auth_pem(&pem::read_file(cert_chain)?, &pem::read_file(key)?)
    }

    /// As [`client_auth_pem_files`](Self::client_auth_pem_files), from PEM text.
    pub fn client_auth_pem(
        mut self,
        cert_chain: &[u8],
        key: &[u8],
    ) -> Result<TlsClientConfig, TlsError> {
        self.client_auth = Some((
            pem::certs(cert_chain, "client certificate PEM")?,
            pem::key(key, "client key PEM")?,
        ));
        Ok(self)
    }

    /// The ALPN protocols offered, in the client's order of preference
    /// (the server chooses).
    pub fn alpn<I, P>(mut self, protocols: I) -> TlsClientConfig
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        self.alpn = alpn_list(protocols);
        self
    }

    /// Caches sessions to resume them (default: on).
    pub fn resumption(mut self, on: bool) -> TlsClientConfig {
        self.resumption = on;
        self
    }

    /// Also speaks TLS 1.2 (default: on); off, only TLS 1.3.
    pub fn tls12(mut self, on: bool) -> TlsClientConfig {
        self.tls12 = on;
        self
    }

    /// The rustls configuration, to share (one `Arc`) among shards.
    pub fn build(self) -> Result<Arc<ClientConfig>, TlsError> {
        let builder = ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(versions(self.tls12))
            .map_err(|e| TlsError::config("protocol versions", e))?
            .with_root_certificates(self.roots);
        let mut config = match self.client_auth {
            None => builder.with_no_client_auth(),
            Some((certs, key)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TlsError::config("client certificate and key", e))?,
        };
        config.alpn_protocols = self.alpn;
        if !self.resumption {
            config.resumption = Resumption::disabled();
        }
        Ok(Arc::new(config))
    }
}
