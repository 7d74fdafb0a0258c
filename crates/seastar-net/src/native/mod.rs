//! The native network stack: frames from a device owned by this shard go
//! through Ethernet, ARP, IPv4, ICMP and UDP in user space, on the shard
//! that owns their flow, with no syscall per packet.
//!
//! # Map of the module
//!
//! | module | what it holds |
//! |---|---|
//! | [`device`] | the [`Device`](device::Device) trait a stack drives: AF_XDP and TAP devices, an in-memory pair for tests |
//! | [`checksum`] | the Internet checksum, summed incrementally |
//! | [`ethernet`] | Ethernet II headers, [`Mac`](ethernet::Mac) |
//! | [`arp`] | ARP packets for IPv4 over Ethernet |
//! | [`ipv4`] | IPv4 header checks and building |
//! | [`icmp`] | ICMP echo requests and replies, port unreachable |
//! | [`udp`] | UDP header checks (pseudo-header checksum) and building |
//! | [`rss`] | the Toeplitz hash and the rule mapping a flow to its shard |
//! | [`iface`] | our addresses and next-hop choice |
//! | [`arp_cache`] | the ARP cache with expiry and the queue of frames waiting for a resolution |
//! | [`state`] | one shard's protocol state, without device or reactor (tests and fuzzing drive it) |
//! | `input` (private) | the receive path, each malformed case counted |
//! | `output` (private) | UDP sends built in place in the device, ARP requests, replies, announces |
//! | `stack` (private) | a shard's running stack: state, device, reactor poller, RSS hand-overs |
//! | [`stats`](mod@stats) | [`NativeStats`], drops by [`DropReason`], the `seastar_net_native_*` metrics; [`stats()`](fn@stats) reads them |
//! | `word_hash` (private) | the multiplicative hasher of the port and ARP tables |
//! | `socket` (private) | [`UdpSocket`]: the kernel-path socket's API on the native stack |
//! | [`config`] | [`NativeConfig`](config::NativeConfig), the `--network-stack` options ([`NetworkArgs`](config::NetworkArgs)) |
//! | `start` (private) | [`start`], [`start_with`], [`stop`] on every shard |
//! | `testbed` (feature `native-testbed`) | two network namespaces joined by a veth pair, for tests and `cargo xtask netns` |

// `unsafe` (the libc calls and the shared rings) lives in `device` and
// `testbed` only.

pub mod arp;
pub mod arp_cache;
pub mod checksum;
pub mod config;
#[allow(unsafe_code)]
pub mod device;
pub mod ethernet;
pub mod icmp;
pub mod iface;
mod input;
pub mod ipv4;
mod output;
pub mod rss;
mod socket;
mod stack;
mod start;
pub mod state;
pub mod stats;
#[cfg(feature = "native-testbed")]
#[allow(unsafe_code)]
pub mod testbed;
pub mod udp;
mod word_hash;

pub use socket::UdpSocket;
pub use start::{StartError, start, start_with, stop};
pub use stats::{DropReason, NativeStats};

/// The calling shard's counters of the native stack (`None`: not started
/// on this shard).
///
/// # Panics
///
/// Outside a shard.
pub fn stats() -> Option<NativeStats> {
    stack::current().map(|s| s.state.borrow().stats())
}
