//! Shared by the TLS fuzz targets: configurations (a certificate made at
//! start-up, no key material on disk) and the input format.

use std::sync::{Arc, OnceLock};

use seastar_net::tls::fuzzing::Session;
use seastar_net::tls::rustls::{ClientConfig, ServerConfig};
use seastar_net::tls::{TlsClientConfig, TlsServerConfig};

struct Configs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn configs() -> &'static Configs {
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

/// Runs the input through `s`: the input is a sequence of operations, each
/// a tag byte then (for receives) a 2-byte length and that many bytes:
/// 0..=0xEF receive, 0xF0..=0xF7 write plaintext, 0xF8..=0xFB close,
/// 0xFC..=0xFF the peer closes. Nothing may panic; the plaintext bound is
/// asserted inside `Session::receive`.
pub fn run(mut s: Session, mut data: &[u8]) {
    while let Some((&tag, rest)) = data.split_first() {
        data = rest;
        match tag {
            0..=0xEF => {
                let len = match data {
                    [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
                    _ => data.len(),
                };
                data = data.get(2..).unwrap_or(&[]);
                let (chunk, rest) = data.split_at(len.min(data.len()));
                data = rest;
                s.receive(chunk);
            }
            0xF0..=0xF7 => {
                let _ = s.write(&[tag; 100]);
            }
            0xF8..=0xFB => s.close(),
            _ => {
                s.receive(&[]);
            }
        }
    }
    s.receive(&[]);
}
