//! Devices: where frames enter and leave the native stack.
//!
//! A device is one queue of one interface, owned by one shard and driven by
//! that shard's reactor poller: the stack calls [`Device::receive`] every
//! loop iteration, builds replies in place with [`Device::transmit`], and
//! pushes a whole batch out with one [`Device::flush`]. When the shard has
//! nothing to do it sleeps on [`Device::wake_fd`].

use std::io;
use std::os::fd::RawFd;

mod error;
pub mod iface;
pub mod mem;
mod open;
pub mod tap;
pub mod xdp;

pub use error::DeviceError;
pub use open::{DeviceSpec, open};
pub use tap::{TapDevice, TapOptions};
pub use xdp::{XdpDevice, XdpMode, XdpOptions};

/// One queue of a network interface, as the native stack drives it.
///
/// Frames are Ethernet frames without the FCS. Implementations never block.
pub trait Device {
    /// Hands up to `budget` received frames to `f`, oldest first, and
    /// returns how many it handed. Each frame is valid only during its
    /// call (it may live in the device's own memory: no copy is made).
    fn receive(&mut self, budget: usize, f: &mut dyn FnMut(&[u8])) -> usize;

    /// Builds one frame of `len` bytes in place (`fill` writes all of
    /// them) and queues it for transmission. `Err(WouldBlock)` when no
    /// transmit buffer is free: `fill` was not called; flush and retry
    /// later. `Err(InvalidInput)` when `len` exceeds [`Device::frame_max`].
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<()>;

    /// Hands the frames queued by [`Device::transmit`] to the kernel or
    /// the NIC (at most one syscall per call) and reclaims the buffers of
    /// frames already sent.
    fn flush(&mut self) -> io::Result<()>;

    /// Publishes the frames queued by [`Device::transmit`] without a
    /// kick, when a poll of [`wake_fd`](Device::wake_fd) transmits them
    /// (an AF_XDP socket's poll handler drives its TX ring), and returns
    /// `true`: the caller then polls the fd soon (the shard's sleep arms
    /// one), or calls [`kick`](Device::kick). `false`, and nothing done,
    /// where a poll would not (the caller flushes). Default: `false`.
    fn publish_for_poll(&mut self) -> bool {
        false
    }

    /// Has the kernel transmit what [`publish_for_poll`](Device::publish_for_poll)
    /// published and no poll has sent yet (nothing to do, and no system
    /// call, once one did). Default: [`flush`](Device::flush).
    fn kick(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// Whether received frames wait, as far as the device can tell without
    /// a system call (an AF_XDP socket looks at its RX ring). A device that
    /// cannot tell says `false`: its [`wake_fd`](Device::wake_fd) turns
    /// readable for them.
    fn rx_ready(&mut self) -> bool {
        false
    }

    /// A file descriptor that turns readable when frames wait: the shard
    /// sleeps on it when idle.
    fn wake_fd(&self) -> RawFd;

    /// The interface's hardware address.
    fn mac(&self) -> [u8; 6];

    /// The largest frame [`Device::transmit`] takes, Ethernet header
    /// included (1514 for an MTU of 1500).
    fn frame_max(&self) -> usize;
}
