//! The native stack's ICMP echo and UDP sockets on an in-memory device:
//! replies byte for byte, both directions, the socket API and its errors.

#![cfg(feature = "native")]

mod native_stack_support;

use std::io;
use std::net::SocketAddr;

use native_stack_support::*;
use seastar_net::native::{self, DropReason, UdpSocket, state::StackOptions};

#[test]
fn ping_gets_its_echo_reply() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let rest = [0x12, 0x34, 0x00, 0x01, b'p', b'i', b'n', b'g', b'!'];
        let request = ipv4_frame(US_MAC, PEER_MAC, PEER, US, 1, 0x0abc, &icmp(8, 0, &rest));
        peer.send_frame(&request).unwrap();
        let reply = ipv4_frame(PEER_MAC, US_MAC, US, PEER, 1, 1, &icmp(0, 0, &rest));
        assert_eq!(next_frame(&mut peer).await, reply);
        assert_eq!(native::stats().unwrap().icmp_echo_replies, 1);
        native::stop().await;
    });
}

#[test]
fn a_server_socket_echoes_datagrams_from_the_peer() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let sock = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        assert_eq!(
            sock.local_addr().unwrap(),
            "10.0.0.2:7".parse::<SocketAddr>().unwrap()
        );
        let echo = seastar_core::spawn_local(async move {
            for _ in 0..2 {
                let (r, buf) = sock.recv_from(Vec::with_capacity(2048)).await;
                let (n, from) = r.unwrap();
                assert_eq!(buf.len(), n);
                let (r, _) = sock.send_to(buf, from).await;
                assert_eq!(r.unwrap(), n);
            }
        });
        peer.send_frame(&udp_in(5555, 7, b"hello")).unwrap();
        assert_eq!(
            next_answering_arp(&mut peer).await,
            udp_out(7, 5555, 1, b"hello")
        );
        // A checksum of zero means "none" and is accepted.
        let mut f = udp_in(5556, 7, b"no sum");
        f[40..42].copy_from_slice(&[0, 0]);
        peer.send_frame(&f).unwrap();
        assert_eq!(next_frame(&mut peer).await, udp_out(7, 5556, 2, b"no sum"));
        echo.await.unwrap();
        let s = native::stats().unwrap();
        assert_eq!((s.udp_in, s.udp_out), (2, 2));
        assert_eq!(s.total_drops(), 0);
        native::stop().await;
    });
}

#[test]
fn a_client_socket_sends_and_receives_through_an_ephemeral_port() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let sock = UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let local = sock.local_addr().unwrap();
        assert_eq!(local, "10.0.0.2:49152".parse::<SocketAddr>().unwrap());
        let to: SocketAddr = "10.0.0.1:9".parse().unwrap();
        let (r, _) = sock.send_to(b"ping".to_vec(), to).await;
        assert_eq!(r.unwrap(), 4);
        assert_eq!(
            next_answering_arp(&mut peer).await,
            udp_out(49152, 9, 1, b"ping")
        );
        peer.send_frame(&udp_in(9, 49152, b"pong")).unwrap();
        let (r, buf) = sock.recv_from(vec![0u8; 2]).await;
        // A buffer shorter than the datagram keeps its start, as recvfrom.
        assert_eq!(r.unwrap(), (2, to));
        assert_eq!(buf, b"po");

        // Connected: only the peer's datagrams; send and recv.
        assert_eq!(
            sock.peer_addr().unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
        sock.connect(to).await.unwrap();
        assert_eq!(sock.peer_addr().unwrap(), to);
        deliver(&mut peer, &udp_in(10, 49152, b"stranger")).await;
        peer.send_frame(&udp_in(9, 49152, b"friend")).unwrap();
        let (r, buf) = sock.recv(Vec::with_capacity(64)).await;
        assert_eq!(&buf[..r.unwrap()], b"friend");
        assert_eq!(native::stats().unwrap().drops(DropReason::NoSocket), 1);
        let (r, _) = sock.send(b"bye".to_vec()).await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(next_frame(&mut peer).await, udp_out(49152, 9, 2, b"bye"));
        native::stop().await;
    });
}

#[test]
fn no_socket_gets_a_port_unreachable_rate_limited() {
    runtime(1, false).run(async {
        let opts = StackOptions {
            unreachable_per_sec: 1,
            ..StackOptions::default()
        };
        let mut peer = start(opts).await;
        let f = udp_in(5555, 9999, b"anyone?");
        peer.send_frame(&f).unwrap();
        // The quote: the IP header and the first 8 bytes of the datagram.
        let mut rest = vec![0, 0, 0, 0];
        rest.extend_from_slice(&f[14..14 + 28]);
        let expect = ipv4_frame(PEER_MAC, US_MAC, US, PEER, 1, 1, &icmp(3, 3, &rest));
        assert_eq!(next_frame(&mut peer).await, expect);
        deliver(&mut peer, &f).await;
        assert_nothing_sent(&mut peer);
        let s = native::stats().unwrap();
        assert_eq!(s.drops(DropReason::NoSocket), 2);
        assert_eq!(s.icmp_unreachable, 1);
        native::stop().await;
    });
}

#[test]
fn a_full_socket_queue_drops_and_counts() {
    runtime(1, false).run(async {
        let opts = StackOptions {
            socket_queue: 4,
            ..StackOptions::default()
        };
        let mut peer = start(opts).await;
        let sock = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        for i in 0..6u8 {
            deliver(&mut peer, &udp_in(5555, 7, &[i])).await;
        }
        assert_nothing_sent(&mut peer);
        assert_eq!(sock.queued(), 4);
        for i in 0..4u8 {
            let (r, buf) = sock.recv_from(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap().0, 1);
            assert_eq!(buf, [i]);
        }
        assert_eq!(
            native::stats().unwrap().drops(DropReason::SocketQueueFull),
            2
        );
        native::stop().await;
    });
}

#[test]
fn bind_and_send_errors() {
    runtime(1, false).run(async {
        assert_eq!(
            UdpSocket::bind("0.0.0.0:7".parse().unwrap())
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotConnected,
            "no stack yet"
        );
        let _peer = start(StackOptions::default()).await;
        let a = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        let err = |s: &str| UdpSocket::bind(s.parse().unwrap()).unwrap_err().kind();
        assert_eq!(err("0.0.0.0:7"), io::ErrorKind::AddrInUse);
        assert_eq!(err("10.0.0.3:8"), io::ErrorKind::AddrNotAvailable);
        assert_eq!(err("[::]:8"), io::ErrorKind::Unsupported);
        let to: SocketAddr = "10.0.0.1:9".parse().unwrap();
        let (r, _) = a.send_to(vec![0; 1473], to).await;
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EMSGSIZE));
        let (r, _) = a.send(vec![1]).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::NotConnected);
        // The largest datagram fits a 1514-byte frame.
        let (r, _) = a.send_to(vec![0; 1472], to).await;
        assert_eq!(r.unwrap(), 1472);
        // A dropped socket frees its port.
        drop(a);
        let b = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        drop(b);
        native::stop().await;
    });
}

#[test]
fn a_sleeping_shard_wakes_for_a_frame_from_another_thread() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let sock = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        // The peer answers our ARP request in advance, then sends later,
        // from a plain thread, while the shard sleeps in recv_from.
        peer.send_frame(&arp_reply(PEER_MAC, PEER, US_MAC, US))
            .unwrap();
        let other = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            peer.send_frame(&udp_in(5555, 7, b"late")).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                if let Some(f) = peer.recv_frame() {
                    return f;
                }
                assert!(std::time::Instant::now() < deadline, "no echo within 5 s");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        let (r, buf) = sock.recv_from(Vec::with_capacity(64)).await;
        let (n, from) = r.unwrap();
        sock.send_to(buf[..n].to_vec(), from).await.0.unwrap();
        let echoed = seastar_core::io::spawn_blocking(move || other.join().unwrap()).await;
        assert_eq!(echoed, udp_out(7, 5555, 1, b"late"));
        native::stop().await;
    });
}

#[test]
fn a_stack_ends_with_its_runtime() {
    runtime(1, false).run(async {
        let _peer = start(StackOptions::default()).await;
        let _sock = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        assert!(native::stats().is_some());
        // No stop: the runtime's end takes the stack down.
    });
    runtime(1, false).run(async {
        assert!(native::stats().is_none());
        let err = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    });
}

#[test]
fn two_readers_of_one_socket_both_get_datagrams() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let sock = std::rc::Rc::new(UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap());
        let reader = |s: std::rc::Rc<UdpSocket>| {
            seastar_core::spawn_local(async move {
                let (r, buf) = s.recv_from(Vec::with_capacity(16)).await;
                buf[..r.unwrap().0].to_vec()
            })
        };
        let (a, b) = (reader(sock.clone()), reader(sock.clone()));
        // Both wait before anything arrives.
        for _ in 0..10 {
            seastar_core::yield_now().await;
        }
        deliver(&mut peer, &udp_in(5555, 7, b"1")).await;
        deliver(&mut peer, &udp_in(5555, 7, b"2")).await;
        let both = async { (a.await.unwrap(), b.await.unwrap()) };
        let (a, b) = seastar_core::timer::timeout(std::time::Duration::from_secs(5), both)
            .await
            .expect("both readers woken within 5 s");
        let mut got = vec![a, b];
        got.sort();
        assert_eq!(got, [b"1".to_vec(), b"2".to_vec()]);
        native::stop().await;
    });
}

#[test]
fn owned_receives_and_vectored_sends_carry_the_same_datagrams() {
    runtime(1, false).run(async {
        let mut peer = start(StackOptions::default()).await;
        let sock = UdpSocket::bind("0.0.0.0:7".parse().unwrap()).unwrap();
        let echo = seastar_core::spawn_local(async move {
            let mut spare = Vec::with_capacity(64);
            for _ in 0..2 {
                let (from, data) = sock.recv_from_owned(spare).await;
                // Header and body from two buffers: an odd split (a part
                // at an odd offset) and an empty part.
                let (head, body) = data.split_at(data.len().min(3));
                let n = sock.send_vectored_to(&[head, &[], body], from).unwrap();
                assert_eq!(n, data.len());
                spare = data;
            }
        });
        peer.send_frame(&udp_in(5555, 7, b"hello")).unwrap();
        assert_eq!(
            next_answering_arp(&mut peer).await,
            udp_out(7, 5555, 1, b"hello")
        );
        // Longer than the spare handed in: received whole all the same.
        let long = vec![b'x'; 300];
        peer.send_frame(&udp_in(5556, 7, &long)).unwrap();
        assert_eq!(next_frame(&mut peer).await, udp_out(7, 5556, 2, &long));
        echo.await.unwrap();
        let s = native::stats().unwrap();
        assert_eq!((s.udp_in, s.udp_out, s.total_drops()), (2, 2, 0));
        native::stop().await;
    });
}
