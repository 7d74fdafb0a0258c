//! hyper 1.x HTTP/1 server and client over seastar-net streams (feature
//! `hyper`), on the backend named by `SEASTAR_REACTOR_BACKEND`.
#![cfg(feature = "hyper")]

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::{localhost0, rt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use seastar_core::spawn_local;
use seastar_net::{ListenOptions, TcpListener, TcpStream, UnixStream};

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let text = format!("{path} {}", body.len());
    Ok(Response::new(Full::new(Bytes::from(text))))
}

#[test]
fn hyper_serves_keep_alive_requests_over_tcp() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let server = spawn_local(async move {
            let (conn, _) = l.accept().await.unwrap();
            hyper::server::conn::http1::Builder::new()
                .serve_connection(conn, service_fn(answer))
                .await
                .unwrap();
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
        let driver = spawn_local(conn);
        for i in 0..50usize {
            // Bodies from empty to larger than the 64 KiB write-behind step.
            let body = Bytes::from(vec![b'x'; i * 4000]);
            let req = Request::post(format!("/item/{i}"))
                .body(Full::new(body))
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let got = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(got, format!("/item/{i} {}", i * 4000).as_bytes());
        }
        drop(sender);
        driver.await.unwrap().unwrap();
        server.await.unwrap();
    });
}

#[test]
fn hyper_runs_over_a_unix_stream() {
    rt(1).run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let server = spawn_local(async move {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(a, service_fn(answer))
                .await
                .unwrap();
        });
        let (mut sender, conn) = hyper::client::conn::http1::handshake(b).await.unwrap();
        let driver = spawn_local(conn);
        let resp = sender
            .send_request(Request::get("/unix").body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, "/unix 0");
        drop(sender);
        driver.await.unwrap().unwrap();
        server.await.unwrap();
    });
}
