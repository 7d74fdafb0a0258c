//! The native network stack: frames from a device owned by this shard go
//! through Ethernet, ARP, IPv4, ICMP and UDP in user space, on the shard
//! that owns their flow, with no syscall per packet.
//!
//! # Map of the module
//!
//! | module | what it holds |
//! |---|---|
//! | [`device`] | the [`Device`](device::Device) trait a stack drives: AF_XDP and TAP devices, an in-memory pair for tests |
| [`checksum`] | the Internet checksum, summed incrementally |
| [`ethernet`] | Ethernet II headers, [`Mac`](ethernet::Mac) |
| [`arp`] | ARP packets for IPv4 over Ethernet |
| [`ipv4`] | IPv4 header checks and building |
| [`icmp`] | ICMP echo requests and replies, port unreachable |
| [`udp`] | UDP header checks (pseudo-header checksum) and building |
| [`rss`] | the Toeplitz hash and the rule mapping a flow to its shard |

#![allow(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod device;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod rss;
pub mod udp;
