//! The receive path: one frame through Ethernet, ARP or IPv4, then ICMP or
//! UDP, each malformed case counted under its [`DropReason`].

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::arp::{ArpError, ArpPacket, Op};
use super::ethernet::{self, EtherType, Frame, Mac};
use super::icmp::{self, Echo, IcmpError};
use super::ipv4::{self, Ipv4Error, Protocol};
use super::rss;
use super::state::State;
use super::stats::DropReason;
use super::udp::{self, UdpError};

impl State {
    /// Processes one received frame at `now`. `handed`: it was received
    /// by another shard and handed to this one, its owner.
    pub fn input(&mut self, frame: &[u8], now: Instant, handed: bool) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        if handed {
            self.stats.handover_rx_in += 1;
        }
        let f = match Frame::parse(frame) {
            Ok(f) => f,
            Err(ethernet::EthernetError::Truncated) => {
                return self.drop_frame(DropReason::TooShort);
            }
        };
        if f.dst != self.iface.mac && f.dst != Mac::BROADCAST {
            return self.drop_frame(DropReason::NotForUs);
        }
        match f.ethertype {
            EtherType::ARP => self.input_arp(&f, now),
            EtherType::IPV4 => self.input_ipv4(frame, &f, now, handed),
            _ => self.drop_frame(DropReason::BadEthertype),
        }
    }

    fn input_arp(&mut self, f: &Frame<'_>, now: Instant) {
        let p = match ArpPacket::parse(f.payload) {
            Ok(p) => p,
            Err(ArpError::Truncated) => return self.drop_frame(DropReason::TooShort),
            Err(_) => return self.drop_frame(DropReason::BadArp),
        };
        if p.sender_mac.is_multicast() || p.sender_ip.is_unspecified() && p.op == Op::Reply {
            return self.drop_frame(DropReason::BadArp);
        }
        let ours = self.iface.addr;
        match p.op {
            Op::Request => {
                self.stats.arp_requests_in += 1;
                if p.target_ip == ours && p.sender_ip != ours {
                    if !p.sender_ip.is_unspecified() {
                        self.learn(p.sender_ip, p.sender_mac, now, true);
                    }
                    self.send_arp_reply(&p);
                } else if p.sender_ip == p.target_ip && self.arp.contains(p.sender_ip) {
                    // A gratuitous announce refreshes what we know.
                    self.learn(p.sender_ip, p.sender_mac, now, true);
                } else {
                    self.drop_frame(DropReason::NotForUs);
                }
            }
            Op::Reply => {
                self.stats.arp_replies_in += 1;
                if p.sender_ip != ours && (p.target_ip == ours || self.arp.contains(p.sender_ip)) {
                    self.learn(p.sender_ip, p.sender_mac, now, true);
                } else {
                    self.drop_frame(DropReason::NotForUs);
                }
            }
        }
    }

    /// Records `ip` at `mac`, sends what waited for it, and (`share`)
    /// queues the mapping for the other shards.
    pub(crate) fn learn(&mut self, ip: Ipv4Addr, mac: Mac, now: Instant, share: bool) {
        for frame in self.arp.learn(ip, mac, now) {
            self.emit(frame);
        }
        if share && self.shards > 1 {
            self.learned.push((ip, mac));
        }
    }

    fn input_ipv4(&mut self, frame: &[u8], f: &Frame<'_>, now: Instant, handed: bool) {
        let (h, payload) = match ipv4::Header::parse(f.payload) {
            Ok(x) => x,
            Err(e) => {
                return self.drop_frame(match e {
                    Ipv4Error::Truncated => DropReason::TooShort,
                    Ipv4Error::Checksum => DropReason::BadChecksum,
                    Ipv4Error::Options => DropReason::IpOptions,
                    Ipv4Error::Fragment => DropReason::Fragment,
                    Ipv4Error::Version(_) | Ipv4Error::BadLength | Ipv4Error::Ttl => {
                        DropReason::BadIpHeader
                    }
                });
            }
        };
        if h.dst != self.iface.addr {
            return self.drop_frame(DropReason::NotForUs);
        }
        match h.protocol {
            Protocol::ICMP => self.input_icmp(f.src, &h, payload),
            Protocol::UDP => self.input_udp(frame, f, &h, payload, now, handed),
            _ => self.drop_frame(DropReason::UnsupportedProtocol),
        }
    }

    fn input_icmp(&mut self, from: Mac, h: &ipv4::Header, message: &[u8]) {
        match Echo::parse(message) {
            Ok(echo) => {
                self.stats.icmp_echo_replies += 1;
                self.send_ipv4_via(from, h.src, Protocol::ICMP, echo.len(), |b| {
                    echo.write_reply(b)
                });
            }
            Err(IcmpError::Truncated) => self.drop_frame(DropReason::TooShort),
            Err(IcmpError::Checksum) => self.drop_frame(DropReason::BadChecksum),
            Err(IcmpError::NotEchoRequest(..)) => self.drop_frame(DropReason::IcmpIgnored),
        }
    }

    fn input_udp(
        &mut self,
        frame: &[u8],
        f: &Frame<'_>,
        h: &ipv4::Header,
        dgram: &[u8],
        now: Instant,
        handed: bool,
    ) {
        let (u, payload) = match udp::Header::parse(dgram, h.src, h.dst) {
            Ok(x) => x,
            Err(UdpError::Truncated) => return self.drop_frame(DropReason::TooShort),
            Err(UdpError::BadLength) => return self.drop_frame(DropReason::BadUdpLength),
            Err(UdpError::Checksum) => return self.drop_frame(DropReason::BadChecksum),
        };
        if !handed {
            let owner = rss::udp_owner(h.src, h.dst, u.src_port, u.dst_port, self.shards);
            if owner != self.shard {
                self.stats.handover_rx_out += 1;
                self.handover_rx[owner].push(frame.to_vec());
                return;
            }
        }
        let from = SocketAddrV4::new(h.src, u.src_port);
        let Some(sock) = self.sockets.get(&u.dst_port) else {
            self.drop_frame(DropReason::NoSocket);
            if self.unreachable_allowed(now) {
                self.send_port_unreachable(f.src, h.src, f.payload, dgram);
            }
            return;
        };
        match sock.push(from, payload) {
            Ok(()) => self.stats.udp_in += 1,
            Err(reason) => self.drop_frame(reason),
        }
    }

    fn send_port_unreachable(&mut self, to: Mac, dst: Ipv4Addr, ip_packet: &[u8], dgram: &[u8]) {
        // Quote the IP header and the first 8 bytes of the datagram.
        let quoted = &ip_packet[..ipv4::HEADER_LEN + dgram.len().min(8)];
        self.stats.icmp_unreachable += 1;
        self.send_ipv4_via(
            to,
            dst,
            Protocol::ICMP,
            icmp::HEADER_LEN + quoted.len(),
            |b| {
                icmp::write_unreachable(b, icmp::PORT_UNREACHABLE, quoted);
            },
        );
    }
}
