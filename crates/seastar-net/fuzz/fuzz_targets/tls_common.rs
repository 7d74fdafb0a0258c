//! Shared by the TLS fuzz targets: configurations (a certificate made at
//! start-up, no key material on disk) and the input format.

#![allow(dead_code)] // each target uses part of this file

use std::sync::{Arc, OnceLock};

use seastar_net::tls::fuzzing::Session;
use seastar_net::tls::rustls::{ClientConfig, ServerConfig};
use seastar_net::tls::{TlsClientConfig, TlsServerConfig};

pub struct Configs {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

/// The server and client configurations, made once.
pub fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
        let server = TlsServerConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())
            .unwrap()
            .alpn(["h2", "http/1.1"])
            .build()
            .unwrap();
        let client = TlsClientConfig::new()
            .root_pem(cert_pem.as_bytes())
            .unwrap()
            .alpn(["http/1.1"])
            .build()
            .unwrap();
        Configs { server, client }
    })
}

/// A server session on the stock server configuration.
pub fn server() -> Session {
    Session::server(configs().server.clone())
}

/// A client session for `localhost`, its ClientHello queued.
pub fn client() -> Session {
    Session::client(configs().client.clone(), "localhost")
}

/// Runs the input through `s` (the format: `Session::run`). Nothing may
/// panic; the plaintext bound is asserted inside `Session::receive`.
pub fn run(mut s: Session, data: &[u8]) {
    s.run(data);
}
