//! Helpers of the native stack's tests: a stack on one end of an
//! in-memory device pair, the test playing the peer host (10.0.0.1) on the
//! other end, and frames built here byte by byte (independently of the
//! stack's own builders) to send and to expect.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seastar_core::Runtime;
use seastar_net::native::device::mem::{self, MemDevice};
use seastar_net::native::{self, iface::IfaceAddrs, state::StackOptions};

pub const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
pub const US_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
pub const BCAST: [u8; 6] = [0xff; 6];

/// A runtime of `shards` shards (manual clock if asked), on the backend
/// `SEASTAR_REACTOR_BACKEND` names.
pub fn runtime(shards: usize, manual_clock: bool) -> Runtime {
    let b = Runtime::builder().shards(shards).handle_signals(false);
    let b = if manual_clock { b.manual_clock() } else { b };
    b.build().expect("runtime")
}

/// Starts the stack on every shard with one queue (on shard 0), an
/// in-memory device whose other end is returned.
pub async fn start_one_queue(options: StackOptions) -> MemDevice {
    let (ours, peer) = mem::pair(US_MAC, PEER_MAC);
    let slot = Arc::new(Mutex::new(Some(ours)));
    let addrs = IfaceAddrs {
        addr: US,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Some(GATEWAY),
    };
    native::start_with(addrs, Some(1), options, move |_queue| {
        let dev = slot.lock().unwrap().take().expect("one queue");
        Ok(Box::new(dev) as Box<dyn native::device::Device>)
    })
    .await
    .expect("start");
    peer
}

/// Starts as [`start_one_queue`] and consumes the gratuitous announce.
pub async fn start(options: StackOptions) -> MemDevice {
    let mut peer = start_one_queue(options).await;
    let f = next_frame(&mut peer).await;
    assert_eq!(f, announce(), "the first frame is the announce");
    peer
}

/// The next frame the stack sends (within 5 s of real time).
pub async fn next_frame(peer: &mut MemDevice) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(f) = peer.recv_frame() {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "no frame from the stack within 5 s"
        );
        seastar_core::yield_now().await;
    }
}

/// Lets the stack run for 20 ms of real time and asserts it sent
/// nothing.
pub async fn assert_silent(peer: &mut MemDevice) {
    let until = Instant::now() + Duration::from_millis(20);
    while Instant::now() < until {
        seastar_core::yield_now().await;
    }
    if let Some(f) = peer.recv_frame() {
        panic!("unexpected frame {f:02x?}");
    }
}

/// Sends `frame` from the peer and waits until the stack (on the calling
/// shard, which has the device) took it: whatever it answers is then
/// already in the peer's queue.
pub async fn deliver(peer: &mut MemDevice, frame: &[u8]) {
    let before = native::stats().expect("stack running").frames_in;
    peer.send_frame(frame).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while native::stats().unwrap().frames_in == before {
        assert!(
            Instant::now() < deadline,
            "the stack took no frame within 5 s"
        );
        seastar_core::yield_now().await;
    }
}

/// Asserts that the stack has sent nothing (so far).
pub fn assert_nothing_sent(peer: &mut MemDevice) {
    if let Some(f) = peer.recv_frame() {
        panic!("unexpected frame {f:02x?}");
    }
}

/// The next frame that is not an ARP request for the peer; those are
/// answered (as the peer would).
pub async fn next_answering_arp(peer: &mut MemDevice) -> Vec<u8> {
    loop {
        let f = next_frame(peer).await;
        if f == arp_request(US_MAC, US, PEER) {
            peer.send_frame(&arp_reply(PEER_MAC, PEER, US_MAC, US))
                .unwrap();
            continue;
        }
        return f;
    }
}

/// Runs `f` on `shard` and returns the stack's counters there.
pub async fn stats_on(shard: usize) -> native::NativeStats {
    seastar_core::smp::submit_to(shard, || async { native::stats().expect("stack running") })
        .await
        .unwrap()
}

// ---- frames, built by hand ----

pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

fn arp(op: u16, smac: [u8; 6], sip: Ipv4Addr, tmac: [u8; 6], tip: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&smac);
    p.extend_from_slice(&sip.octets());
    p.extend_from_slice(&tmac);
    p.extend_from_slice(&tip.octets());
    p
}

/// A broadcast ARP request from `smac`/`sip` for `tip`.
pub fn arp_request(smac: [u8; 6], sip: Ipv4Addr, tip: Ipv4Addr) -> Vec<u8> {
    eth(BCAST, smac, 0x0806, &arp(1, smac, sip, [0; 6], tip))
}

/// An ARP reply from `smac`/`sip` to `tmac`/`tip`.
pub fn arp_reply(smac: [u8; 6], sip: Ipv4Addr, tmac: [u8; 6], tip: Ipv4Addr) -> Vec<u8> {
    eth(tmac, smac, 0x0806, &arp(2, smac, sip, tmac, tip))
}

/// Our gratuitous announce.
pub fn announce() -> Vec<u8> {
    arp_request(US_MAC, US, US)
}

/// An IPv4 header (no options, DF set) for `payload_len` bytes.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    payload_len: usize,
) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// A UDP datagram (checksum computed).
pub fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut d = Vec::new();
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&d);
    let c = match checksum(&pseudo) {
        0 => 0xffff,
        c => c,
    };
    d[6..8].copy_from_slice(&c.to_be_bytes());
    d
}

/// A whole UDP frame.
#[allow(clippy::too_many_arguments)]
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let d = udp(src, sport, dst, dport, payload);
    let mut ip = ipv4_header(src, dst, 17, id, d.len());
    ip.extend_from_slice(&d);
    eth(dst_mac, src_mac, 0x0800, &ip)
}

/// A UDP frame from the peer to us.
pub fn udp_in(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    udp_frame(US_MAC, PEER_MAC, PEER, sport, US, dport, 0x1000, payload)
}

/// A UDP frame from us to the peer, IP id `id`.
pub fn udp_out(sport: u16, dport: u16, id: u16, payload: &[u8]) -> Vec<u8> {
    udp_frame(PEER_MAC, US_MAC, US, sport, PEER, dport, id, payload)
}

/// An ICMP message with its checksum, type `ty`.
pub fn icmp(ty: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(rest);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An IPv4 frame carrying `l4` with protocol `proto`.
pub fn ipv4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    l4: &[u8],
) -> Vec<u8> {
    let mut ip = ipv4_header(src, dst, proto, id, l4.len());
    ip.extend_from_slice(l4);
    eth(dst_mac, src_mac, 0x0800, &ip)
}
