//! UDP sockets and Unix stream sockets, on the backend named by
//! `SEASTAR_REACTOR_BACKEND`.

mod common;

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{localhost0, rt};
use seastar_core::spawn_local;
use seastar_net::{UdpSocket, UnixListener, UnixStream};

#[test]
fn udp_send_to_and_recv_from_round_trip() {
    rt(1).run(async {
        let a = UdpSocket::bind(localhost0()).unwrap();
        let b = UdpSocket::bind(localhost0()).unwrap();
        let (b_addr, a_addr) = (b.local_addr().unwrap(), a.local_addr().unwrap());
        for i in 0..100u32 {
            let (n, _) = a.send_to(i.to_le_bytes().to_vec(), b_addr).await;
            assert_eq!(n.unwrap(), 4);
            let (r, buf) = b.recv_from(Vec::with_capacity(64)).await;
            let (n, from) = r.unwrap();
            assert_eq!(from, a_addr);
            assert_eq!(&buf[..n], i.to_le_bytes());
        }
    });
}

#[test]
fn udp_connected_sockets_send_and_recv() {
    rt(1).run(async {
        let a = UdpSocket::bind(localhost0()).unwrap();
        let b = UdpSocket::bind(localhost0()).unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        let (n, _) = a.send(b"datagram".to_vec()).await;
        assert_eq!(n.unwrap(), 8);
        let (n, buf) = b.recv(vec![0u8; 64]).await;
        assert_eq!(&buf[..n.unwrap()], b"datagram");
    });
}

#[test]
fn udp_datagram_longer_than_the_buffer_is_truncated() {
    rt(1).run(async {
        let a = UdpSocket::bind(localhost0()).unwrap();
        let b = UdpSocket::bind(localhost0()).unwrap();
        a.send_to(vec![7u8; 100], b.local_addr().unwrap())
            .await
            .0
            .unwrap();
        a.send_to(b"next".to_vec(), b.local_addr().unwrap())
            .await
            .0
            .unwrap();
        let (r, buf) = b.recv_from(vec![0u8; 10]).await;
        assert_eq!(r.unwrap().0, 10);
        assert_eq!(buf, vec![7u8; 10]);
        // The datagram's rest is gone: the next read is the next datagram.
        let (r, buf) = b.recv_from(Vec::with_capacity(10)).await;
        assert_eq!(&buf[..r.unwrap().0], b"next");
    });
}

/// A fresh socket path in the temporary directory.
fn sock_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "seastar-net-test-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn unix_listener_accepts_and_echoes() {
    let path = sock_path();
    let p = path.clone();
    rt(1).run(async move {
        let listener = UnixListener::bind(&p).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(p.as_path())
        );
        let server = spawn_local(async move {
            for _ in 0..3 {
                let (conn, _) = listener.accept().await.unwrap();
                spawn_local(async move {
                    let (mut input, mut output) = conn.into_streams();
                    loop {
                        let line = input.read_until(b'\n', 1024).await.unwrap();
                        if line.is_empty() {
                            break;
                        }
                        output.write_bytes(line).await.unwrap();
                        output.flush().await.unwrap();
                    }
                })
                .detach();
            }
        });
        for i in 0..3 {
            let c = UnixStream::connect(&p).await.unwrap();
            let msg = format!("client {i}\n").into_bytes();
            c.write_all(msg.clone()).await.0.unwrap();
            let (n, buf) = c.read(vec![0u8; 64]).await;
            assert_eq!(&buf[..n.unwrap()], &msg[..]);
        }
        server.await.unwrap();
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn unix_connect_errors_are_clean() {
    let path = sock_path();
    let p = path.clone();
    rt(1).run(async move {
        let e = UnixStream::connect(&p).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        // A socket file nobody listens on any more refuses connections.
        drop(UnixListener::bind(&p).unwrap());
        let e = UnixStream::connect(&p).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    });
    std::fs::remove_file(path).unwrap();
}
