//! Sessions between our client and our server: round trips, ALPN, SNI,
//! mutual TLS, resumption, TLS 1.2, PEM files and their errors.

use crate::support::*;

#[test]
fn round_trip_large_and_small_messages() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 2);
        for len in [1, 300_000] {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut tls = connector.connect("localhost", tcp).await.unwrap();
            assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_3));
            assert_eq!(tls.alpn_protocol(), None);
            // X25519 first (P-384, rustls' first pick for ring, is 4x slower).
            let kx = tls
                .session()
                .unwrap()
                .negotiated_key_exchange_group()
                .unwrap();
            assert_eq!(kx.name(), rustls::NamedGroup::X25519);
            assert_eq!(tls.peer_certificates().unwrap()[0], der(&pki.server_cert));
            ping(&mut tls, &pattern(len)).await;
        }
        for seen in server.await.unwrap() {
            let seen = seen.unwrap();
            assert_eq!(seen.sni.as_deref(), Some("localhost"));
            assert_eq!(seen.peer_cert, None);
            assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_3));
        }
    });
}

#[test]
fn alpn_picks_h2_over_http1_when_both_are_offered() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().alpn(["h2", "http/1.1"]).build().unwrap());
    let both = TlsConnector::new(pki.client().alpn(["http/1.1", "h2"]).build().unwrap());
    let http1 = TlsConnector::new(pki.client().alpn(["http/1.1"]).build().unwrap());
    let neither = TlsConnector::new(pki.client().alpn(["spdy/3"]).build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 3);
        let mut tls = both
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
        ping(&mut tls, b"x").await;
        let mut tls = http1
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        ping(&mut tls, b"x").await;
        // No protocol in common: the server refuses with an alert.
        let err = neither
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Handshake(rustls::Error::AlertReceived(
                    AlertDescription::NoApplicationProtocol
                ))
            ),
            "{err:?}"
        );
        let seen = server.await.unwrap();
        assert_eq!(seen[0].as_ref().unwrap().alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(
            seen[1].as_ref().unwrap().alpn.as_deref(),
            Some(&b"http/1.1"[..])
        );
        assert!(
            matches!(
                seen[2],
                Err(TlsError::Handshake(rustls::Error::NoApplicationProtocol))
            ),
            "{:?}",
            seen[2]
        );
    });
}

#[test]
fn server_sees_the_name_the_client_asked_for() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 2);
        let mut tls = connector
            .connect("tls.test", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert_eq!(tls.server_name(), None); // client side
        ping(&mut tls, b"sni").await;
        // A name the certificate does not hold fails on the client.
        let err = connector
            .connect("other.test", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Handshake(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{err:?}"
        );
        let seen = server.await.unwrap();
        assert_eq!(seen[0].as_ref().unwrap().sni.as_deref(), Some("tls.test"));
        // The server learns of the refusal from the client's alert.
        assert!(
            matches!(
                seen[1],
                Err(TlsError::Handshake(rustls::Error::AlertReceived(
                    AlertDescription::BadCertificate
                )))
            ),
            "{:?}",
            seen[1]
        );
        // Not a name at all: refused before the handshake starts.
        let (_l, addr) = listen().await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        assert!(matches!(
            connector.connect("not a name!", tcp).await,
            Err(TlsError::ServerName(_))
        ));
    });
}

#[test]
fn mutual_tls_accepts_a_good_client_certificate_and_rejects_others() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(
        pki.server()
            .client_ca_pem(pki.ca.as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let good = TlsConnector::new(
        pki.client()
            .client_auth_pem(pki.client_cert.as_bytes(), pki.client_key.as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let rogue = TlsConnector::new(
        pki.client()
            .client_auth_pem(pki.rogue_cert.as_bytes(), pki.rogue_key.as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let anonymous = TlsConnector::new(pki.client().build().unwrap());
    let client_der = der(&pki.client_cert).to_vec();
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 4);
        let mut tls = good
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        ping(&mut tls, b"trusted").await;
        for bad in [&rogue, &anonymous] {
            // TLS 1.3: the client is done before the server checks its
            // certificate; the refusal arrives as an alert on the first read.
            let mut tls = bad
                .connect("localhost", TcpStream::connect(addr).await.unwrap())
                .await
                .unwrap();
            let _ = tls.write_all(b"let me in".to_vec()).await;
            let (n, _) = tls.read(Vec::with_capacity(64)).await;
            let err = n.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err:?}");
            let inner = err.get_ref().unwrap().downcast_ref::<rustls::Error>();
            assert!(
                matches!(inner, Some(rustls::Error::AlertReceived(_))),
                "{inner:?}"
            );
        }
        // And the server still serves a trusted client after the refusals.
        let mut tls = good
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        ping(&mut tls, b"trusted again").await;
        let seen = server.await.unwrap();
        assert_eq!(
            seen[0].as_ref().unwrap().peer_cert.as_ref(),
            Some(&client_der)
        );
        assert!(
            matches!(
                seen[1],
                Err(TlsError::Handshake(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                )))
            ),
            "{:?}",
            seen[1]
        );
        assert!(
            matches!(
                seen[2],
                Err(TlsError::Handshake(rustls::Error::NoCertificatesPresented))
            ),
            "{:?}",
            seen[2]
        );
        assert!(seen[3].is_ok());
    });
}

#[test]
fn second_connection_resumes_the_session() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    let no_tickets = TlsAcceptor::new(pki.server().session_tickets(false).build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 3);
        let mut resumed = Vec::new();
        for _ in 0..3 {
            let mut tls = connector
                .connect("localhost", TcpStream::connect(addr).await.unwrap())
                .await
                .unwrap();
            resumed.push(tls.is_resumed());
            // Reading the echo also reads the tickets sent after the handshake.
            ping(&mut tls, b"again").await;
        }
        assert_eq!(resumed, [false, true, true]);
        let seen: Vec<bool> = server
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.unwrap().resumed)
            .collect();
        assert_eq!(seen, [false, true, true]);

        // Without tickets a fresh client gets a full handshake.
        let (l, addr) = listen().await;
        let server = serve(l, no_tickets, 1);
        let fresh = TlsConnector::new(pki.client().build().unwrap());
        let mut tls = fresh
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert!(!tls.is_resumed());
        ping(&mut tls, b"full").await;
        assert!(!server.await.unwrap()[0].as_ref().unwrap().resumed);
    });
}

#[test]
fn tls12_sessions_work_too() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = tls12_client(&pki);
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 2);
        let mut resumed = Vec::new();
        for _ in 0..2 {
            let mut tls = connector
                .connect("localhost", TcpStream::connect(addr).await.unwrap())
                .await
                .unwrap();
            assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_2));
            resumed.push(tls.is_resumed());
            ping(&mut tls, &pattern(40_000)).await;
        }
        assert_eq!(resumed, [false, true]);
        let seen = server.await.unwrap();
        assert_eq!(
            seen[0].as_ref().unwrap().version,
            Some(ProtocolVersion::TLSv1_2)
        );
    });
}

#[test]
fn pem_files_and_their_errors() {
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("seastar-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &pki.server_cert).unwrap();
    std::fs::write(&key, &pki.server_key).unwrap();
    let ok = TlsServerConfig::from_pem_files(&cert, &key).map(|c| c.build());
    assert!(matches!(ok, Ok(Ok(_))), "{ok:?}");

    let missing = TlsServerConfig::from_pem_files(dir.join("nope.pem"), &key).unwrap_err();
    assert!(matches!(missing, TlsError::File { .. }), "{missing:?}");
    assert!(missing.to_string().contains("nope.pem"), "{missing}");

    // A key where the certificate should be: no certificate found.
    let swapped = TlsServerConfig::from_pem_files(&key, &key).unwrap_err();
    assert!(matches!(swapped, TlsError::Pem { .. }), "{swapped:?}");

    // A key that is not the certificate's.
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    let mismatch = TlsServerConfig::from_pem(pki.server_cert.as_bytes(), other_key.as_bytes())
        .unwrap()
        .build()
        .unwrap_err();
    assert!(matches!(mismatch, TlsError::Config { .. }), "{mismatch:?}");

    let garbage = TlsClientConfig::new().root_pem(b"not pem").unwrap_err();
    assert!(matches!(garbage, TlsError::Pem { .. }), "{garbage:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
