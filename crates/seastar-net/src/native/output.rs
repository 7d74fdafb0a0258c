//! Frames the stack sends: UDP datagrams (built in place in the device
//! when the next hop is known), ARP requests, replies and announces.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::arp::{self, ArpPacket, Op};
use super::arp_cache::Enqueued;
use super::device::Device;
use super::ethernet::{self, EtherType, Mac};
use super::ipv4::{self, Protocol};
use super::state::State;
use super::stats::DropReason;
use super::udp;

/// Writes a whole frame of `buf.len()` bytes carrying an IPv4 packet
/// whose `l4_len` bytes of payload `fill` writes (into the slice it gets),
/// padding zeroed.
pub(crate) fn write_ipv4_frame(
    buf: &mut [u8],
    macs: (Mac, Mac),
    header: &ipv4::Header,
    l4_len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let (src_mac, dst_mac) = macs;
    let rest = ethernet::write_header(buf, dst_mac, src_mac, EtherType::IPV4);
    let (ip, rest) = rest.split_at_mut(ipv4::HEADER_LEN);
    header.write(ip, l4_len);
    let (l4, pad) = rest.split_at_mut(l4_len);
    fill(l4);
    pad.fill(0);
}

/// Writes the UDP datagram `payload` from `src` to `dst` into `l4`.
fn write_udp(l4: &mut [u8], src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) {
    l4[udp::HEADER_LEN..].copy_from_slice(payload);
    udp::write_header(l4, *src.ip(), *dst.ip(), src.port(), dst.port());
}

impl State {
    fn ipv4_header(&mut self, dst: Ipv4Addr, protocol: Protocol) -> ipv4::Header {
        ipv4::Header {
            src: self.iface.addr,
            dst,
            protocol,
            ttl: ipv4::DEFAULT_TTL,
            id: self.next_ip_id(),
        }
    }

    /// Sends `payload` from our `src_port` to `dst`: straight into `dev`
    /// when given and the next hop is resolved, else as a frame queued
    /// behind the resolution or for a device shard. UDP is lossy: a full
    /// device drops the datagram (counted) and still returns `Ok`.
    ///
    /// Errors: a datagram too long for a frame (`EMSGSIZE`), a destination
    /// off the subnet without a gateway (`ENETUNREACH`).
    pub fn send_udp(
        &mut self,
        dev: Option<&mut dyn Device>,
        now: Instant,
        src_port: u16,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> io::Result<()> {
        let ip_len = ipv4::HEADER_LEN + udp::HEADER_LEN + payload.len();
        let len = ethernet::frame_len(ip_len);
        if len > self.frame_max {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let Some(next_hop) = self.iface.next_hop(*dst.ip()) else {
            return Err(io::Error::from_raw_os_error(libc::ENETUNREACH));
        };
        let src = SocketAddrV4::new(self.iface.addr, src_port);
        let header = self.ipv4_header(*dst.ip(), Protocol::UDP);
        let l4_len = ip_len - ipv4::HEADER_LEN;
        let mac = self.arp.lookup(next_hop, now);
        self.stats.udp_out += 1;
        let fill = |buf: &mut [u8], dst_mac: Mac| {
            write_ipv4_frame(buf, (self.iface.mac, dst_mac), &header, l4_len, |l4| {
                write_udp(l4, src, dst, payload)
            });
        };
        match (mac, dev) {
            (Some(dst_mac), Some(dev)) => {
                let mut fill = |buf: &mut [u8]| fill(buf, dst_mac);
                let mut r = dev.transmit(len, &mut fill);
                if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                    let _ = dev.flush();
                    r = dev.transmit(len, &mut fill);
                }
                match r {
                    Ok(()) => {
                        self.stats.frames_out += 1;
                        self.stats.bytes_out += len as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.drop_frame(DropReason::TxFull)
                    }
                    Err(e) => return Err(e),
                }
            }
            (Some(dst_mac), None) => {
                let mut frame = vec![0; len];
                fill(&mut frame, dst_mac);
                self.emit(frame);
            }
            (None, _) => {
                let mut frame = vec![0; len];
                fill(&mut frame, Mac::ZERO);
                self.wait_for(next_hop, frame, now);
            }
        }
        Ok(())
    }

    /// Queues `frame` behind the resolution of `next_hop`.
    pub(crate) fn wait_for(&mut self, next_hop: Ipv4Addr, frame: Vec<u8>, now: Instant) {
        match self.arp.enqueue(next_hop, frame, now) {
            Enqueued::SendRequest => self.send_arp_request(next_hop),
            Enqueued::Queued => {}
            Enqueued::Full => self.drop_frame(DropReason::ArpQueueFull),
        }
    }

    fn arp_frame(&self, dst_mac: Mac, p: &ArpPacket) -> Vec<u8> {
        let mut frame = vec![0; ethernet::frame_len(arp::LEN)];
        p.write(ethernet::write_header(
            &mut frame,
            dst_mac,
            self.iface.mac,
            EtherType::ARP,
        ));
        frame
    }

    /// Broadcasts "who has `ip`?".
    pub(crate) fn send_arp_request(&mut self, ip: Ipv4Addr) {
        let p = ArpPacket {
            op: Op::Request,
            sender_mac: self.iface.mac,
            sender_ip: self.iface.addr,
            target_mac: Mac::ZERO,
            target_ip: ip,
        };
        self.stats.arp_requests_out += 1;
        let frame = self.arp_frame(Mac::BROADCAST, &p);
        self.emit(frame);
    }

    /// Answers `request` (for our address).
    pub(crate) fn send_arp_reply(&mut self, request: &ArpPacket) {
        let p = ArpPacket {
            op: Op::Reply,
            sender_mac: self.iface.mac,
            sender_ip: self.iface.addr,
            target_mac: request.sender_mac,
            target_ip: request.sender_ip,
        };
        self.stats.arp_replies_out += 1;
        let frame = self.arp_frame(request.sender_mac, &p);
        self.emit(frame);
    }

    /// Broadcasts a gratuitous ARP request for our own address.
    pub fn announce(&mut self) {
        let p = ArpPacket {
            op: Op::Request,
            sender_mac: self.iface.mac,
            sender_ip: self.iface.addr,
            target_mac: Mac::ZERO,
            target_ip: self.iface.addr,
        };
        self.stats.arp_announces += 1;
        let frame = self.arp_frame(Mac::BROADCAST, &p);
        self.emit(frame);
    }

    /// Sends an IPv4 packet of `l4_len` payload bytes (written by `fill`)
    /// to `dst` through the neighbour `dst_mac` (a reply goes back the way
    /// its request came, without a lookup).
    pub(crate) fn send_ipv4_via(
        &mut self,
        dst_mac: Mac,
        dst: Ipv4Addr,
        protocol: Protocol,
        l4_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) {
        let header = self.ipv4_header(dst, protocol);
        let mut frame = vec![0; ethernet::frame_len(ipv4::HEADER_LEN + l4_len)];
        write_ipv4_frame(&mut frame, (self.iface.mac, dst_mac), &header, l4_len, fill);
        self.emit(frame);
    }

    /// Retries and times out pending resolutions at `now`.
    pub fn tick(&mut self, now: Instant) {
        if self.arp.waiting() == 0 {
            return;
        }
        let mut resend = Vec::new();
        let dropped = self.arp.tick(now, &mut resend);
        for _ in 0..dropped {
            self.drop_frame(DropReason::ArpUnresolved);
        }
        for ip in resend {
            self.send_arp_request(ip);
        }
    }
}
