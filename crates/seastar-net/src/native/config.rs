//! [`NativeConfig`]: what the native stack runs on, and [`NetworkArgs`],
//! Seastar's command-line options that choose a stack.
//!
//! ```
//! use clap::Parser;
//! use seastar_net::native::config::{NetworkArgs, NetworkStack};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     net: NetworkArgs,
//! }
//!
//! let args = Args::parse_from(["app"]);
//! assert_eq!(args.net.network_stack, NetworkStack::Posix);
//! assert!(args.net.native_config().unwrap().is_none());
//!
//! let args = Args::parse_from([
//!     "app", "--network-stack", "native", "--tap-device", "tap0",
//!     "--host-ipv4-addr", "10.0.0.2", "--gw-ipv4-addr", "10.0.0.1",
//! ]);
//! let cfg = args.net.native_config().unwrap().unwrap();
//! assert_eq!(cfg.iface.addr, "10.0.0.2".parse::<std::net::Ipv4Addr>().unwrap());
//! assert_eq!(cfg.iface.netmask, "255.255.255.0".parse::<std::net::Ipv4Addr>().unwrap());
//! ```

use std::net::Ipv4Addr;

use super::device::DeviceSpec;
pub use super::iface::IfaceAddrs;
use super::state::StackOptions;

/// Everything [`start`](super::start) needs.
#[derive(Clone, Debug)]
pub struct NativeConfig {
    /// The device, opened once per queue with
    /// [`device::open`](super::device::open).
    pub device: DeviceSpec,
    /// Our addresses.
    pub iface: IfaceAddrs,
    /// How many shards get a queue of the device (shards `0..queues`);
    /// the others hand their frames to one of those. `None`: every shard.
    pub queues: Option<usize>,
    /// Queue bounds and timers.
    pub options: StackOptions,
}

/// `--network-stack`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkStack {
    /// The kernel's sockets.
    #[default]
    Posix,
    /// The user-space stack on an AF_XDP or TAP device.
    Native,
}

/// Why the network options do not make a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--network-stack native` without a device.
    #[error("--network-stack native needs --xdp-device IFACE or --tap-device NAME")]
    NoDevice,
    /// Both device options.
    #[error("--xdp-device and --tap-device exclude each other")]
    TwoDevices,
    /// `--network-stack native` without an address.
    #[error("--network-stack native needs --host-ipv4-addr")]
    NoAddress,
    /// A device option given for the posix stack.
    #[error("--xdp-device, --tap-device and the IPv4 address options need --network-stack native")]
    NotNative,
    /// A netmask that is not a run of ones then zeros.
    #[error("--netmask-ipv4-addr {0} is not a netmask")]
    BadNetmask(Ipv4Addr),
}

/// Seastar's network options, for apps to flatten into their arguments.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NetworkArgs {
    /// The network stack: the kernel's (posix) or our own (native).
    #[arg(long, value_enum, default_value_t = NetworkStack::Posix)]
    pub network_stack: NetworkStack,
    /// Native stack: the interface to drive through AF_XDP sockets (this
    /// or `--tap-device` with `--network-stack native`; none by default).
    #[arg(long, value_name = "IFACE")]
    pub xdp_device: Option<String>,
    /// Native stack: the TAP interface to use (none by default).
    #[arg(long, value_name = "NAME")]
    pub tap_device: Option<String>,
    /// Native stack: our IPv4 address (required with the native stack;
    /// none by default).
    #[arg(long, value_name = "ADDR")]
    pub host_ipv4_addr: Option<Ipv4Addr>,
    /// Native stack: the default gateway.
    #[arg(long, value_name = "ADDR")]
    pub gw_ipv4_addr: Option<Ipv4Addr>,
    /// Native stack: the subnet mask (default 255.255.255.0).
    #[arg(long, value_name = "MASK")]
    pub netmask_ipv4_addr: Option<Ipv4Addr>,
}

impl NetworkArgs {
    /// The native stack's configuration, or `None` for the posix stack
    /// (which never takes the native options: they are refused, so that a
    /// mistyped command line does not silently run on the kernel).
    pub fn native_config(&self) -> Result<Option<NativeConfig>, ConfigError> {
        let native_only = self.xdp_device.is_some()
            || self.tap_device.is_some()
            || self.host_ipv4_addr.is_some()
            || self.gw_ipv4_addr.is_some()
            || self.netmask_ipv4_addr.is_some();
        if self.network_stack == NetworkStack::Posix {
            return if native_only {
                Err(ConfigError::NotNative)
            } else {
                Ok(None)
            };
        }
        let device = match (&self.xdp_device, &self.tap_device) {
            (Some(x), None) => DeviceSpec::xdp(x.clone()),
            (None, Some(t)) => DeviceSpec::tap(t.clone()),
            (None, None) => return Err(ConfigError::NoDevice),
            (Some(_), Some(_)) => return Err(ConfigError::TwoDevices),
        };
        let addr = self.host_ipv4_addr.ok_or(ConfigError::NoAddress)?;
        let netmask = self
            .netmask_ipv4_addr
            .unwrap_or(Ipv4Addr::new(255, 255, 255, 0));
        let bits = netmask.to_bits();
        if bits.leading_ones() + bits.trailing_zeros() != 32 {
            return Err(ConfigError::BadNetmask(netmask));
        }
        Ok(Some(NativeConfig {
            device,
            iface: IfaceAddrs {
                addr,
                netmask,
                gateway: self.gw_ipv4_addr,
            },
            queues: None,
            options: StackOptions::default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        net: NetworkArgs,
    }

    fn parse(args: &[&str]) -> Result<Option<NativeConfig>, ConfigError> {
        let mut v = vec!["app"];
        v.extend_from_slice(args);
        Args::try_parse_from(v).unwrap().net.native_config()
    }

    #[test]
    fn the_posix_stack_is_the_default_and_refuses_native_options() {
        assert!(parse(&[]).unwrap().is_none());
        assert!(parse(&["--network-stack", "posix"]).unwrap().is_none());
        assert_eq!(
            parse(&["--tap-device", "t"]).unwrap_err(),
            ConfigError::NotNative
        );
        assert!(Args::try_parse_from(["app", "--network-stack", "dpdk"]).is_err());
    }

    #[test]
    fn native_needs_one_device_and_an_address() {
        let n = ["--network-stack", "native"];
        assert_eq!(parse(&n).unwrap_err(), ConfigError::NoDevice);
        let mut a = n.to_vec();
        a.extend(["--xdp-device", "veth0", "--tap-device", "t"]);
        assert_eq!(parse(&a).unwrap_err(), ConfigError::TwoDevices);
        let mut a = n.to_vec();
        a.extend(["--xdp-device", "veth0"]);
        assert_eq!(parse(&a).unwrap_err(), ConfigError::NoAddress);
        a.extend([
            "--host-ipv4-addr",
            "10.1.0.2",
            "--netmask-ipv4-addr",
            "255.0.255.0",
        ]);
        assert_eq!(
            parse(&a).unwrap_err(),
            ConfigError::BadNetmask(Ipv4Addr::new(255, 0, 255, 0))
        );
        a.pop();
        a.push("255.255.0.0");
        let cfg = parse(&a).unwrap().unwrap();
        assert!(matches!(cfg.device, DeviceSpec::Xdp { ref iface, .. } if iface == "veth0"));
        assert_eq!(cfg.iface.netmask, Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(cfg.iface.gateway, None);
    }
}
