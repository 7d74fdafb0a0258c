//! Why a device could not be brought up.

use std::io;

/// A device's bring-up failed. Each variant names the interface (and the
/// queue where one is involved) and keeps the kernel's error as its source.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// No interface of that name exists in this network namespace.
    #[error("no such network interface `{iface}` in this network namespace")]
    NoSuchInterface {
        /// The name asked for.
        iface: String,
    },
    /// The interface refused our XDP program in native (driver) mode and in
    /// generic (skb) mode.
    #[error(
        "interface `{iface}` refused the XDP program: native (drv) mode: {drv}; generic (skb) mode: {skb}"
    )]
    XdpRefused {
        /// The interface.
        iface: String,
        /// The error of the native-mode attach.
        drv: io::Error,
        /// The error of the generic-mode attach.
        skb: io::Error,
    },
    /// Binding the AF_XDP socket to the interface's queue failed (after
    /// retrying `EBUSY` a few times).
    #[error("binding an AF_XDP socket to `{iface}` queue {queue} failed: {source}")]
    Bind {
        /// The interface.
        iface: String,
        /// The queue index.
        queue: u32,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Opening or configuring the TAP device failed.
    #[error("TAP device `{name}`: {what}: {source}")]
    Tap {
        /// The TAP interface's name.
        name: String,
        /// The step that failed.
        what: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A system call of the bring-up failed (`what` says which step).
    #[error("{what} failed: {source}")]
    Sys {
        /// The step that failed.
        what: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The options asked for something the device cannot do.
    #[error("invalid device options: {0}")]
    Invalid(String),
}

impl DeviceError {
    /// `Sys` with the calling thread's `errno`.
    pub(crate) fn last_os(what: &'static str) -> Self {
        DeviceError::Sys {
            what,
            source: io::Error::last_os_error(),
        }
    }
}
