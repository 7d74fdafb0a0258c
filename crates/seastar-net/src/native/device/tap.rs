//! [`TapDevice`]: one queue of a multi-queue TAP interface, for machines
//! (or containers) without AF_XDP.
//!
//! The TAP interface is the kernel's end of a virtual wire; our stack is
//! the other end, with a hardware address of its own (by default a locally
//! administered one derived from the interface name, so every queue of one
//! interface shares it). Each queue is one file descriptor of
//! `/dev/net/tun` attached with `IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE`;
//! the kernel spreads its transmitted frames over the queues by flow.
//!
//! A read returns one frame and a write sends one: [`Device::receive`]
//! reads (non-blocking) until the budget or `EAGAIN`, and
//! [`Device::flush`] writes the frames [`Device::transmit`] queued (one
//! `write` per frame: TAP has no batched write). A TAP interface created
//! here lives in the calling thread's network namespace and goes away when
//! its last queue is closed, unless it was created persistent (`ip tuntap
//! add ... multi_queue`), in which case we just attach to it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::{Device, DeviceError};

/// Options of a TAP device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TapOptions {
    /// Our hardware address; default: `02:53:53` followed by three bytes
    /// of a hash of the interface name.
    pub mac: Option<[u8; 6]>,
}

/// Frames queued for one flush at most.
const TX_QUEUE: usize = 256;

/// Largest frame we read (the kernel never sends more than its MTU plus the
/// header; a larger MTU than 9000 is not supported).
const RX_BUF: usize = 9018;

/// One queue of a TAP interface.
#[derive(Debug)]
pub struct TapDevice {
    file: File,
    name: String,
    mac: [u8; 6],
    frame_max: usize,
    rx_buf: Vec<u8>,
    /// Frames to write at the next flush.
    tx: Vec<Vec<u8>>,
    /// Spare frame buffers.
    spare: Vec<Vec<u8>>,
    /// Frames the kernel would not take (`EAGAIN`, `EIO` while down), dropped.
    dropped: u64,
}

/// The default hardware address for interface `name` (FNV-1a of the name).
fn default_mac(name: &str) -> [u8; 6] {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let b = h.to_be_bytes();
    [0x02, 0x53, 0x53, b[1], b[2], b[3]]
}

impl TapDevice {
    /// Attaches one new queue to TAP interface `name` (created if it does
    /// not exist in this network namespace).
    pub fn open(name: &str, opts: &TapOptions) -> Result<Self, DeviceError> {
        let err = |what: &'static str, source: io::Error| DeviceError::Tap {
            name: name.to_owned(),
            what,
            source,
        };
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(DeviceError::Invalid(format!(
                "TAP name `{name}` (1 to {} bytes)",
                libc::IFNAMSIZ - 1
            )));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| err("opening /dev/net/tun", e))?;
        // SAFETY: plain old data; all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE) as i16;
        // SAFETY: `req` is a valid `ifreq` the kernel reads (and writes the
        // final name into) for TUNSETIFF.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF as _, &mut req) };
        if rc < 0 {
            return Err(err(
                "attaching a queue (TUNSETIFF IFF_TAP|IFF_NO_PI|IFF_MULTI_QUEUE)",
                io::Error::last_os_error(),
            ));
        }
        let mtu = super::iface::mtu(name).unwrap_or(1500) as usize;
        Ok(TapDevice {
            file,
            name: name.to_owned(),
            mac: opts.mac.unwrap_or_else(|| default_mac(name)),
            frame_max: (mtu + 14).min(RX_BUF),
            rx_buf: vec![0; RX_BUF],
            tx: Vec::with_capacity(TX_QUEUE),
            spare: Vec::new(),
            dropped: 0,
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frames dropped because the kernel refused them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Device for TapDevice {
    fn receive(&mut self, budget: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < budget {
            match self.file.read(&mut self.rx_buf) {
                Ok(0) => break,
                Ok(len) => {
                    f(&self.rx_buf[..len]);
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EAGAIN: nothing more; EIO/EBADFD while the link is down.
                Err(_) => break,
            }
        }
        n
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<()> {
        if len > self.frame_max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes (at most {})", self.frame_max),
            ));
        }
        if self.tx.len() >= TX_QUEUE {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.resize(len, 0);
        fill(&mut buf);
        self.tx.push(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for buf in self.tx.drain(..) {
            match (&self.file).write(&buf) {
                Ok(_) => {}
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EIO | libc::EINVAL) => self.dropped += 1,
                    _ => {
                        self.dropped += 1;
                        result = Err(e);
                    }
                },
            }
            if self.spare.len() < TX_QUEUE {
                self.spare.push(buf);
            }
        }
        result
    }

    fn wake_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn frame_max(&self) -> usize {
        self.frame_max
    }
}
