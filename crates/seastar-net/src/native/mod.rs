//! The native network stack: frames from a device owned by this shard go
//! through Ethernet, ARP, IPv4, ICMP and UDP in user space, on the shard
//! that owns their flow, with no syscall per packet.
//!
//! # Map of the module
//!
//! | module | what it holds |
//! |---|---|
//! | [`device`] | the [`Device`](device::Device) trait a stack drives: AF_XDP and TAP devices, an in-memory pair for tests |

#![allow(unsafe_code)]

pub mod device;
