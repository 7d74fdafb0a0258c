//! hyper and futures-io over TLS.

use crate::support::*;

#[cfg(feature = "hyper")]
#[test]
fn hyper_http1_runs_over_tls() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;

    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().alpn(["http/1.1"]).build().unwrap());
    let connector = TlsConnector::new(pki.client().alpn(["http/1.1"]).build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.unwrap();
            let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let path = req.uri().path().to_owned();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let text = format!("{path} {}", body.len());
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                    text,
                ))))
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(tls, svc)
                .await
                .unwrap();
        });
        let tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(tls).await.unwrap();
        let driver = spawn_local(conn);
        for i in 0..20usize {
            let body = Bytes::from(vec![b'x'; i * 5000]);
            let req = hyper::Request::post(format!("/item/{i}"))
                .body(Full::new(body))
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let got = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(got, format!("/item/{i} {}", i * 5000).as_bytes());
        }
        drop(sender);
        driver.await.unwrap().unwrap();
        server.await.unwrap();
    });
}

#[cfg(feature = "futures-io")]
#[test]
fn futures_io_traits_run_over_tls() {
    use futures::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut line = String::new();
            tls.read_line(&mut line).await.unwrap(); // AsyncBufRead, no copy

            AsyncWriteExt::write_all(&mut tls, line.to_uppercase().as_bytes())
                .await
                .unwrap();
            tls.close().await.unwrap();
        });
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        AsyncWriteExt::write_all(&mut tls, b"hello over tls\n")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        let mut got = String::new();
        tls.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "HELLO OVER TLS\n");
        server.await.unwrap();
    });
}

/// A server may look at the first bytes poll-style (say, to tell TLS from
/// plain text) before the handshake: the session starts from the bytes the
/// socket's poll-style buffer still holds, then receives on its own.
#[cfg(feature = "futures-io")]
#[test]
fn handshake_starts_from_bytes_peeked_poll_style() {
    use futures::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (mut tcp, _) = l.accept().await.unwrap();
            let peeked = tcp.fill_buf().await.unwrap();
            assert_eq!(peeked[0], 0x16, "a TLS handshake record"); // not consumed
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut line = String::new();
            tls.read_line(&mut line).await.unwrap();
            AsyncWriteExt::write_all(&mut tls, line.to_uppercase().as_bytes())
                .await
                .unwrap();
            tls.close().await.unwrap();
        });
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        AsyncWriteExt::write_all(&mut tls, b"peeked first\n")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        let mut got = String::new();
        tls.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "PEEKED FIRST\n");
        server.await.unwrap();
    });
}

/// A gather write (a head and its body, as hyper writes them) goes out as
/// one TLS record, not one per slice.
#[cfg(feature = "futures-io")]
#[test]
fn a_gather_write_is_one_record() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    use std::io::IoSlice;

    // TLS 1.3 record overhead: 5 header bytes, the inner content type, a 16-byte tag.
    const RECORD: u64 = 5 + 1 + 16;
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let (head, body) = (b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), b"hello".as_slice());
            let before = seastar_net::stats::local().bytes_sent;
            let n = tls
                .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                .await
                .unwrap();
            assert_eq!(n, head.len() + body.len());
            AsyncWriteExt::flush(&mut tls).await.unwrap();
            let sent = seastar_net::stats::local().bytes_sent - before;
            assert_eq!(sent, n as u64 + RECORD, "one record");
            tls.close().await.unwrap();
        });
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        let mut got = Vec::new();
        tls.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 200 OK\r\n\r\nhello");
        server.await.unwrap();
    });
}
