//! [`UdpSocket`] on the native stack: the kernel-path
//! [`crate::UdpSocket`]'s API, served by this shard's stack.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::task::{Poll, Waker};

use seastar_core::io::{IoBuf, IoBufMut};

use super::stack::{self, Stack};
use super::stats::DropReason;
use crate::BufResult;

/// The receive side of a bound port: a bounded queue of datagrams.
#[derive(Debug)]
pub(crate) struct SocketQueue {
    queue: RefCell<VecDeque<(SocketAddrV4, Vec<u8>)>>,
    cap: usize,
    /// Tasks waiting in `recv`/`recv_from` (all woken by a datagram; the
    /// losers wait again).
    wakers: RefCell<Vec<Waker>>,
    peer: Cell<Option<SocketAddrV4>>,
    /// Buffers of datagrams already read, for the next ones (a datagram
    /// costs no allocation once the queue has seen its high-water mark).
    spare: RefCell<Vec<Vec<u8>>>,
}

impl SocketQueue {
    pub(crate) fn new(cap: usize) -> SocketQueue {
        SocketQueue {
            queue: RefCell::new(VecDeque::new()),
            cap: cap.max(1),
            wakers: RefCell::new(Vec::new()),
            peer: Cell::new(None),
            spare: RefCell::new(Vec::new()),
        }
    }

    /// Queues a datagram from `from` (copied) and wakes the reader.
    pub(crate) fn push(&self, from: SocketAddrV4, payload: &[u8]) -> Result<(), DropReason> {
        if self.peer.get().is_some_and(|p| p != from) {
            return Err(DropReason::NoSocket);
        }
        let mut q = self.queue.borrow_mut();
        if q.len() >= self.cap {
            return Err(DropReason::SocketQueueFull);
        }
        let mut data = self.spare.borrow_mut().pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(payload);
        q.push_back((from, data));
        drop(q);
        // (Checked first: a `Drain` costs its drop even when empty, and
        // the reader is woken once per batch, not per datagram.)
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.is_empty() {
            for w in wakers.drain(..) {
                w.wake();
            }
        }
        Ok(())
    }

    /// Datagrams queued.
    pub(crate) fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Takes back the buffer of a datagram that was read.
    fn recycle(&self, data: Vec<u8>) {
        let mut spare = self.spare.borrow_mut();
        if spare.len() < self.cap.min(SPARE_COUNT) && data.capacity() <= SPARE_MAX {
            spare.push(data);
        }
    }

    /// The oldest datagram, if any.
    pub(crate) fn try_pop(&self) -> Option<(SocketAddrV4, Vec<u8>)> {
        self.queue.borrow_mut().pop_front()
    }

    async fn pop(&self) -> (SocketAddrV4, Vec<u8>) {
        poll_fn(|cx| match self.queue.borrow_mut().pop_front() {
            Some(d) => Poll::Ready(d),
            None => {
                let mut wakers = self.wakers.borrow_mut();
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

/// Largest buffer a socket keeps for reuse (a jumbo frame's datagram).
const SPARE_MAX: usize = 9 * 1024;

/// Most buffers a socket keeps for reuse.
const SPARE_COUNT: usize = 64;

fn v4(addr: SocketAddr) -> io::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the native stack is IPv4 only",
        )),
    }
}

/// A UDP socket on the native stack of the calling shard.
///
/// Binding a port binds it on this shard only: datagrams reach the shard
/// that owns their flow (see [`rss`](super::rss)), so a server binds its
/// port on every shard; `bind(…:0)` picks an ephemeral port this shard
/// owns, so replies come back here. Sends build the frame in the device
/// at once (no queue between the socket and the device); a datagram for a
/// neighbour not yet resolved waits in the ARP queue. Received datagrams
/// wait in a bounded queue (drops counted as `socket_queue_full`).
#[derive(Debug)]
pub struct UdpSocket {
    stack: Rc<Stack>,
    port: u16,
    queue: Rc<SocketQueue>,
}

impl UdpSocket {
    /// A socket bound to `addr` (port 0: an ephemeral port; the address
    /// must be unspecified or the stack's own).
    ///
    /// Errors: the stack is not running on this shard (`NotConnected`),
    /// an IPv6 or foreign address, a port already bound on this shard.
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let addr = v4(addr)?;
        let stack = stack::current().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "native stack not started on this shard",
            )
        })?;
        let (port, queue) = {
            let mut st = stack.state.borrow_mut();
            if !addr.ip().is_unspecified() && *addr.ip() != st.iface.addr {
                return Err(io::Error::from(io::ErrorKind::AddrNotAvailable));
            }
            st.bind(addr.port())?
        };
        Ok(UdpSocket { stack, port, queue })
    }

    /// Sets the default peer for [`send`](Self::send) and keeps only its
    /// datagrams for [`recv`](Self::recv) and
    /// [`recv_from`](Self::recv_from).
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        let a = v4(addr)?;
        self.queue.peer.set(Some(a));
        let peer = Some(a);
        self.queue
            .queue
            .borrow_mut()
            .retain(|(from, _)| Some(*from) == peer);
        Ok(())
    }

    /// Sends `buf` as one datagram to `addr`.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: SocketAddr) -> BufResult<usize, B> {
        let r = self.send_vectored_to(&[buf.init_slice()], addr);
        (r, buf)
    }

    /// Sends the concatenation of `parts` as one datagram to `addr`, each
    /// part copied once, straight into the frame (no buffer to hand over
    /// and no `await`: a send on the native stack never waits). Returns
    /// the datagram's length.
    ///
    /// ```no_run
    /// # async fn f(sock: &seastar_net::native::UdpSocket, peer: std::net::SocketAddr) -> std::io::Result<()> {
    /// let n = sock.send_vectored_to(&[b"VALUE k 0 1\r\n", b"x\r\nEND\r\n"], peer)?;
    /// assert_eq!(n, 21);
    /// # Ok(()) }
    /// ```
    pub fn send_vectored_to(&self, parts: &[&[u8]], addr: SocketAddr) -> io::Result<usize> {
        let a = v4(addr)?;
        let len = parts.iter().map(|p| p.len()).sum();
        self.stack.send_udp(self.port, a, (parts, len))?;
        Ok(len)
    }

    /// Receives one datagram into `buf` (from its start, up to its
    /// capacity; the rest of a longer datagram is lost); returns its length
    /// and sender.
    pub async fn recv_from<B: IoBufMut>(&self, mut buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (from, data) = self.queue.pop().await;
        let n = buf.put_slice(&data);
        self.queue.recycle(data);
        (Ok((n, SocketAddr::V4(from))), buf)
    }

    /// Receives one datagram whole, in a buffer of the socket's own (no
    /// copy out of the receive queue), and takes `spare` for a later
    /// datagram (the socket keeps a few such buffers); returns the sender
    /// and the datagram.
    pub async fn recv_from_owned(&self, spare: Vec<u8>) -> (SocketAddr, Vec<u8>) {
        let (from, data) = self.queue.pop().await;
        self.queue.recycle(spare);
        (SocketAddr::V4(from), data)
    }

    /// Sends `buf` as one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        match self.queue.peer.get() {
            Some(p) => self.send_to(buf, SocketAddr::V4(p)).await,
            None => (Err(io::Error::from(io::ErrorKind::NotConnected)), buf),
        }
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        if self.queue.peer.get().is_none() {
            return (Err(io::Error::from(io::ErrorKind::NotConnected)), buf);
        }
        let (r, buf) = self.recv_from(buf).await;
        (r.map(|(n, _)| n), buf)
    }

    /// The local address (the stack's address and the bound port).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let ip: Ipv4Addr = self.stack.state.borrow().iface.addr;
        Ok(SocketAddr::V4(SocketAddrV4::new(ip, self.port)))
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.queue
            .peer
            .get()
            .map(SocketAddr::V4)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Datagrams waiting in the receive queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        if let Ok(mut st) = self.stack.state.try_borrow_mut() {
            st.unbind(self.port, &self.queue);
        }
    }
}
