//! An in-memory device pair: frames sent on one end are received on the
//! other. Tests run a stack on one end and play the rest of the network
//! on the other; an eventfd per direction is the [`Device::wake_fd`].
//!
//! ```
//! use seastar_net::native::device::{Device, mem};
//! let (mut a, mut b) = mem::pair([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
//! a.send_frame(&[7u8; 60]).unwrap();
//! assert_eq!(b.recv_frame().unwrap(), vec![7u8; 60]);
//! assert!(b.recv_frame().is_none());
//! ```

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use super::Device;

/// Frames queued towards one end, and the eventfd that says so.
#[derive(Debug)]
struct Channel {
    frames: Mutex<VecDeque<Vec<u8>>>,
    event: File,
    cap: usize,
}

impl Channel {
    fn new(cap: usize) -> io::Result<Channel> {
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Channel {
            frames: Mutex::new(VecDeque::new()),
            event: File::from(fd),
            cap,
        })
    }

    fn signal(&self) {
        let _ = (&self.event).write(&1u64.to_ne_bytes());
    }

    fn clear(&self) {
        let mut b = [0u8; 8];
        let _ = (&self.event).read(&mut b);
    }
}

/// One end of an in-memory link.
#[derive(Debug)]
pub struct MemDevice {
    rx: Arc<Channel>,
    tx: Arc<Channel>,
    unflushed: Vec<Vec<u8>>,
    tx_slots: usize,
    mac: [u8; 6],
    frame_max: usize,
    lost: u64,
}

/// Two connected ends with MACs `a` and `b`, 256 transmit slots and 1024
/// frames of buffering per direction, frames up to 1514 bytes.
///
/// # Panics
///
/// When no eventfd can be made.
pub fn pair(a: [u8; 6], b: [u8; 6]) -> (MemDevice, MemDevice) {
    pair_with(a, b, 256, 1024).expect("eventfd")
}

/// [`pair`] with `tx_slots` frames per end between flushes and `cap`
/// frames buffered per direction (beyond: lost, as on a wire).
pub fn pair_with(
    a: [u8; 6],
    b: [u8; 6],
    tx_slots: usize,
    cap: usize,
) -> io::Result<(MemDevice, MemDevice)> {
    let ab = Arc::new(Channel::new(cap)?);
    let ba = Arc::new(Channel::new(cap)?);
    let end = |rx: &Arc<Channel>, tx: &Arc<Channel>, mac| MemDevice {
        rx: rx.clone(),
        tx: tx.clone(),
        unflushed: Vec::new(),
        tx_slots,
        mac,
        frame_max: 1514,
        lost: 0,
    };
    Ok((end(&ba, &ab, a), end(&ab, &ba, b)))
}

impl MemDevice {
    /// Sends one frame now (transmit and flush).
    pub fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.transmit(frame.len(), &mut |b| b.copy_from_slice(frame))?;
        self.flush()
    }

    /// The next received frame, if any.
    pub fn recv_frame(&mut self) -> Option<Vec<u8>> {
        let mut out = None;
        self.receive(1, &mut |f| out = Some(f.to_vec()));
        out
    }

    /// Frames lost because the other end's buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

impl Device for MemDevice {
    fn receive(&mut self, budget: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut q = self.rx.frames.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() <= budget {
            self.rx.clear();
        }
        let n = q.len().min(budget);
        let batch: Vec<Vec<u8>> = q.drain(..n).collect();
        drop(q);
        for frame in &batch {
            f(frame);
        }
        n
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<()> {
        if len > self.frame_max {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        if self.unflushed.len() >= self.tx_slots {
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        // Garbage in the buffer, as a device's memory would hold: `fill`
        // must write every byte.
        let mut frame = vec![0xa5; len];
        fill(&mut frame);
        self.unflushed.push(frame);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.unflushed.is_empty() {
            return Ok(());
        }
        let mut q = self.tx.frames.lock().unwrap_or_else(|e| e.into_inner());
        for frame in self.unflushed.drain(..) {
            if q.len() < self.tx.cap {
                q.push_back(frame);
            } else {
                self.lost += 1;
            }
        }
        drop(q);
        self.tx.signal();
        Ok(())
    }

    fn wake_fd(&self) -> RawFd {
        self.rx.event.as_raw_fd()
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn frame_max(&self) -> usize {
        self.frame_max
    }
}
