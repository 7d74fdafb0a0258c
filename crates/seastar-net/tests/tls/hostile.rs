//! Hostile peers: a silent client (handshake timeout), garbage and
//! truncated records, an unclean close, an unsupported version, and a
//! reader that stops reading.

use crate::support::*;

#[test]
fn handshake_times_out_on_a_silent_client() {
    use seastar_core::timer::ManualClock;
    let pki = pki();
    let acceptor =
        TlsAcceptor::new(pki.server().build().unwrap()).handshake_timeout(Duration::from_secs(5));
    let runtime = seastar_core::Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .manual_clock()
        .build()
        .unwrap();
    runtime.run(async move {
        let (l, addr) = listen().await;
        let (started, mut started_rx) = futures::channel::oneshot::channel::<()>();
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let _ = started.send(());
            acceptor.accept(tcp).await
        });
        let silent = TcpStream::connect(addr).await.unwrap();
        (&mut started_rx).await.unwrap();
        ManualClock::advance(Duration::from_millis(4900)).await;
        for _ in 0..10 {
            seastar_core::yield_now().await;
        }
        assert!(!server.is_finished(), "gave up before the timeout");
        ManualClock::advance(Duration::from_millis(200)).await;
        let res = server.await.unwrap();
        assert!(
            matches!(res, Err(TlsError::Timeout(d)) if d == Duration::from_secs(5)),
            "{res:?}"
        );
        // The connection is closed: the silent client reads end of stream.
        let (n, _) = silent.read(Vec::with_capacity(16)).await;
        assert_eq!(n.unwrap(), 0);
    });
}

#[test]
fn garbage_and_truncated_records_end_in_an_alert_and_a_close() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let client_config = pki.client().build().unwrap();
    let connector = TlsConnector::new(client_config.clone());
    let hello = client_hello(client_config);
    assert_eq!(hello[0], 0x16, "a handshake record");
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 5);

        // 1. Plain HTTP to a TLS port: a fatal alert record, then the close.
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec())
            .await
            .0
            .unwrap();
        let reply = read_to_end(&tcp).await;
        assert_eq!(reply.len(), 7, "one alert record: {reply:?}");
        assert_eq!(reply[0], 0x15, "alert record: {reply:?}");
        assert_eq!(&reply[3..5], &[0, 2], "alert length: {reply:?}");
        assert_eq!(reply[5], 2, "fatal: {reply:?}");

        // 2. Half a client hello, then end of stream: closed, no reply.
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(hello[..hello.len() / 2].to_vec())
            .await
            .0
            .unwrap();
        tcp.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&tcp).await, b"");

        // 3. A record header announcing more than a record may hold.
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(vec![0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
            .await
            .0
            .unwrap();
        let reply = read_to_end(&tcp).await;
        assert_eq!(reply.first(), Some(&0x15), "alert record: {reply:?}");

        // 4. After a good handshake, the client's TCP FIN without
        // close_notify: the server's read fails (a possible truncation).
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        tls.write_all(b"partial".to_vec()).await.0.unwrap();
        let (n, b) = tls.read(Vec::with_capacity(64)).await;
        assert_eq!(&b[..n.unwrap()], b"partial");
        tls.get_ref().shutdown(Shutdown::Write).unwrap();

        // 5. And the server still serves a well-behaved client.
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        ping(&mut tls, b"still here").await;

        let seen = server.await.unwrap();
        assert!(
            matches!(seen[0], Err(TlsError::Handshake(_))),
            "{:?}",
            seen[0]
        );
        assert!(
            matches!(&seen[1], Err(TlsError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "{:?}",
            seen[1]
        );
        assert!(
            matches!(seen[2], Err(TlsError::Handshake(_))),
            "{:?}",
            seen[2]
        );
        assert!(seen[3].is_ok() && seen[4].is_ok());
    });
}

#[test]
fn unclean_close_after_the_handshake_reads_as_unexpected_eof() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            echo(&mut tls).await
        });
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        tls.write_all(b"abc".to_vec()).await.0.unwrap();
        let (n, _) = tls.read(Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 3);
        tls.get_ref().shutdown(Shutdown::Write).unwrap();
        let err = server.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err:?}");
    });
}

#[test]
fn an_unsupported_version_is_refused_with_an_alert() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().tls12(false).build().unwrap());
    let connector = tls12_client(&pki);
    let modern = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 2);
        let err = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Handshake(rustls::Error::AlertReceived(
                    AlertDescription::ProtocolVersion
                ))
            ),
            "{err:?}"
        );
        let mut tls = modern
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        ping(&mut tls, b"1.3").await;
        let seen = server.await.unwrap();
        assert!(
            matches!(
                seen[0],
                Err(TlsError::Handshake(rustls::Error::PeerIncompatible(_)))
            ),
            "{:?}",
            seen[0]
        );
        assert!(seen[1].is_ok());
    });
}

#[test]
fn a_reader_that_does_not_read_holds_the_sender_back() {
    // The server reads in 7-byte steps, and not at all for a while: the
    // session buffers no more plaintext than it was asked for, so the
    // sender's 64 MiB stall in the socket buffers instead of piling up in
    // the server's memory; then every byte arrives, in order.
    const TOTAL: usize = 64 << 20;
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let (gate_tx, gate_rx) = futures::channel::oneshot::channel::<()>();
        let data = bytes::Bytes::from(pattern(TOTAL));
        let expected = data.clone();
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut small = [0u8; 7];
            let n = tls.read_into(&mut small).await.unwrap();
            assert!(n > 0 && small[..n] == pattern(n)[..]);
            gate_rx.await.unwrap();
            let mut got = n;
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                let (n, b) = tls.read(buf).await;
                let n = n.unwrap();
                if n == 0 {
                    break;
                }
                assert!(b[..] == expected[got..got + n], "bytes {got}..{}", got + n);
                got += n;
                buf = b;
            }
            got
        });
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        let sender = spawn_local(async move {
            tls.write_all(data).await.0.unwrap();
            tls.shutdown().await.unwrap();
            tls
        });
        seastar_core::timer::sleep(Duration::from_millis(300)).await;
        assert!(
            !sender.is_finished(),
            "64 MiB written to a peer that reads nothing"
        );
        let t0 = std::time::Instant::now();
        gate_tx.send(()).unwrap();
        let _tls = sender.await.unwrap();
        assert_eq!(server.await.unwrap(), TOTAL);
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "64 MiB over TLS on one shard in {secs:.3} s ({:.0} MiB/s, both ends on this core)",
            64.0 / secs
        );
    });
}
