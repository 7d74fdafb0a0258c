//! Frames the stack sends: UDP datagrams (built in place in the device
//! when the next hop is known), ARP requests, replies and announces.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::arp::{self, ArpPacket, Op};
use super::arp_cache::Enqueued;
use super::checksum::{self, Checksum};
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

/// Bytes of the Ethernet, IPv4 and UDP headers before a datagram's payload.
pub(crate) const UDP_HEAD: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN;

/// Offsets in [`UDP_HEAD`] of the fields each datagram fills in.
const IP_LEN_AT: usize = ethernet::HEADER_LEN + 2;
const IP_ID_AT: usize = ethernet::HEADER_LEN + 4;
const IP_CHECK_AT: usize = ethernet::HEADER_LEN + 10;
const UDP_AT: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;

/// The headers of the datagrams from one of our ports to one host through
/// one neighbour, built once: a datagram copies them and fills in its
/// lengths, IP id, destination port and checksums, whose constant words'
/// sums are kept (so a checksum costs the payload's sum and a few
/// additions, RFC 1071's incremental property). Byte for byte what
/// [`write_ipv4_frame`] and [`udp::write_header`] build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UdpTemplate {
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    /// The headers, with the per-datagram fields zero.
    head: [u8; UDP_HEAD],
    /// Sum of the IPv4 header's constant words.
    ip_sum: u32,
    /// Sum of the pseudo-header's addresses and protocol, and the source
    /// port.
    udp_sum: u32,
}

impl UdpTemplate {
    /// The headers from `src_port` of `src` (at `src_mac`) to `dst`
    /// through `dst_mac`.
    pub(crate) fn new(
        (src_mac, dst_mac): (Mac, Mac),
        src: Ipv4Addr,
        dst: Ipv4Addr,
        src_port: u16,
    ) -> UdpTemplate {
        let mut head = [0u8; UDP_HEAD];
        let rest = ethernet::write_header(&mut head, dst_mac, src_mac, EtherType::IPV4);
        let ip = &mut rest[..ipv4::HEADER_LEN];
        ip[0] = 0x45;
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
        ip[8] = ipv4::DEFAULT_TTL;
        ip[9] = Protocol::UDP.0;
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        head[UDP_AT..UDP_AT + 2].copy_from_slice(&src_port.to_be_bytes());
        let mut ip_sum = Checksum::new();
        ip_sum.add(&head[ethernet::HEADER_LEN..UDP_AT]);
        let mut udp_sum = Checksum::new();
        udp_sum.add_u32(src.to_bits());
        udp_sum.add_u32(dst.to_bits());
        udp_sum.add_u16(u16::from(Protocol::UDP.0));
        udp_sum.add_u16(src_port);
        UdpTemplate {
            src_mac,
            dst_mac,
            src,
            dst,
            src_port,
            head,
            ip_sum: u32::from(ip_sum.sum()),
            udp_sum: u32::from(udp_sum.sum()),
        }
    }

    /// Whether the headers are those of datagrams from `src_port` of
    /// `src` (at `src_mac`) to `dst` through `dst_mac`.
    fn fits(
        &self,
        (src_mac, dst_mac): (Mac, Mac),
        src: Ipv4Addr,
        dst: Ipv4Addr,
        src_port: u16,
    ) -> bool {
        self.src_port == src_port
            && self.dst == dst
            && self.dst_mac == dst_mac
            && self.src == src
            && self.src_mac == src_mac
    }

    /// Writes the whole frame of the datagram whose payload is the
    /// concatenation of `parts` (each copied once, straight into `buf`; `len`
    /// bytes in all) to
    /// `dst_port` with IP id `id` into `buf` (of [`ethernet::frame_len`]
    /// of its IP length), padding zeroed.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than the headers and the payload, or the IP
    /// packet longer than 65535 bytes.
    pub(crate) fn write_parts(
        &self,
        buf: &mut [u8],
        id: u16,
        dst_port: u16,
        (parts, len): (&[&[u8]], usize),
    ) {
        let udp_len = u16::try_from(udp::HEADER_LEN + len).expect("UDP datagram too long");
        let ip_len = udp_len
            .checked_add(ipv4::HEADER_LEN as u16)
            .expect("IPv4 packet too long");
        let (head, rest) = buf.split_at_mut(UDP_HEAD);
        let (data, pad) = rest.split_at_mut(len);
        let mut at = 0;
        for part in parts {
            data[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        // Summed once, over the payload as written.
        let payload_sum = checksum::sum(data);
        if !pad.is_empty() {
            pad.fill(0);
        }
        head.copy_from_slice(&self.head);
        // Sums of a few 16-bit words: no overflow of a u32.
        let ip_check = !checksum::fold(u64::from(self.ip_sum + u32::from(ip_len) + u32::from(id)));
        head[IP_LEN_AT..IP_LEN_AT + 2].copy_from_slice(&ip_len.to_be_bytes());
        head[IP_ID_AT..IP_ID_AT + 2].copy_from_slice(&id.to_be_bytes());
        head[IP_CHECK_AT..IP_CHECK_AT + 2].copy_from_slice(&ip_check.to_be_bytes());
        // The length counts twice: in the pseudo-header and the header.
        let udp = u64::from(self.udp_sum)
            + u64::from(dst_port)
            + (u64::from(udp_len) << 1)
            + u64::from(payload_sum);
        let check = match !checksum::fold(udp) {
            0 => 0xffff,
            s => s,
        };
        let u = &mut head[UDP_AT..];
        u[2..4].copy_from_slice(&dst_port.to_be_bytes());
        u[4..6].copy_from_slice(&udp_len.to_be_bytes());
        u[6..8].copy_from_slice(&check.to_be_bytes());
    }
}

impl State {
    fn ipv4_header(&mut self, dst: Ipv4Addr, protocol: Protocol) -> ipv4::Header {
        let id = self.next_ip_id();
        self.ipv4_header_with_id(dst, protocol, id)
    }

    /// Our IPv4 header to `dst` with IP id `id` (already drawn).
    fn ipv4_header_with_id(&self, dst: Ipv4Addr, protocol: Protocol, id: u16) -> ipv4::Header {
        ipv4::Header {
            src: self.iface.addr,
            dst,
            protocol,
            ttl: ipv4::DEFAULT_TTL,
            id,
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
        self.send_udp_parts(dev, now, src_port, dst, &[payload])
    }

    /// [`send_udp`](Self::send_udp) of the datagram whose payload is the
    /// concatenation of `parts` (each copied once, into the frame).
    pub fn send_udp_parts(
        &mut self,
        dev: Option<&mut dyn Device>,
        now: Instant,
        src_port: u16,
        dst: SocketAddrV4,
        parts: &[&[u8]],
    ) -> io::Result<()> {
        let len = parts.iter().map(|p| p.len()).sum();
        self.send_udp_payload(dev, now, src_port, dst, (parts, len))
    }

    /// [`send_udp_parts`](Self::send_udp_parts) with the payload's length
    /// (the sum of the parts' lengths) already known.
    pub(crate) fn send_udp_payload(
        &mut self,
        dev: Option<&mut dyn Device>,
        now: Instant,
        src_port: u16,
        dst: SocketAddrV4,
        payload: (&[&[u8]], usize),
    ) -> io::Result<()> {
        let (parts, payload_len) = payload;
        let ip_len = ipv4::HEADER_LEN + udp::HEADER_LEN + payload_len;
        let len = ethernet::frame_len(ip_len);
        if len > self.frame_max {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let Some(next_hop) = self.iface.next_hop(*dst.ip()) else {
            return Err(io::Error::from_raw_os_error(libc::ENETUNREACH));
        };
        let id = self.next_ip_id();
        let mac = self.arp.lookup(next_hop, now);
        self.stats.udp_out += 1;
        let Some(dst_mac) = mac else {
            // Built the long way: the template is for resolved neighbours.
            let src = SocketAddrV4::new(self.iface.addr, src_port);
            let header = self.ipv4_header_with_id(*dst.ip(), Protocol::UDP, id);
            let l4_len = ip_len - ipv4::HEADER_LEN;
            let payload = parts.concat();
            let mut frame = vec![0; len];
            write_ipv4_frame(
                &mut frame,
                (self.iface.mac, Mac::ZERO),
                &header,
                l4_len,
                |l4| write_udp(l4, src, dst, &payload),
            );
            self.wait_for(next_hop, frame, now);
            return Ok(());
        };
        let macs = (self.iface.mac, dst_mac);
        if !self
            .udp_template
            .as_ref()
            .is_some_and(|t| t.fits(macs, self.iface.addr, *dst.ip(), src_port))
        {
            self.udp_template = Some(UdpTemplate::new(macs, self.iface.addr, *dst.ip(), src_port));
        }
        let t = self.udp_template.as_ref().expect("built above");
        let Some(dev) = dev else {
            let mut frame = vec![0; len];
            t.write_parts(&mut frame, id, dst.port(), payload);
            self.emit(frame);
            return Ok(());
        };
        let mut fill = |buf: &mut [u8]| t.write_parts(buf, id, dst.port(), payload);
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
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drop_frame(DropReason::TxFull),
            Err(e) => return Err(e),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::checksum::checksum;

    const US: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const PEER: Mac = Mac([2, 0, 0, 0, 0, 2]);
    const SRC: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);

    /// The frame built the long way: headers written field by field,
    /// checksums summed over everything.
    fn long_way(id: u16, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let ip_len = ipv4::HEADER_LEN + udp::HEADER_LEN + payload.len();
        let mut frame = vec![0xaa; ethernet::frame_len(ip_len)];
        let header = ipv4::Header {
            src: SRC,
            dst: DST,
            protocol: Protocol::UDP,
            ttl: ipv4::DEFAULT_TTL,
            id,
        };
        let (src, dst) = (
            SocketAddrV4::new(SRC, src_port),
            SocketAddrV4::new(DST, dst_port),
        );
        write_ipv4_frame(
            &mut frame,
            (US, PEER),
            &header,
            ip_len - ipv4::HEADER_LEN,
            |l4| write_udp(l4, src, dst, payload),
        );
        frame
    }

    fn template_way(t: &UdpTemplate, id: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let ip_len = ipv4::HEADER_LEN + udp::HEADER_LEN + payload.len();
        let mut frame = vec![0xaa; ethernet::frame_len(ip_len)];
        t.write_parts(&mut frame, id, dst_port, (&[payload], payload.len()));
        frame
    }

    #[test]
    fn template_frames_equal_the_long_way_byte_for_byte() {
        let t = UdpTemplate::new((US, PEER), SRC, DST, 11211);
        let payload: Vec<u8> = (0..1472u32).map(|i| (i * 7 + 3) as u8).collect();
        let ids = [0u16, 1, 0x00ff, 0x8000, 0xffff];
        let ports = [1u16, 40000, 0xffff];
        for len in (0..=80).chain([255, 1000, 1471, 1472]) {
            for (k, &id) in ids.iter().enumerate() {
                let port = ports[(len + k) % ports.len()];
                let p = &payload[..len];
                let got = template_way(&t, id, port, p);
                assert_eq!(
                    got,
                    long_way(id, 11211, port, p),
                    "len {len} id {id} port {port}"
                );
                // And the receive side's checks accept it.
                let ip = &got[ethernet::HEADER_LEN..];
                let (h, dgram) = ipv4::Header::parse(ip).expect("IPv4 header verifies");
                assert_eq!(checksum(&ip[..ipv4::HEADER_LEN]), 0);
                let (u, data) = udp::Header::parse(dgram, h.src, h.dst).expect("UDP verifies");
                assert_eq!((u.src_port, u.dst_port, data), (11211, port, p));
            }
        }
    }

    #[test]
    fn a_payload_in_parts_makes_the_frame_of_its_concatenation() {
        let t = UdpTemplate::new((US, PEER), SRC, DST, 11211);
        let payload: Vec<u8> = (0..301u32).map(|i| (i * 13 + 5) as u8).collect();
        // Splits at even and odd offsets, empty parts included.
        for cuts in [
            vec![8],
            vec![1],
            vec![3, 4],
            vec![0, 0, 7],
            vec![5, 6, 13, 14],
            vec![300],
        ] {
            let mut parts = Vec::new();
            let mut at = 0;
            for c in &cuts {
                parts.push(&payload[at..*c]);
                at = *c;
            }
            parts.push(&payload[at..]);
            let ip_len = ipv4::HEADER_LEN + udp::HEADER_LEN + payload.len();
            let mut got = vec![0xaa; ethernet::frame_len(ip_len)];
            t.write_parts(&mut got, 77, 40000, (&parts, payload.len()));
            assert_eq!(got, long_way(77, 11211, 40000, &payload), "cuts {cuts:?}");
        }
    }

    #[test]
    fn a_zero_udp_checksum_goes_out_as_ffff_both_ways() {
        let t = UdpTemplate::new((US, PEER), SRC, DST, 53);
        // Find a two-byte payload whose checksum comes out as zero.
        let at = UDP_HEAD - 2;
        let word = (0..=u16::MAX)
            .find(|w| long_way(9, 53, 1000, &w.to_be_bytes())[at..at + 2] == [0xff, 0xff])
            .expect("some payload sums to zero");
        let p = word.to_be_bytes();
        assert_eq!(template_way(&t, 9, 1000, &p), long_way(9, 53, 1000, &p));
    }

    #[test]
    fn a_template_fits_only_its_own_flow() {
        let t = UdpTemplate::new((US, PEER), SRC, DST, 11211);
        assert!(t.fits((US, PEER), SRC, DST, 11211));
        let other = Mac([2, 0, 0, 0, 0, 3]);
        assert!(!t.fits((US, other), SRC, DST, 11211), "the neighbour moved");
        assert!(!t.fits((other, PEER), SRC, DST, 11211), "our MAC changed");
        assert!(!t.fits((US, PEER), DST, DST, 11211));
        assert!(!t.fits((US, PEER), SRC, SRC, 11211));
        assert!(!t.fits((US, PEER), SRC, DST, 11212));
    }
}
