//! [`XdpDevice`]: one AF_XDP socket with its own UMEM, bound to one queue
//! of an interface, as a [`Device`].
//!
//! Receive: the RX ring's descriptors are handed to the caller in place and
//! their frames go straight back to the fill ring (a kick with `recvfrom`
//! only if the kernel set need-wakeup on the fill ring). Transmit: a frame
//! is written into a free UMEM frame and its descriptor pushed on the TX
//! ring; [`Device::flush`] publishes the batch and kicks the kernel with
//! one `sendto` (copy mode always wants it; the kernel sends at most 32
//! frames per call, so a larger batch takes one call per 32), then
//! reclaims the completion ring's addresses into the free list. Before a
//! sleep the stack may only publish the batch
//! ([`Device::publish_for_poll`]): the socket's poll handler, which the
//! sleep's poll of the socket calls (io_uring's `POLL_ADD` runs it when
//! submitted), transmits a batch of the TX ring as a `sendto` would, in
//! the system call that goes to sleep.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::bpf::{self, Attachment, XdpMode};
use super::rings::Ring;
use super::umem::Umem;
use crate::native::device::{Device, DeviceError, iface};

/// Options of an AF_XDP device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpOptions {
    /// UMEM frames (half receive, half transmit); with `frame_size` at
    /// most 4 MiB of UMEM. Default 1024 (2 MiB).
    pub frames: u32,
    /// Bytes per UMEM frame: 2048 or 4096. Default 2048.
    pub frame_size: u32,
    /// Skip native mode and attach in generic (skb) mode.
    pub force_generic: bool,
}

impl Default for XdpOptions {
    fn default() -> Self {
        XdpOptions {
            frames: 1024,
            frame_size: 2048,
            force_generic: false,
        }
    }
}

/// The most UMEM one socket takes (the memlock limit of a non-root user
/// is 8 MiB here, for every shard's socket together with the maps).
pub const UMEM_MAX: usize = 4 << 20;

/// Tries of `bind` while the queue is still busy from a socket just closed.
const BIND_TRIES: u32 = 20;

/// Frames the kernel sends per `sendto` in copy mode.
const KERNEL_TX_BATCH: u32 = 32;

/// One queue of an interface through an AF_XDP socket.
///
/// Field order is drop order: the rings are unmapped, then the socket is
/// closed, then the UMEM is unmapped, then the program is detached (if
/// this was its last socket).
#[derive(Debug)]
pub struct XdpDevice {
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    fd: OwnedFd,
    umem: Umem,
    attachment: Arc<Attachment>,
    /// Transmit frames not in the TX or completion rings.
    free_tx: Vec<u64>,
    /// Addresses received and to go back to the fill ring.
    refill: Vec<u64>,
    mac: [u8; 6],
    frame_max: usize,
    iface: String,
    queue: u32,
}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live `T` whose size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mmap_offsets(fd: RawFd) -> io::Result<libc::xdp_mmap_offsets> {
    // SAFETY: plain old data; all zeroes is a valid value.
    let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: `off` is writable for `len` bytes; the kernel writes at most that.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            &mut off as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
        return Err(io::Error::other(
            "kernel without ring flags (XDP_MMAP_OFFSETS v1)",
        ));
    }
    Ok(off)
}

fn sys(what: &'static str) -> impl FnOnce(io::Error) -> DeviceError {
    move |source| DeviceError::Sys { what, source }
}

impl XdpDevice {
    /// Opens queue `queue` of interface `iface`: attaches our XDP program
    /// (once per interface and process: native mode, else generic), then
    /// creates, maps and binds a socket with its UMEM.
    pub fn open(iface_name: &str, queue: u32, opts: &XdpOptions) -> Result<Self, DeviceError> {
        if !(opts.frame_size == 2048 || opts.frame_size == 4096) {
            return Err(DeviceError::Invalid(format!(
                "frame_size {} (2048 or 4096)",
                opts.frame_size
            )));
        }
        let umem_len = opts.frames as usize * opts.frame_size as usize;
        if opts.frames < 8 || !opts.frames.is_power_of_two() || umem_len > UMEM_MAX {
            return Err(DeviceError::Invalid(format!(
                "{} frames of {} bytes (a power of two from 8, at most {} MiB of UMEM)",
                opts.frames,
                opts.frame_size,
                UMEM_MAX >> 20
            )));
        }
        if queue >= bpf::MAX_QUEUES {
            return Err(DeviceError::Invalid(format!(
                "queue {queue} (at most {})",
                bpf::MAX_QUEUES - 1
            )));
        }
        let ifindex = iface::index(iface_name)?;
        let mac = iface::mac(iface_name)?;
        let mtu = iface::mtu(iface_name)?;
        let attachment = bpf::attach(iface_name, ifindex, opts.force_generic)?;

        // SAFETY: plain socket(2) call.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(DeviceError::last_os("creating an AF_XDP socket"));
        }
        // SAFETY: a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem = Umem::new(raw, opts.frames, opts.frame_size)
            .map_err(sys("registering the UMEM (XDP_UMEM_REG)"))?;
        let half = opts.frames / 2;
        let ring = opts.frames; // power of two, room for every frame
        setsockopt(raw, libc::XDP_UMEM_FILL_RING, &ring).map_err(sys("sizing the fill ring"))?;
        setsockopt(raw, libc::XDP_UMEM_COMPLETION_RING, &ring)
            .map_err(sys("sizing the completion ring"))?;
        setsockopt(raw, libc::XDP_RX_RING, &half).map_err(sys("sizing the RX ring"))?;
        setsockopt(raw, libc::XDP_TX_RING, &half).map_err(sys("sizing the TX ring"))?;
        let off = mmap_offsets(raw).map_err(sys("reading the ring offsets"))?;
        let map = "mapping the rings";
        let rx = Ring::map(raw, libc::XDP_PGOFF_RX_RING as u64, &off.rx, half, false)
            .map_err(sys(map))?;
        let tx = Ring::map(raw, libc::XDP_PGOFF_TX_RING as u64, &off.tx, half, true)
            .map_err(sys(map))?;
        let mut fill = Ring::map(raw, libc::XDP_UMEM_PGOFF_FILL_RING, &off.fr, ring, true)
            .map_err(sys(map))?;
        let comp = Ring::map(
            raw,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            &off.cr,
            ring,
            false,
        )
        .map_err(sys(map))?;

        // Receive frames: the first half, all in the fill ring.
        let fs = u64::from(opts.frame_size);
        for i in 0..u64::from(half) {
            fill.push(i * fs);
        }
        fill.submit();
        let free_tx = (u64::from(half)..u64::from(opts.frames))
            .map(|i| i * fs)
            .collect();

        bind(raw, ifindex, queue).map_err(|source| DeviceError::Bind {
            iface: iface_name.to_owned(),
            queue,
            source,
        })?;
        attachment
            .insert(queue, raw)
            .map_err(sys("inserting the socket into the XSKMAP"))?;
        tracing::debug!(
            iface = iface_name,
            queue,
            mode = ?attachment.mode(),
            "AF_XDP socket bound"
        );
        Ok(XdpDevice {
            rx,
            tx,
            fill,
            comp,
            fd,
            frame_max: (mtu as usize + 14).min(opts.frame_size as usize),
            umem,
            attachment,
            free_tx,
            refill: Vec::with_capacity(half as usize),
            mac,
            iface: iface_name.to_owned(),
            queue,
        })
    }

    /// The mode our XDP program runs in on this interface.
    pub fn mode(&self) -> XdpMode {
        self.attachment.mode()
    }

    /// The interface's name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The queue index.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Moves sent frames from the completion ring to the free list.
    fn reclaim(&mut self) {
        let n = self.comp.available(u32::MAX);
        for k in 0..n {
            let addr = self.comp.peek(k);
            self.free_tx
                .push(addr & !(u64::from(self.umem.frame_size()) - 1));
        }
        if n > 0 {
            self.comp.release(n);
        }
    }

    /// `sendto` with no data: the kernel sends what the TX ring holds.
    fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: a zero-length send on our socket; no buffer is read.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // Busy or out of buffers: the frames stay queued for the next
            // kick; a down interface drops them (as a NIC would).
            Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => Ok(()),
            _ => Err(e),
        }
    }
}

/// Binds `fd` to `queue` of `ifindex`, retrying `EBUSY` (the queue of a
/// socket closed a moment ago is released asynchronously).
fn bind(fd: RawFd, ifindex: u32, queue: u32) -> io::Result<()> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_USE_NEED_WAKEUP,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    let mut tries = 0;
    loop {
        // SAFETY: `sa` is a valid `sockaddr_xdp` whose size is passed.
        let r = unsafe {
            libc::bind(
                fd,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        tries += 1;
        if e.raw_os_error() != Some(libc::EBUSY) || tries >= BIND_TRIES {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(5 << tries.min(4)));
    }
}

impl Device for XdpDevice {
    fn receive(&mut self, budget: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let n = self.rx.available(budget.min(u32::MAX as usize) as u32);
        let mask = !(u64::from(self.umem.frame_size()) - 1);
        for k in 0..n {
            let d = self.rx.peek(k);
            if let Some(frame) = self.umem.slice(d.addr, d.len as usize) {
                f(frame);
            }
            self.refill.push(d.addr & mask);
        }
        if n > 0 {
            self.rx.release(n);
        }
        if !self.refill.is_empty() {
            // The fill ring has room for every frame of the UMEM.
            let room = self.fill.free(self.refill.len() as u32) as usize;
            let k = room.min(self.refill.len());
            for addr in self.refill.drain(..k) {
                self.fill.push(addr);
            }
            self.fill.submit();
            if self.fill.needs_wakeup() {
                // SAFETY: a zero-length non-blocking receive on our socket
                // (wakes the kernel's fill-ring processing); no buffer.
                unsafe {
                    libc::recvfrom(
                        self.fd.as_raw_fd(),
                        std::ptr::null_mut(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                };
            }
        }
        n as usize
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<()> {
        if len > self.frame_max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes (at most {})", self.frame_max),
            ));
        }
        if self.free_tx.is_empty() {
            self.reclaim();
        }
        if self.free_tx.is_empty() || self.tx.free(1) == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let Some(addr) = self.free_tx.pop() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        match self.umem.slice_mut(addr, len) {
            Some(buf) => fill(buf),
            None => {
                self.free_tx.push(addr);
                return Err(io::Error::other("UMEM frame out of range"));
            }
        }
        self.tx.push(libc::xdp_desc {
            addr,
            len: len as u32,
            options: 0,
        });
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let pushed = self.tx.unsubmitted();
        if pushed > 0 {
            self.tx.submit();
        }
        // Kick while the ring holds frames, one call per kernel batch (and
        // a bounded number of calls whatever the kernel does).
        let mut calls = self.tx.outstanding().div_ceil(KERNEL_TX_BATCH);
        let mut result = Ok(());
        while calls > 0 && (self.tx.needs_wakeup() || pushed > 0) {
            if let Err(e) = self.kick_tx() {
                result = Err(e);
                break;
            }
            calls -= 1;
            self.reclaim();
            if self.tx.outstanding() == 0 {
                break;
            }
        }
        self.reclaim();
        result
    }

    fn publish_for_poll(&mut self) -> bool {
        // The kernel's poll handler (`xsk_poll`) sends one batch, as one
        // `sendto` does: more frames than that take `flush`'s kicks.
        if self.tx.outstanding() + self.tx.unsubmitted() > KERNEL_TX_BATCH {
            return false;
        }
        self.tx.submit();
        self.reclaim();
        true
    }

    fn kick(&mut self) -> io::Result<()> {
        self.tx.submit();
        let r = if self.tx.outstanding() > 0 {
            self.kick_tx()
        } else {
            Ok(())
        };
        self.reclaim();
        r
    }

    fn rx_ready(&mut self) -> bool {
        self.rx.available(1) > 0
    }

    fn wake_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn frame_max(&self) -> usize {
        self.frame_max
    }
}
