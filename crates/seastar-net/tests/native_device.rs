//! The native stack's devices against the kernel: frames out of and into
//! an AF_XDP socket (native and generic mode) and a TAP queue, with the
//! kernel's own stack on the other end in another network namespace
//! (`native::testbed`), plus bring-up failures.
//!
//! Needs root and `ip` (iproute2); elsewhere each test prints
//! `SKIPPED: ...` and passes.

#![cfg(feature = "native-testbed")]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use seastar_net::native::checksum::Checksum;
use seastar_net::native::device::{
    self, Device, DeviceError, DeviceSpec, TapDevice, TapOptions, XdpDevice, XdpMode, XdpOptions,
    iface,
};
use seastar_net::native::testbed::{BedOptions, TestBed};

const WAIT: Duration = Duration::from_secs(5);

/// Sleeps on the device's wake fd until a frame `pick` accepts arrives
/// (other frames are skipped), or `WAIT` passes.
fn receive_until(dev: &mut dyn Device, pick: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    receive_within(dev, WAIT, pick)
}

/// [`receive_until`] with a deadline of `wait`.
fn receive_within(
    dev: &mut dyn Device,
    wait: Duration,
    pick: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let end = Instant::now() + wait;
    let mut found = None;
    loop {
        dev.receive(64, &mut |f| {
            if found.is_none() && pick(f) {
                found = Some(f.to_vec());
            }
        });
        let left = end.saturating_duration_since(Instant::now());
        if found.is_some() || left.is_zero() {
            return found;
        }
        let mut pfd = libc::pollfd {
            fd: dev.wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call.
        unsafe { libc::poll(&mut pfd, 1, left.as_millis().clamp(1, 100) as i32) };
    }
}

fn arp_request(src_mac: [u8; 6], src_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&src_ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target_ip.octets());
    f
}

/// The kernel's ARP reply, as it must be byte for byte (42 bytes: no
/// padding on a virtual link).
fn arp_reply(to_mac: [u8; 6], to_ip: Ipv4Addr, from_mac: [u8; 6], from_ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&to_mac);
    f.extend_from_slice(&from_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    f.extend_from_slice(&from_mac);
    f.extend_from_slice(&from_ip.octets());
    f.extend_from_slice(&to_mac);
    f.extend_from_slice(&to_ip.octets());
    f
}

/// An Ethernet + IPv4 + UDP frame with both checksums.
fn udp_frame(
    (src_mac, src_ip, src_port): ([u8; 6], Ipv4Addr, u16),
    (dst_mac, dst_ip, dst_port): ([u8; 6], Ipv4Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut iph = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0];
    iph[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    iph.extend_from_slice(&src_ip.octets());
    iph.extend_from_slice(&dst_ip.octets());
    let mut c = Checksum::new();
    c.add(&iph);
    iph[10..12].copy_from_slice(&c.finish().to_be_bytes());
    f.extend_from_slice(&iph);
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&src_port.to_be_bytes());
    udp.extend_from_slice(&dst_port.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut c = Checksum::new();
    c.add(&src_ip.octets());
    c.add(&dst_ip.octets());
    c.add(&[0, 17]);
    c.add(&(udp_len as u16).to_be_bytes());
    c.add(&udp);
    let sum = match c.finish() {
        0 => 0xffff,
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&udp);
    f
}

fn send(dev: &mut dyn Device, frame: &[u8]) {
    dev.transmit(frame.len(), &mut |buf| buf.copy_from_slice(frame))
        .expect("transmit");
    dev.flush().expect("flush");
}

/// Our ARP request for `their_ip` goes out; the kernel's reply comes back,
/// byte for byte. The request is repeated every 200 ms, as a stack would:
/// a TAP interface drops what the kernel sends in the moment between its
/// carrier coming up and its queueing discipline being activated.
fn arp_exchange(dev: &mut dyn Device, our_ip: Ipv4Addr, their_mac: [u8; 6], their_ip: Ipv4Addr) {
    let our_mac = dev.mac();
    let want = arp_reply(our_mac, our_ip, their_mac, their_ip);
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        send(dev, &arp_request(our_mac, our_ip, their_ip));
        let got = receive_within(dev, Duration::from_millis(200), |f| {
            f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[21] == 2
        });
        if let Some(got) = got {
            assert_eq!(got, want, "the kernel's ARP reply");
            return;
        }
    }
    panic!("no ARP reply from the kernel within {WAIT:?}");
}

/// A kernel UDP socket in namespace `b` sends to our address; the frame
/// arrives whole (checksums included); our reply reaches the socket.
fn udp_exchange(
    bed: &TestBed,
    dev: &mut dyn Device,
    (our_ip, their_mac, their_ip): (Ipv4Addr, [u8; 6], Ipv4Addr),
    kernel_dev: &str,
) {
    let our_mac = dev.mac();
    bed.neigh_b(our_ip, our_mac, kernel_dev)
        .expect("neighbour entry");
    let sock = bed.run_in_b(|| UdpSocket::bind((their_ip, 0)).expect("bind in b"));
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let port = sock.local_addr().unwrap().port();
    sock.send_to(b"ping from the kernel", (our_ip, 7777))
        .unwrap();
    let got = receive_until(dev, |f| {
        f.len() > 42 && f[12..14] == [0x08, 0x00] && f[23] == 17
    })
    .expect("no UDP frame from the kernel within 5 s");
    let mut want = udp_frame(
        (their_mac, their_ip, port),
        (our_mac, our_ip, 7777),
        b"ping from the kernel",
    );
    // The kernel picks the IP id; everything else is as we would build it
    // (full checksums: the peer's offloads are off).
    want[18..20].copy_from_slice(&got[18..20]);
    let mut c = Checksum::new();
    want[24..26].copy_from_slice(&[0, 0]);
    c.add(&want[14..34]);
    want[24..26].copy_from_slice(&c.finish().to_be_bytes());
    assert_eq!(got, want, "the kernel's UDP datagram as a frame");

    send(
        dev,
        &udp_frame(
            (our_mac, our_ip, 7777),
            (their_mac, their_ip, port),
            b"pong from us",
        ),
    );
    let mut buf = [0u8; 64];
    let (n, from) = sock
        .recv_from(&mut buf)
        .expect("our datagram reached the kernel");
    assert_eq!(&buf[..n], b"pong from us");
    assert_eq!(from, (our_ip, 7777).into());
}

fn xdp_in_a(bed: &TestBed, opts: &XdpOptions) -> XdpDevice {
    bed.run_in_a(|| XdpDevice::open(&bed.veth_a, 0, opts))
        .expect("AF_XDP device on the veth")
}

#[test]
fn xdp_native_mode_arp_and_udp_against_the_kernel() {
    let Some(bed) = TestBed::new_or_skip("xdp native", &BedOptions::default()) else {
        return;
    };
    let mut dev = xdp_in_a(&bed, &XdpOptions::default());
    assert_eq!(dev.mode(), XdpMode::Native, "veth has native XDP");
    assert_eq!(dev.mac(), bed.mac_a);
    assert_eq!(dev.frame_max(), 1514);
    arp_exchange(&mut dev, bed.addr_a, bed.mac_b, bed.addr_b);
    udp_exchange(
        &bed,
        &mut dev,
        (bed.addr_a, bed.mac_b, bed.addr_b),
        &bed.veth_b,
    );
}

#[test]
fn xdp_generic_mode_arp_and_udp_against_the_kernel() {
    let Some(bed) = TestBed::new_or_skip("xdp generic", &BedOptions::default()) else {
        return;
    };
    let opts = XdpOptions {
        force_generic: true,
        ..XdpOptions::default()
    };
    let mut dev = xdp_in_a(&bed, &opts);
    assert_eq!(dev.mode(), XdpMode::Generic);
    arp_exchange(&mut dev, bed.addr_a, bed.mac_b, bed.addr_b);
    udp_exchange(
        &bed,
        &mut dev,
        (bed.addr_a, bed.mac_b, bed.addr_b),
        &bed.veth_b,
    );
}

#[test]
fn xdp_transmit_runs_out_of_frames_and_flush_gives_them_back() {
    let Some(bed) = TestBed::new_or_skip("xdp tx frames", &BedOptions::default()) else {
        return;
    };
    // 16 frames: 8 for receiving, 8 for sending.
    let opts = XdpOptions {
        frames: 16,
        ..XdpOptions::default()
    };
    let mut dev = xdp_in_a(&bed, &opts);
    let req = arp_request(dev.mac(), bed.addr_a, bed.addr_b);
    let mut queued = 0;
    while dev
        .transmit(req.len(), &mut |b| b.copy_from_slice(&req))
        .is_ok()
    {
        queued += 1;
        assert!(queued <= 8, "more frames queued than the UMEM has");
    }
    assert_eq!(queued, 8);
    let e = dev.transmit(req.len(), &mut |_| panic!("fill called without a frame"));
    assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    dev.flush().expect("flush");
    // Sent frames come back through the completion ring.
    let end = Instant::now() + WAIT;
    loop {
        match dev.transmit(req.len(), &mut |b| b.copy_from_slice(&req)) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                dev.flush().unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("frames never came back: {e}"),
        }
    }
    let big = dev.transmit(1515, &mut |_| panic!("fill called for an oversized frame"));
    assert_eq!(big.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    // The kernel answered every request: the replies all arrive.
    dev.flush().unwrap();
    let want = arp_reply(dev.mac(), bed.addr_a, bed.mac_b, bed.addr_b);
    assert_eq!(
        receive_until(&mut dev, |f| f.len() >= 42 && f[21] == 2).as_deref(),
        Some(&want[..])
    );
}

#[test]
fn tap_arp_and_udp_against_the_kernel() {
    let opts = BedOptions {
        tap: true,
        ..BedOptions::default()
    };
    let Some(bed) = TestBed::new_or_skip("tap", &opts) else {
        return;
    };
    let tap = bed.tap.clone().unwrap();
    let (mut dev, tap_mac) = bed.run_in_b(|| {
        let dev = TapDevice::open(&tap, &TapOptions::default()).expect("TAP queue");
        (dev, iface::mac(&tap).expect("TAP address"))
    });
    assert_ne!(dev.mac(), tap_mac, "our end has its own address");
    assert_eq!(dev.mac()[0], 0x02, "locally administered");
    assert_eq!(dev.frame_max(), 1514);
    arp_exchange(&mut dev, bed.tap_addr_a, tap_mac, bed.tap_addr_b);
    udp_exchange(
        &bed,
        &mut dev,
        (bed.tap_addr_a, tap_mac, bed.tap_addr_b),
        &tap,
    );
    assert_eq!(dev.dropped(), 0);
}

#[test]
fn tap_queues_of_one_interface_share_its_address() {
    let opts = BedOptions {
        tap: true,
        ..BedOptions::default()
    };
    let Some(bed) = TestBed::new_or_skip("tap queues", &opts) else {
        return;
    };
    let spec = DeviceSpec::tap(bed.tap.clone().unwrap());
    let (q0, q1) = bed.run_in_b(|| {
        let q0 = device::open(&spec, 0).expect("queue 0");
        let q1 = device::open(&spec, 1).expect("queue 1");
        (q0.mac(), q1.mac())
    });
    assert_eq!(q0, q1);
}

#[test]
fn no_such_interface_is_a_clear_error() {
    for spec in [
        DeviceSpec::xdp("ssrs-nope0"),
        DeviceSpec::xdp("a-name-far-too-long-for-linux"),
    ] {
        match device::open(&spec, 0) {
            Err(DeviceError::NoSuchInterface { iface }) => {
                assert!(iface.starts_with("ssrs-nope0") || iface.starts_with("a-name"));
            }
            Err(e) => panic!("expected NoSuchInterface, got {e}"),
            Ok(_) => panic!("opened a device on an interface that does not exist"),
        }
    }
    let e = device::open(&DeviceSpec::xdp("ssrs-nope0"), 0)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "no such network interface `ssrs-nope0` in this network namespace"
    );
}

#[test]
fn oversized_umem_is_refused_before_any_syscall() {
    let opts = XdpOptions {
        frames: 4096,
        frame_size: 2048,
        ..XdpOptions::default()
    };
    match XdpDevice::open("lo", 0, &opts) {
        Err(DeviceError::Invalid(m)) => assert!(m.contains("at most 4 MiB"), "{m}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Kills the holder process on drop.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run by `xdp_refused_in_both_modes_is_a_clear_error` in a child process:
/// holds the XDP program on `$SSRS_HOLD_XDP` until its stdin closes.
#[test]
#[ignore = "a helper the XDP refusal test runs in a child process"]
fn hold_xdp_helper() {
    let Ok(iface) = std::env::var("SSRS_HOLD_XDP") else {
        return;
    };
    let _dev = XdpDevice::open(&iface, 0, &XdpOptions::default()).expect("holder's device");
    println!("HOLDING");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn xdp_refused_in_both_modes_is_a_clear_error() {
    let Some(bed) = TestBed::new_or_skip("xdp refused", &BedOptions::default()) else {
        return;
    };
    // Another process holds the interface's XDP hook through its own link:
    // a second program is refused in native mode (busy) and generic mode
    // (the modes cannot be mixed).
    let exe = std::env::current_exe().unwrap();
    let mut child = Holder(
        TestBed::command_in(&bed.ns_a, exe)
            .args(["--exact", "hold_xdp_helper", "--ignored", "--nocapture"])
            .env("SSRS_HOLD_XDP", &bed.veth_a)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the holder"),
    );
    let out = BufReader::new(child.0.stdout.take().unwrap());
    let held = out
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("HOLDING"));
    assert!(held, "the holder did not attach");
    match bed.run_in_a(|| XdpDevice::open(&bed.veth_a, 0, &XdpOptions::default())) {
        Err(e @ DeviceError::XdpRefused { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!(
                    "interface `{}` refused the XDP program",
                    bed.veth_a
                )),
                "{msg}"
            );
            assert!(msg.contains("native (drv) mode") && msg.contains("generic (skb) mode"));
        }
        Err(e) => panic!("expected XdpRefused, got {e}"),
        Ok(_) => panic!("a second program attached while another process holds the hook"),
    }
}
