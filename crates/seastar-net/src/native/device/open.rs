//! [`open`]: the device of one queue, from what the configuration names.

use super::{Device, DeviceError, TapDevice, TapOptions, XdpDevice, XdpOptions};

/// Which device the native stack runs on (`--xdp-device IFACE` or
/// `--tap-device NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// An interface driven through AF_XDP sockets, one per queue.
    Xdp {
        /// The interface's name.
        iface: String,
        /// UMEM size, forced generic mode.
        options: XdpOptions,
    },
    /// A multi-queue TAP interface, one file descriptor per queue.
    Tap {
        /// The TAP interface's name.
        name: String,
        /// Our hardware address.
        options: TapOptions,
    },
}

impl DeviceSpec {
    /// An AF_XDP device on `iface` with default options.
    pub fn xdp(iface: impl Into<String>) -> Self {
        DeviceSpec::Xdp {
            iface: iface.into(),
            options: XdpOptions::default(),
        }
    }

    /// A TAP device `name` with default options.
    pub fn tap(name: impl Into<String>) -> Self {
        DeviceSpec::Tap {
            name: name.into(),
            options: TapOptions::default(),
        }
    }
}

/// Opens queue `queue` of the device `spec` names. For TAP the queue index
/// is not chosen: each call attaches one more queue (call it once per
/// shard, in shard order).
pub fn open(spec: &DeviceSpec, queue: u32) -> Result<Box<dyn Device>, DeviceError> {
    match spec {
        DeviceSpec::Xdp { iface, options } => Ok(Box::new(XdpDevice::open(iface, queue, options)?)),
        DeviceSpec::Tap { name, options } => Ok(Box::new(TapDevice::open(name, options)?)),
    }
}
