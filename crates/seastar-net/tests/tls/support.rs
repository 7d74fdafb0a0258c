//! Shared by the TLS tests: certificates made at test time, a server
//! that records what it saw, echo and ping helpers.

pub(crate) use std::net::{Shutdown, SocketAddr};
pub(crate) use std::sync::Arc;
pub(crate) use std::time::Duration;

pub(crate) use crate::common::{localhost0, rt};
pub(crate) use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
pub(crate) use seastar_core::{JoinHandle, spawn_local};
pub(crate) use seastar_net::tls::rustls::{self, AlertDescription, ClientConfig, ProtocolVersion};
pub(crate) use seastar_net::tls::{
    TlsAcceptor, TlsClientConfig, TlsConnector, TlsError, TlsServerConfig, TlsStream,
    crypto_provider,
};
pub(crate) use seastar_net::{ListenOptions, TcpListener, TcpStream};

/// A CA, a server certificate it signed (for `localhost` and `tls.test`),
/// a client certificate it signed, and a client certificate signed by
/// another CA (the rogue one).
pub(crate) struct Pki {
    pub(crate) ca: String,
    pub(crate) server_cert: String,
    pub(crate) server_key: String,
    pub(crate) client_cert: String,
    pub(crate) client_key: String,
    pub(crate) rogue_cert: String,
    pub(crate) rogue_key: String,
}

pub(crate) fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

pub(crate) fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &(rcgen::Certificate, KeyPair),
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

pub(crate) fn pki() -> Pki {
    let ca = ca("seastar test CA");
    let rogue = ca_rogue();
    let (server_cert, server_key) = leaf(
        &["localhost", "tls.test"],
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    let (client_cert, client_key) =
        leaf(&["client.test"], ExtendedKeyUsagePurpose::ClientAuth, &ca);
    let (rogue_cert, rogue_key) = leaf(
        &["client.test"],
        ExtendedKeyUsagePurpose::ClientAuth,
        &rogue,
    );
    Pki {
        ca: ca.0.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
        rogue_cert,
        rogue_key,
    }
}

pub(crate) fn ca_rogue() -> (rcgen::Certificate, KeyPair) {
    ca("rogue CA")
}

impl Pki {
    pub(crate) fn server(&self) -> TlsServerConfig {
        TlsServerConfig::from_pem(self.server_cert.as_bytes(), self.server_key.as_bytes()).unwrap()
    }

    pub(crate) fn client(&self) -> TlsClientConfig {
        TlsClientConfig::new().root_pem(self.ca.as_bytes()).unwrap()
    }
}

/// What the server saw of one connection.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) alpn: Option<Vec<u8>>,
    pub(crate) sni: Option<String>,
    pub(crate) resumed: bool,
    pub(crate) peer_cert: Option<Vec<u8>>,
    pub(crate) version: Option<ProtocolVersion>,
}

/// Echoes plaintext until the peer's clean close (then closes cleanly too)
/// or an error, which it returns.
pub(crate) async fn echo(tls: &mut TlsStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let (n, b) = tls.read(buf).await;
        if n? == 0 {
            return tls.shutdown().await;
        }
        let (r, b) = tls.write_all(b).await;
        r?;
        buf = b;
    }
}

/// Serves `n` connections one after the other: a TLS handshake, then an
/// echo; returns what it saw of each (or the handshake's error).
pub(crate) fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    n: usize,
) -> JoinHandle<Vec<Result<Seen, TlsError>>> {
    spawn_local(async move {
        let mut out = Vec::new();
        for _ in 0..n {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Ok(mut tls) => {
                    let seen = Seen {
                        alpn: tls.alpn_protocol().map(<[u8]>::to_vec),
                        sni: tls.server_name().map(str::to_owned),
                        resumed: tls.is_resumed(),
                        peer_cert: tls.peer_certificates().map(|c| c[0].to_vec()),
                        version: tls.protocol_version(),
                    };
                    let _ = echo(&mut tls).await;
                    out.push(Ok(seen));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        out
    })
}

pub(crate) async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind(localhost0(), ListenOptions::default())
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Sends `msg`, reads as many bytes back and checks them; then closes cleanly.
pub(crate) async fn ping(tls: &mut TlsStream, msg: &[u8]) {
    tls.write_all(msg.to_vec()).await.0.unwrap();
    let mut got = Vec::new();
    while got.len() < msg.len() {
        let (n, b) = tls.read(Vec::with_capacity(8192)).await;
        let n = n.unwrap();
        assert_ne!(
            n,
            0,
            "end of stream after {} of {} bytes",
            got.len(),
            msg.len()
        );
        got.extend_from_slice(&b[..n]);
    }
    assert!(got == msg, "echo differs");
    tls.shutdown().await.unwrap();
    // The server answers our close_notify with its own: a clean end.
    let (n, _) = tls.read(Vec::with_capacity(16)).await;
    assert_eq!(n.unwrap(), 0);
}

/// Bytes `i % 251`: a shift or a lost chunk shows.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    let cycle: Vec<u8> = (0..251u8).collect();
    let mut out = cycle.repeat(len / 251 + 1);
    out.truncate(len);
    out
}

/// The first certificate of a PEM text.
pub(crate) fn der(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// A TLS 1.2-only client trusting the test CA.
pub(crate) fn tls12_client(pki: &Pki) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(&pki.ca)).unwrap();
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::new(Arc::new(config))
}

/// Reads everything until end of stream (or a reset).
pub(crate) async fn read_to_end(tcp: &TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (n, b) = tcp.read(Vec::with_capacity(4096)).await;
        match n {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&b[..n]),
        }
        assert!(all.len() < 1 << 20, "the server keeps sending");
    }
}

/// A client hello as rustls would send it.
pub(crate) fn client_hello(config: Arc<ClientConfig>) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}
