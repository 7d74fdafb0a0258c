//! The native stack on real devices against the kernel's stack in the
//! other namespace (`native::testbed`): the kernel resolves our address by
//! ARP and pings it, and a UDP echo server on our stack answers a kernel
//! socket, on AF_XDP and on TAP, under the reactor backend
//! `SEASTAR_REACTOR_BACKEND` names. Needs root and `ip`; elsewhere each
//! test prints `SKIPPED: ...` and passes.

#![cfg(feature = "native-testbed")]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use seastar_net::native::checksum::Checksum;
use seastar_net::native::config::NativeConfig;
use seastar_net::native::device::DeviceSpec;
use seastar_net::native::iface::IfaceAddrs;
use seastar_net::native::state::StackOptions;
use seastar_net::native::testbed::{self, BedOptions, TestBed};
use seastar_net::native::{self, UdpSocket as NativeUdp};

const ECHO_PORT: u16 = 7;

/// Runs a one-shard runtime in namespace `ns` with the native stack on
/// `device` at `addr` and a UDP echo server on port 7, until `stop`
/// gets a message. Returns once the stack is up.
fn serve_echo(
    ns: &str,
    device: DeviceSpec,
    addr: Ipv4Addr,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let ns = ns.to_owned();
    let t = std::thread::spawn(move || {
        testbed::enter_ns(&ns).expect("enter namespace a");
        let rt = seastar_core::Runtime::builder().shards(1).build().unwrap();
        rt.run(async move {
            let config = NativeConfig {
                device,
                iface: IfaceAddrs {
                    addr,
                    netmask: Ipv4Addr::new(255, 255, 255, 0),
                    gateway: None,
                },
                queues: None,
                options: StackOptions::default(),
            };
            if let Err(e) = native::start(&config).await {
                ready_tx.send(Err(e.to_string())).unwrap();
                return;
            }
            let sock = NativeUdp::bind(SocketAddr::from((addr, ECHO_PORT))).unwrap();
            let echo = seastar_core::spawn_local(async move {
                loop {
                    let (r, buf) = sock.recv_from(Vec::with_capacity(2048)).await;
                    let Ok((_, from)) = r else { break };
                    let (r, _) = sock.send_to(buf, from).await;
                    r.unwrap();
                }
            });
            ready_tx.send(Ok(())).unwrap();
            // Poll for the stop message without blocking the shard.
            while stop_rx.try_recv().is_err() {
                seastar_core::timer::sleep(Duration::from_millis(20)).await;
            }
            drop(echo);
            native::stop().await;
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the stack did not start in 20 s")
        .expect("native::start");
    (stop_tx, t)
}

/// One ICMP echo from the kernel of namespace `b` to `to` (a raw socket, as
/// `ping` does); true when the reply came within 500 ms.
fn kernel_ping(bed: &TestBed, to: Ipv4Addr, seq: u16) -> bool {
    bed.run_in_b(|| {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        assert!(
            fd >= 0,
            "raw ICMP socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a new descriptor we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // Only sendto/recvfrom and a receive timeout are used: std's UDP
        // socket type serves a raw socket for those.
        let sock = std::net::UdpSocket::from(sock);
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut req = vec![8, 0, 0, 0, 0x42, 0x42];
        req.extend_from_slice(&seq.to_be_bytes());
        req.extend_from_slice(b"native stack ping");
        let mut c = Checksum::new();
        c.add(&req);
        let sum = c.finish().to_be_bytes();
        req[2..4].copy_from_slice(&sum);
        let dst = SocketAddr::from((to, 0));
        sock.send_to(&req, dst).unwrap();
        let mut buf = [0u8; 1500];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            // IPv4 header (20 bytes, no options) then ICMP.
            let icmp = &buf[20..n];
            if icmp[0] == 0 && icmp[4..] == req[4..] {
                return true;
            }
        }
        false
    })
}

fn ping_and_echo(bed: &TestBed, our_addr: Ipv4Addr, kernel_addr: Ipv4Addr) {
    // The first ping makes the kernel ask ARP for our address first.
    let answered = (1..=10).any(|seq| kernel_ping(bed, our_addr, seq));
    assert!(answered, "no ICMP echo reply from our stack in 10 tries");
    assert!(kernel_ping(bed, our_addr, 100), "a second ping");
    let sock = bed.run_in_b(|| UdpSocket::bind((kernel_addr, 0)).unwrap());
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let server = SocketAddr::from((our_addr, ECHO_PORT));
    let mut buf = [0u8; 2048];
    for msg in [&b"one"[..], &[0xa5; 1400][..], b"three"] {
        sock.send_to(msg, server).unwrap();
        let (n, from) = sock.recv_from(&mut buf).expect("the echo");
        assert_eq!(&buf[..n], msg);
        assert_eq!(from, server);
    }
}

#[test]
fn kernel_pings_and_udp_echo_over_af_xdp() {
    let Some(bed) = TestBed::new_or_skip("stack over xdp", &BedOptions::default()) else {
        return;
    };
    let (stop, t) = serve_echo(&bed.ns_a, DeviceSpec::xdp(bed.veth_a.clone()), bed.addr_a);
    ping_and_echo(&bed, bed.addr_a, bed.addr_b);
    stop.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn kernel_pings_and_udp_echo_over_tap() {
    let opts = BedOptions {
        tap: true,
        ..BedOptions::default()
    };
    let Some(bed) = TestBed::new_or_skip("stack over tap", &opts) else {
        return;
    };
    // The TAP interface lives in b: our runtime opens it from there.
    let spec = DeviceSpec::tap(bed.tap.clone().unwrap());
    let (stop, t) = serve_echo(&bed.ns_b, spec, bed.tap_addr_a);
    ping_and_echo(&bed, bed.tap_addr_a, bed.tap_addr_b);
    stop.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn a_missing_device_fails_the_start_clearly() {
    let Some(bed) = TestBed::new_or_skip("stack start error", &BedOptions::default()) else {
        return;
    };
    let ns = bed.ns_a.clone();
    let err = std::thread::spawn(move || {
        testbed::enter_ns(&ns).unwrap();
        let rt = seastar_core::Runtime::builder().shards(1).build().unwrap();
        rt.run(async {
            let config = NativeConfig {
                device: DeviceSpec::xdp("ssrs-nope0"),
                iface: IfaceAddrs {
                    addr: Ipv4Addr::new(10, 200, 0, 1),
                    netmask: Ipv4Addr::new(255, 255, 255, 0),
                    gateway: None,
                },
                queues: None,
                options: StackOptions::default(),
            };
            native::start(&config).await.unwrap_err().to_string()
        })
    })
    .join()
    .unwrap();
    assert!(
        err.contains("no such network interface `ssrs-nope0`"),
        "{err}"
    );
}
