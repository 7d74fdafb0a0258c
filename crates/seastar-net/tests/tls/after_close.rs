//! Bytes a peer sends after our `close_notify`: the first findings of the
//! `tls_server` and `tls_client` fuzz targets. rustls 0.23 asserts (in
//! debug builds) that no fatal alert follows its own `close_notify`, so a
//! bad record processed after our shutdown panicked the reading task; the
//! session now processes nothing after its `close_notify`.

use crate::support::*;

/// What the peer sent after our close in the `tls_server` finding
/// (`crash-ecc9f61e…`): a record header with content type 0xff.
const SERVER_FINDING: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0xfa, 0xfa, 0xfa, 0xfa,
    0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x29, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa,
    0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x89, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa,
    0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x90, 0x00, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa,
    0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa,
    0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x0a, 0x05, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x06, 0x40, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c, 0x00,
    0x02, 0x00, 0x00, 0x3b, 0x00, 0x00, 0x00, 0x01, 0x16, 0x02, 0x02, 0x00, 0x03, 0x01,
];

/// What the peer sent after our close in the `tls_client` finding
/// (`crash-89f58957…`): a record header with content type 0.
const CLIENT_FINDING: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00,
    0x20, 0x00, 0x01, 0x40, 0x00, 0x40, 0x01, 0x26, 0xda, 0x0a, 0x00, 0x00, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x21, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0x26, 0xc9, 0x0a, 0x00, 0x00, 0x07, 0x00, 0x0d,
    0x0b, 0xb8, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x01, 0x00, 0x00,
];

/// A well-formed application-data record that does not decrypt.
fn forged_record() -> Vec<u8> {
    let mut r = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    r.extend_from_slice(&[0xaa; 0x20]);
    r
}

/// One side shuts its session down (`close_notify`), the other answers on
/// the raw socket with `junk` and a FIN: the closed side's read ends with a
/// clean end of stream, and the shard goes on serving.
fn junk_after_close(junk: Vec<u8>, server_closes: bool) {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            acceptor.accept(tcp).await.unwrap()
        });
        let client = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        let server = server.await.unwrap();
        let (mut closer, mut peer) = if server_closes {
            (server, client)
        } else {
            (client, server)
        };
        closer.write_all(b"last words".to_vec()).await.0.unwrap();
        closer.shutdown().await.unwrap();
        let reader = spawn_local(async move {
            let (n, _) = closer.read(Vec::with_capacity(64)).await;
            n
        });
        // The peer reads the plaintext and the clean end, then sends junk
        // where its close_notify would go.
        let (n, b) = peer.read(Vec::with_capacity(64)).await;
        assert_eq!(&b[..n.unwrap()], b"last words");
        let (n, _) = peer.read(Vec::with_capacity(64)).await;
        assert_eq!(n.unwrap(), 0);
        peer.get_ref().write_all(junk).await.0.unwrap();
        peer.get_ref().shutdown(Shutdown::Write).unwrap();
        let n = reader
            .await
            .expect("the closed side's reader ends without a panic");
        assert_eq!(
            n.unwrap(),
            0,
            "the peer's bytes after our close are dropped"
        );
    });
}

#[test]
fn the_server_finding_after_a_server_close_ends_cleanly() {
    junk_after_close(SERVER_FINDING.to_vec(), true);
}

#[test]
fn the_client_finding_after_a_client_close_ends_cleanly() {
    junk_after_close(CLIENT_FINDING.to_vec(), false);
}

#[test]
fn a_forged_record_after_either_close_ends_cleanly() {
    junk_after_close(forged_record(), true);
    junk_after_close(forged_record(), false);
}
