//! A real client's TLS 1.3 records, delivered in pieces of any size,
//! tampered with or not, through an offloaded server session (seastar-net's
//! record layer after the handshake, `tls::fuzzing_offload::Offloaded`):
//! no panic, the bytes kept for an incomplete record stay bounded, and an
//! untampered stream reads back exactly what the client wrote.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use seastar_net::tls::fuzzing_offload::Offloaded;
use seastar_net::tls::rustls::{ClientConfig, ServerConfig};
use seastar_net::tls::{TlsClientConfig, TlsServerConfig};
use std::sync::Arc;

fn configs() -> &'static (Arc<ServerConfig>, Arc<ClientConfig>) {
    static CONFIGS: OnceLock<(Arc<ServerConfig>, Arc<ClientConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
        let server = TlsServerConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let client = TlsClientConfig::new()
            .root_pem(cert_pem.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        (server, client)
    })
}

fuzz_target!(|data: &[u8]| {
    let (server, client) = configs();
    let mut pair = Offloaded::new(server.clone(), client.clone()).expect("TLS 1.3 offloaded");
    pair.run(data);
});
