//! The AF_XDP device: frames go between the NIC (or veth) driver and our
//! UMEM with no socket buffer and no system call per frame.
//!
//! | file | what it holds |
//! |---|---|
//! | `bpf.rs` | our 5-instruction XDP program, its XSKMAP, raw `bpf()` calls, the link that attaches it |
//! | `umem.rs` | the UMEM: mapped, registered memory split into frames |
//! | `rings.rs` | the fill, RX, TX and completion rings shared with the kernel |
//! | `socket.rs` | [`XdpDevice`]: one socket and UMEM per queue, as a [`Device`](super::Device) |
//!
//! # Why not `xdpilone`
//!
//! `xdpilone` is pure Rust and covers the UMEM and the rings, but it is
//! licensed EUPL-1.2 (copyleft) while this workspace is MIT OR Apache-2.0,
//! and it loads no program, so the `bpf()` half would be ours anyway. The
//! rings are ~200 lines of index arithmetic with their ordering argument
//! written down in `rings.rs`; owning them also lets us batch exactly as
//! the copy-mode kernel wants (one `sendto` per 32 frames, one refill per
//! receive batch). So we use `libc` alone.
//!
//! # Memory
//!
//! A socket's UMEM is at most [`UMEM_MAX`] (4 MiB, the default is 2 MiB):
//! the memlock limit is 8 MiB for a non-root user, shared by every shard.

mod bpf;
mod rings;
mod socket;
mod umem;

pub use bpf::XdpMode;
pub use socket::{UMEM_MAX, XdpDevice, XdpOptions};
