//! The native stack's counters on one shard: frames, bytes, drops by
//! reason, ARP, ICMP and RSS hand-overs.
//!
//! [`native::stats()`](fn@super::stats) reads them on the calling shard. With feature
//! `metrics` they are exported on every shard running the stack as:
//!
//! | name | labels | what |
//! |---|---|---|
//! | `seastar_net_native_frames_received_total` | | frames from the device or handed over by another shard |
//! | `seastar_net_native_frames_sent_total` | | frames given to a device or handed to a device shard |
//! | `seastar_net_native_bytes_received_total` | | bytes of those frames |
//! | `seastar_net_native_bytes_sent_total` | | bytes of those frames |
//! | `seastar_net_native_drops_total` | `reason` | frames or datagrams dropped, by [`DropReason`] |
//! | `seastar_net_native_arp_total` | `event` | ARP requests and replies in and out, announces |
//! | `seastar_net_native_icmp_total` | `event` | echo replies and port-unreachable messages sent |
//! | `seastar_net_native_udp_datagrams_total` | `direction` | datagrams delivered to sockets and sent by them |
//! | `seastar_net_native_rss_handovers_total` | `direction` | frames handed to another shard (`rx_out`, `tx_out`) or taken from one (`rx_in`, `tx_in`) |

/// Why a frame (or datagram) was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than a header of some layer.
    TooShort,
    /// Neither IPv4 nor ARP.
    BadEthertype,
    /// Addressed to another host (MAC or IP), or an ARP request for
    /// another address.
    NotForUs,
    /// A bad IPv4 header: version, lengths, TTL zero.
    BadIpHeader,
    /// An IPv4, ICMP or UDP checksum that does not verify.
    BadChecksum,
    /// An IPv4 fragment.
    Fragment,
    /// An IPv4 header with options.
    IpOptions,
    /// An IP protocol the stack does not serve (TCP until part 2).
    UnsupportedProtocol,
    /// A UDP length field below 8 or beyond the packet.
    BadUdpLength,
    /// A malformed or unsupported ARP packet.
    BadArp,
    /// An ICMP message other than an echo request.
    IcmpIgnored,
    /// No socket bound to the destination port on the owning shard.
    NoSocket,
    /// The socket's receive queue was full.
    SocketQueueFull,
    /// The queue of frames waiting for an ARP resolution was full.
    ArpQueueFull,
    /// A frame waited for an ARP resolution that never came.
    ArpUnresolved,
    /// The device had no free transmit buffer.
    TxFull,
    /// Too many hand-overs to another shard in flight.
    HandoverFull,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [DropReason; 17] = [
        DropReason::TooShort,
        DropReason::BadEthertype,
        DropReason::NotForUs,
        DropReason::BadIpHeader,
        DropReason::BadChecksum,
        DropReason::Fragment,
        DropReason::IpOptions,
        DropReason::UnsupportedProtocol,
        DropReason::BadUdpLength,
        DropReason::BadArp,
        DropReason::IcmpIgnored,
        DropReason::NoSocket,
        DropReason::SocketQueueFull,
        DropReason::ArpQueueFull,
        DropReason::ArpUnresolved,
        DropReason::TxFull,
        DropReason::HandoverFull,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::TooShort => "too_short",
            DropReason::BadEthertype => "bad_ethertype",
            DropReason::NotForUs => "not_for_us",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Fragment => "fragment",
            DropReason::IpOptions => "ip_options",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::BadUdpLength => "bad_udp_length",
            DropReason::BadArp => "bad_arp",
            DropReason::IcmpIgnored => "icmp_ignored",
            DropReason::NoSocket => "no_socket",
            DropReason::SocketQueueFull => "socket_queue_full",
            DropReason::ArpQueueFull => "arp_queue_full",
            DropReason::ArpUnresolved => "arp_unresolved",
            DropReason::TxFull => "tx_full",
            DropReason::HandoverFull => "handover_full",
        }
    }
}

/// One shard's counters of the native stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NativeStats {
    /// Frames received (from the device, or handed over).
    pub frames_in: u64,
    /// Frames sent (to the device, or handed to a device shard).
    pub frames_out: u64,
    /// Bytes of the frames received.
    pub bytes_in: u64,
    /// Bytes of the frames sent.
    pub bytes_out: u64,
    /// Drops, indexed like [`DropReason::ALL`] (see [`drops`](Self::drops)).
    pub drop_counts: [u64; 17],
    /// ARP requests received.
    pub arp_requests_in: u64,
    /// ARP replies received.
    pub arp_replies_in: u64,
    /// ARP requests sent (resolutions and announces).
    pub arp_requests_out: u64,
    /// ARP replies sent.
    pub arp_replies_out: u64,
    /// Gratuitous ARP announces sent.
    pub arp_announces: u64,
    /// ICMP echo replies sent.
    pub icmp_echo_replies: u64,
    /// ICMP port-unreachable messages sent.
    pub icmp_unreachable: u64,
    /// UDP datagrams queued to sockets.
    pub udp_in: u64,
    /// UDP datagrams sent by sockets.
    pub udp_out: u64,
    /// Received frames handed to the shard owning their flow.
    pub handover_rx_out: u64,
    /// Frames taken from another shard that received them.
    pub handover_rx_in: u64,
    /// Frames to send handed to a shard with a device.
    pub handover_tx_out: u64,
    /// Frames sent for a shard without a device.
    pub handover_tx_in: u64,
}

impl NativeStats {
    /// Drops for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drop_counts[reason as usize]
    }

    /// Drops of every reason.
    pub fn total_drops(&self) -> u64 {
        self.drop_counts.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drop_counts[reason as usize] += 1;
    }
}

/// Registers the exporter (once per process).
#[cfg(feature = "metrics")]
pub(crate) fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| seastar_core::metrics::register_collector("seastar-net-native", collect));
}

#[cfg(not(feature = "metrics"))]
pub(crate) fn register() {}

#[cfg(feature = "metrics")]
fn collect(c: &mut seastar_core::metrics::Collector<'_>) {
    let Some(s) = super::stats() else { return };
    let simple = [
        (
            "seastar_net_native_frames_received_total",
            "Frames received by the native stack.",
            s.frames_in,
        ),
        (
            "seastar_net_native_frames_sent_total",
            "Frames sent by the native stack.",
            s.frames_out,
        ),
        (
            "seastar_net_native_bytes_received_total",
            "Bytes of the frames received.",
            s.bytes_in,
        ),
        (
            "seastar_net_native_bytes_sent_total",
            "Bytes of the frames sent.",
            s.bytes_out,
        ),
    ];
    for (name, help, v) in simple {
        c.counter(name, help, &[], v);
    }
    for r in DropReason::ALL {
        c.counter(
            "seastar_net_native_drops_total",
            "Frames or datagrams dropped by the native stack, by reason.",
            &[("reason", r.label())],
            s.drops(r),
        );
    }
    let labelled = [
        (
            "seastar_net_native_arp_total",
            "ARP packets, by event.",
            "event",
            "request_in",
            s.arp_requests_in,
        ),
        (
            "seastar_net_native_arp_total",
            "ARP packets, by event.",
            "event",
            "reply_in",
            s.arp_replies_in,
        ),
        (
            "seastar_net_native_arp_total",
            "ARP packets, by event.",
            "event",
            "request_out",
            s.arp_requests_out,
        ),
        (
            "seastar_net_native_arp_total",
            "ARP packets, by event.",
            "event",
            "reply_out",
            s.arp_replies_out,
        ),
        (
            "seastar_net_native_arp_total",
            "ARP packets, by event.",
            "event",
            "announce",
            s.arp_announces,
        ),
        (
            "seastar_net_native_icmp_total",
            "ICMP messages sent, by kind.",
            "event",
            "echo_reply",
            s.icmp_echo_replies,
        ),
        (
            "seastar_net_native_icmp_total",
            "ICMP messages sent, by kind.",
            "event",
            "port_unreachable",
            s.icmp_unreachable,
        ),
        (
            "seastar_net_native_udp_datagrams_total",
            "UDP datagrams, by direction.",
            "direction",
            "in",
            s.udp_in,
        ),
        (
            "seastar_net_native_udp_datagrams_total",
            "UDP datagrams, by direction.",
            "direction",
            "out",
            s.udp_out,
        ),
        (
            "seastar_net_native_rss_handovers_total",
            "Frames handed between shards, by direction.",
            "direction",
            "rx_out",
            s.handover_rx_out,
        ),
        (
            "seastar_net_native_rss_handovers_total",
            "Frames handed between shards, by direction.",
            "direction",
            "rx_in",
            s.handover_rx_in,
        ),
        (
            "seastar_net_native_rss_handovers_total",
            "Frames handed between shards, by direction.",
            "direction",
            "tx_out",
            s.handover_tx_out,
        ),
        (
            "seastar_net_native_rss_handovers_total",
            "Frames handed between shards, by direction.",
            "direction",
            "tx_in",
            s.handover_tx_in,
        ),
    ];
    for (name, help, key, value, v) in labelled {
        c.counter(name, help, &[(key, value)], v);
    }
}
