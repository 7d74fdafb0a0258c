//! Arbitrary frames through the native stack's whole receive path
//! (`native::state::State`: Ethernet, ARP, IPv4, ICMP, UDP, RSS; no device,
//! no runtime), mixed with clock advances, sends and port changes.
//!
//! The input is a list of operations, each an opcode byte and a 2-byte
//! length then that many bytes: 0 a received frame, 1 a received frame
//! handed over by another shard, 2 the clock advanced by bytes[0] x 100 ms,
//! 3 a datagram sent to bytes[0..6] (address, port), 4 a port bound or
//! unbound. Invariants: no panic; every frame the stack sends is well
//! formed (Ethernet from our MAC, at least 60 bytes and at most the frame
//! maximum; ARP parses; IPv4 parses, from our address, its ICMP or UDP
//! checksums verify); queues stay within their bounds.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use seastar_net::native::arp::ArpPacket;
use seastar_net::native::checksum::checksum;
use seastar_net::native::ethernet::{EtherType, Frame, Mac};
use seastar_net::native::iface::Iface;
use seastar_net::native::ipv4::{self, Protocol};
use seastar_net::native::state::{StackOptions, State};
use seastar_net::native::udp;

const MAC: Mac = Mac([2, 0, 0, 0, 0, 2]);
const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const FRAME_MAX: usize = 1514;

fn check_sent(frame: &[u8]) {
    assert!(
        frame.len() >= 60 && frame.len() <= FRAME_MAX,
        "length {}",
        frame.len()
    );
    let f = Frame::parse(frame).expect("ethernet");
    assert_eq!(f.src, MAC);
    match f.ethertype {
        EtherType::ARP => {
            let p = ArpPacket::parse(f.payload).expect("arp");
            assert_eq!((p.sender_mac, p.sender_ip), (MAC, ADDR));
        }
        EtherType::IPV4 => {
            let (h, payload) = ipv4::Header::parse(f.payload).expect("ipv4");
            assert_eq!(h.src, ADDR);
            match h.protocol {
                Protocol::ICMP => assert_eq!(checksum(payload), 0, "icmp checksum"),
                Protocol::UDP => {
                    udp::Header::parse(payload, h.src, h.dst).expect("udp");
                }
                p => panic!("sent protocol {p:?}"),
            }
        }
        t => panic!("sent ethertype {t:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let opts = StackOptions {
        socket_queue: 4,
        ..StackOptions::default()
    };
    let iface = Iface {
        addr: ADDR,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
        mac: MAC,
    };
    let mut st = State::new(iface, opts, 0, 2, true, FRAME_MAX);
    let ports = [7u16, 53, 49152];
    for p in ports {
        st.open_port(p).unwrap();
    }
    let t0 = Instant::now();
    let mut now = t0;
    let mut inputs = 0usize;
    let mut rest = data;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let bytes = &rest[3..3 + len];
        rest = &rest[3 + len..];
        match op % 5 {
            0 | 1 => {
                inputs += 1;
                st.input(bytes, now, op % 5 == 1);
            }
            2 => {
                now += Duration::from_millis(100 * u64::from(bytes.first().copied().unwrap_or(1)));
                st.tick(now);
            }
            3 if bytes.len() >= 6 => {
                let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
                let dst = SocketAddrV4::new(ip, u16::from_be_bytes([bytes[4], bytes[5]]));
                let r = st.send_udp(None, now, 7, dst, &bytes[6..]);
                if bytes.len() - 6 <= FRAME_MAX - 42 {
                    r.expect("a datagram that fits is sent or queued");
                }
            }
            4 if !bytes.is_empty() => {
                let p = ports[usize::from(bytes[0]) % ports.len()];
                if st.queued(p).is_some() {
                    st.close_port(p);
                } else {
                    st.open_port(p).unwrap();
                }
            }
            _ => {}
        }
        for f in &st.out {
            check_sent(f);
        }
        st.out.clear();
        assert!(st.arp_waiting() <= opts.arp.queue_max);
        for p in ports {
            assert!(st.queued(p).unwrap_or(0) <= opts.socket_queue);
        }
        let handed: usize = st.handover_rx.iter().map(Vec::len).sum();
        assert!(handed <= inputs);
        assert!(st.handover_rx[0].is_empty(), "nothing handed to ourselves");
        assert!(
            st.handover_tx.is_empty(),
            "a shard with a device hands nothing over"
        );
    }
    let s = st.stats();
    assert_eq!(s.frames_in as usize, inputs);
});
