//! Record offload: a TLS 1.3 server session's records leave rustls after
//! the handshake; TLS 1.2, the client side and `record_offload(false)`
//! stay in rustls; a client's `KeyUpdate` ends an offloaded session with
//! an alert.

use std::io::{Read, Write};

use crate::support::*;

/// Serves `n` connections with an echo; whether each was offloaded.
fn serve_offload(l: TcpListener, acceptor: TlsAcceptor, n: usize) -> JoinHandle<Vec<bool>> {
    spawn_local(async move {
        let mut out = Vec::new();
        for _ in 0..n {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            echo(&mut tls).await.unwrap();
            assert!(tls.protocol_version().is_some(), "kept after the move");
            out.push(tls.is_record_offloaded());
        }
        out
    })
}

#[test]
fn tls13_server_sessions_move_out_of_rustls_and_echo_any_size() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().alpn(["x"]).build().unwrap());
    let connector = TlsConnector::new(pki.client().alpn(["x"]).build().unwrap());
    let tls12 = tls12_client(&pki);
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve_offload(l, acceptor, 4);
        for len in [1, 16_384, 16_385, 300_000] {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let client = if len == 16_385 { &tls12 } else { &connector };
            let mut tls = client.connect("localhost", tcp).await.unwrap();
            assert!(!tls.is_record_offloaded(), "clients stay in rustls");
            ping(&mut tls, &pattern(len)).await;
        }
        // TLS 1.2 (the third) stays in rustls.
        assert_eq!(server.await.unwrap(), [true, true, false, true]);
    });
}

#[test]
fn record_offload_off_keeps_rustls() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().record_offload(false).build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve_offload(l, acceptor, 1);
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector.connect("localhost", tcp).await.unwrap();
        ping(&mut tls, b"hello").await;
        assert_eq!(server.await.unwrap(), [false]);
    });
}

/// A blocking rustls client: a ping, then a `KeyUpdate` and another
/// message; what its last read got.
fn key_update_client(config: Arc<ClientConfig>, addr: SocketAddr) -> std::io::Result<usize> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"ping").unwrap();
    let mut b = [0; 4];
    tls.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
    tls.conn.refresh_traffic_keys().unwrap();
    tls.write_all(b"more").unwrap();
    tls.flush().unwrap();
    tls.read(&mut b)
}

#[test]
fn a_key_update_ends_an_offloaded_session_with_an_alert() {
    let pki = pki();
    let client_config = pki.client().build().unwrap();
    for offload in [true, false] {
        let acceptor = TlsAcceptor::new(pki.server().record_offload(offload).build().unwrap());
        let client_config = client_config.clone();
        rt(1).run(async move {
            let (l, addr) = listen().await;
            let server = spawn_local(async move {
                let (tcp, _) = l.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                echo(&mut tls).await
            });
            // The client blocks its own thread; the shard keeps serving.
            let (tx, rx) = futures::channel::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(key_update_client(client_config, addr));
            });
            let served = server.await.unwrap();
            let got = rx.await.unwrap();
            if offload {
                let e = served.unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e:?}");
                let e = got.unwrap_err();
                let alert = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
                assert_eq!(
                    alert,
                    Some(&rustls::Error::AlertReceived(
                        AlertDescription::UnexpectedMessage
                    )),
                    "{e:?}"
                );
            } else {
                // rustls takes the key update: the echo goes on.
                assert_eq!(got.unwrap(), 4);
            }
        });
    }
}
