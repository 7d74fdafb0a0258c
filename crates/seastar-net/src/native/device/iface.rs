//! Facts about a network interface, by name, through the classic
//! `ioctl`s on a datagram socket: index, hardware address, MTU; and the
//! ethtool switch that turns its transmit offloads off.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::DeviceError;

/// A zeroed `ifreq` naming `name`, or `None` when the name cannot be one
/// (empty, too long, or with a NUL).
fn ifreq(name: &str) -> Option<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return None;
    }
    // SAFETY: plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Some(req)
}

fn no_such(name: &str) -> DeviceError {
    DeviceError::NoSuchInterface {
        iface: name.to_owned(),
    }
}

/// `ioctl(socket, req, &mut ifreq)` on a fresh datagram socket.
fn ioctl(name: &str, req: libc::c_ulong, what: &'static str) -> Result<libc::ifreq, DeviceError> {
    let mut r = ifreq(name).ok_or_else(|| no_such(name))?;
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(DeviceError::last_os(
            "creating a socket for an interface ioctl",
        ));
    }
    // SAFETY: a new descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `r` is a valid `ifreq` the kernel reads and writes for `req`.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), req as _, &mut r) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODEV) {
            return Err(no_such(name));
        }
        return Err(DeviceError::Sys { what, source: e });
    }
    Ok(r)
}

/// The interface's index in this network namespace.
pub fn index(name: &str) -> Result<u32, DeviceError> {
    let c = std::ffi::CString::new(name).map_err(|_| no_such(name))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 { Err(no_such(name)) } else { Ok(i) }
}

/// The interface's hardware address.
pub fn mac(name: &str) -> Result<[u8; 6], DeviceError> {
    let r = ioctl(
        name,
        libc::SIOCGIFHWADDR,
        "reading the hardware address (SIOCGIFHWADDR)",
    )?;
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member.
    let sa = unsafe { r.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

/// The interface's MTU.
pub fn mtu(name: &str) -> Result<u32, DeviceError> {
    let r = ioctl(name, libc::SIOCGIFMTU, "reading the MTU (SIOCGIFMTU)")?;
    // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member.
    let mtu = unsafe { r.ifr_ifru.ifru_mtu };
    Ok(mtu.max(68) as u32)
}

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_SSG: u32 = 0x19;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SGSO: u32 = 0x24;

/// Turns off the interface's transmit checksum offload, scatter-gather,
/// TSO and GSO (`ethtool -K NAME tx off sg off tso off gso off`), so the
/// frames the kernel sends through it carry full checksums and are at most
/// one MTU long. Works in the calling thread's network namespace.
pub fn offloads_off(name: &str) -> Result<(), DeviceError> {
    let base = ifreq(name).ok_or_else(|| no_such(name))?;
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(DeviceError::last_os("creating a socket for ethtool"));
    }
    // SAFETY: a new descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    for cmd in [ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SSG, ETHTOOL_STXCSUM] {
        let mut v = EthtoolValue { cmd, data: 0 };
        let mut req = base;
        req.ifr_ifru.ifru_data = &mut v as *mut EthtoolValue as *mut libc::c_char;
        // SAFETY: `req` names the interface and points at `v`, a live
        // `ethtool_value` the kernel reads for SIOCETHTOOL.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENODEV) => return Err(no_such(name)),
                // The driver has no such switch: nothing to turn off.
                Some(libc::EOPNOTSUPP) => continue,
                _ => {
                    return Err(DeviceError::Sys {
                        what: "turning offloads off (SIOCETHTOOL)",
                        source: e,
                    });
                }
            }
        }
    }
    Ok(())
}
