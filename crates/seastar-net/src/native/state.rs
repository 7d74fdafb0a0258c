//! The protocol state of one shard's stack, free of devices and of the
//! reactor: frames go in through [`State::input`] (in `input.rs`), frames to
//! send come out in [`State::out`] and [`State::handover_tx`], and time is
//! a parameter. The stack (`stack.rs`) moves frames between it and a
//! device; tests and the fuzz target drive it directly.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::arp_cache::{ArpCache, ArpTimes};
use super::ethernet::Mac;
use super::iface::Iface;
use super::rss;
use super::socket::SocketQueue;
use super::stats::{DropReason, NativeStats};
use super::word_hash::WordMap;

/// Settings of a shard's stack beyond its addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackOptions {
    /// ARP cache times and queue bound.
    pub arp: ArpTimes,
    /// Datagrams a socket queues before dropping (counted).
    pub socket_queue: usize,
    /// ICMP port-unreachable messages sent per second at most (0: never).
    pub unreachable_per_sec: u32,
    /// Hand-over batches in flight towards one shard before dropping.
    pub handover_max: usize,
}

impl Default for StackOptions {
    fn default() -> StackOptions {
        StackOptions {
            arp: ArpTimes::default(),
            socket_queue: 256,
            unreachable_per_sec: 100,
            handover_max: 64,
        }
    }
}

/// A message between two shards' stacks.
#[derive(Debug)]
pub(crate) enum Handover {
    /// Received frames owned by the target shard.
    Rx(Vec<Vec<u8>>),
    /// Frames for the target's device, from a shard without one.
    Tx(Vec<Vec<u8>>),
    /// ARP mappings learned by the sender.
    Learn(Vec<(Ipv4Addr, Mac)>),
}

/// One shard's protocol state.
#[derive(Debug)]
pub struct State {
    pub(crate) iface: Iface,
    pub(crate) opts: StackOptions,
    pub(crate) shard: usize,
    pub(crate) shards: usize,
    /// Whether this shard has a device (else it hands its frames over).
    pub(crate) has_device: bool,
    pub(crate) frame_max: usize,
    pub(crate) arp: ArpCache,
    pub(crate) sockets: WordMap<u16, Rc<SocketQueue>>,
    pub(crate) stats: NativeStats,
    /// Frames to give to this shard's device.
    pub out: Vec<Vec<u8>>,
    /// Frames for a device shard (when this one has none).
    pub handover_tx: Vec<Vec<u8>>,
    /// Received frames owned by other shards, per shard.
    pub handover_rx: Vec<Vec<Vec<u8>>>,
    /// ARP mappings to share with the other shards.
    pub learned: Vec<(Ipv4Addr, Mac)>,
    pub(crate) ip_id: u16,
    /// The headers of the last UDP flow sent (see
    /// [`UdpTemplate`](super::output::UdpTemplate)): rebuilt when a
    /// datagram goes from another port, to another host or through
    /// another neighbour MAC.
    pub(crate) udp_template: Option<super::output::UdpTemplate>,
    next_ephemeral: u16,
    unreachable_window: Option<Instant>,
    unreachable_sent: u32,
}

impl State {
    /// A shard's state (`shard` of `shards`).
    pub fn new(
        iface: Iface,
        opts: StackOptions,
        shard: usize,
        shards: usize,
        has_device: bool,
        frame_max: usize,
    ) -> State {
        State {
            iface,
            opts,
            shard,
            shards: shards.max(1),
            has_device,
            frame_max,
            arp: ArpCache::new(opts.arp),
            sockets: WordMap::default(),
            stats: NativeStats::default(),
            out: Vec::new(),
            handover_tx: Vec::new(),
            handover_rx: (0..shards.max(1)).map(|_| Vec::new()).collect(),
            learned: Vec::new(),
            ip_id: 0,
            udp_template: None,
            next_ephemeral: *rss::EPHEMERAL.start(),
            unreachable_window: None,
            unreachable_sent: 0,
        }
    }

    /// This shard's counters.
    pub fn stats(&self) -> NativeStats {
        self.stats
    }

    /// Whether frames wait to be sent or handed over.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
            || !self.handover_tx.is_empty()
            || !self.learned.is_empty()
            || self.handover_rx.iter().any(|v| !v.is_empty())
    }

    pub(crate) fn drop_frame(&mut self, reason: DropReason) {
        tracing::trace!(shard = self.shard, ?reason, "native: frame dropped");
        self.stats.drop(reason);
    }

    /// Queues a complete frame for the device (or a device shard).
    pub(crate) fn emit(&mut self, frame: Vec<u8>) {
        if self.has_device {
            self.out.push(frame);
        } else {
            self.stats.frames_out += 1;
            self.stats.bytes_out += frame.len() as u64;
            self.stats.handover_tx_out += 1;
            self.handover_tx.push(frame);
        }
    }

    pub(crate) fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// Whether another port-unreachable message may go out at `now`.
    pub(crate) fn unreachable_allowed(&mut self, now: Instant) -> bool {
        if self.opts.unreachable_per_sec == 0 {
            return false;
        }
        match self.unreachable_window {
            Some(start) if now < start + Duration::from_secs(1) => {}
            _ => {
                self.unreachable_window = Some(now);
                self.unreachable_sent = 0;
            }
        }
        if self.unreachable_sent < self.opts.unreachable_per_sec {
            self.unreachable_sent += 1;
            true
        } else {
            false
        }
    }

    /// Binds `port` on this shard (0: an ephemeral port this shard owns
    /// by the [`rss`] rule) to a new socket queue.
    pub(crate) fn bind(&mut self, port: u16) -> io::Result<(u16, Rc<SocketQueue>)> {
        let port = if port == 0 {
            self.ephemeral_port()?
        } else if self.sockets.contains_key(&port) {
            return Err(io::Error::from(io::ErrorKind::AddrInUse));
        } else {
            port
        };
        let q = Rc::new(SocketQueue::new(self.opts.socket_queue));
        self.sockets.insert(port, q.clone());
        Ok((port, q))
    }

    /// Binds `port` (0: ephemeral) to a receive queue held by the state
    /// itself, for drivers without sockets (tests, fuzzing); returns the
    /// port.
    pub fn open_port(&mut self, port: u16) -> io::Result<u16> {
        self.bind(port).map(|(p, _)| p)
    }

    /// Unbinds `port`.
    pub fn close_port(&mut self, port: u16) {
        self.sockets.remove(&port);
    }

    /// Datagrams waiting on `port`, if bound.
    pub fn queued(&self, port: u16) -> Option<usize> {
        self.sockets.get(&port).map(|q| q.len())
    }

    /// Takes the oldest datagram queued on `port` (for drivers without
    /// sockets).
    pub fn take_datagram(&mut self, port: u16) -> Option<(SocketAddrV4, Vec<u8>)> {
        self.sockets.get(&port).and_then(|q| q.try_pop())
    }

    /// Frames waiting for ARP resolutions.
    pub fn arp_waiting(&self) -> usize {
        self.arp.waiting()
    }

    pub(crate) fn unbind(&mut self, port: u16, q: &Rc<SocketQueue>) {
        if self.sockets.get(&port).is_some_and(|s| Rc::ptr_eq(s, q)) {
            self.sockets.remove(&port);
        }
    }

    fn ephemeral_port(&mut self) -> io::Result<u16> {
        let (lo, hi) = (*rss::EPHEMERAL.start(), *rss::EPHEMERAL.end());
        let span = u32::from(hi - lo) + 1;
        let mut p = self.next_ephemeral;
        for _ in 0..span {
            let cand = p;
            p = if p == hi { lo } else { p + 1 };
            if usize::from(cand) % self.shards == self.shard && !self.sockets.contains_key(&cand) {
                self.next_ephemeral = p;
                return Ok(cand);
            }
        }
        Err(io::Error::from(io::ErrorKind::AddrInUse))
    }
}
