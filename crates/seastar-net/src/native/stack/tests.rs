//! The transmit kick held back while frames wait (see `Stack::settle`):
//! held once, then flushed with the next iteration's replies; never
//! longer than one more poll. And the kick left to the poll a sleep arms,
//! or made at once when that poll does not come.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use super::{Stack, install, now};
use crate::native::device::Device;
use crate::native::ethernet::Mac;
use crate::native::iface::Iface;
use crate::native::state::StackOptions;

const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

/// A device whose receive queue the test fills and whose flushes it counts.
struct Probe {
    inbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
    queued: Vec<Vec<u8>>,
    sent: Rc<RefCell<Vec<Vec<u8>>>>,
    flushes: Rc<Cell<u32>>,
    /// Publishes for a poll (see `Device::publish_for_poll`) and kicks.
    published: Rc<Cell<u32>>,
    kicks: Rc<Cell<u32>>,
    /// Only for its descriptor (never readable: nobody sends to it).
    wake: std::net::UdpSocket,
}

impl Device for Probe {
    fn receive(&mut self, budget: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < budget {
            let Some(frame) = self.inbox.borrow_mut().pop_front() else {
                break;
            };
            f(&frame);
            n += 1;
        }
        n
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<()> {
        let mut frame = vec![0; len];
        fill(&mut frame);
        self.queued.push(frame);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushes.set(self.flushes.get() + 1);
        self.sent.borrow_mut().append(&mut self.queued);
        Ok(())
    }

    fn publish_for_poll(&mut self) -> bool {
        self.published.set(self.published.get() + 1);
        self.sent.borrow_mut().append(&mut self.queued);
        true
    }

    fn kick(&mut self) -> io::Result<()> {
        self.kicks.set(self.kicks.get() + 1);
        Ok(())
    }

    fn rx_ready(&mut self) -> bool {
        !self.inbox.borrow().is_empty()
    }

    fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    fn mac(&self) -> [u8; 6] {
        [2, 0, 0, 0, 0, 1]
    }

    fn frame_max(&self) -> usize {
        1514
    }
}

struct Bed {
    stack: Rc<Stack>,
    inbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
    sent: Rc<RefCell<Vec<Vec<u8>>>>,
    flushes: Rc<Cell<u32>>,
    published: Rc<Cell<u32>>,
    kicks: Rc<Cell<u32>>,
}

impl Bed {
    /// A stack on this shard with the peer's address resolved and the
    /// start's announcement flushed (counters start at zero).
    fn start() -> Bed {
        let inbox = Rc::new(RefCell::new(VecDeque::new()));
        let sent = Rc::new(RefCell::new(Vec::new()));
        let flushes = Rc::new(Cell::new(0));
        let published = Rc::new(Cell::new(0));
        let kicks = Rc::new(Cell::new(0));
        let probe = Probe {
            inbox: inbox.clone(),
            queued: Vec::new(),
            sent: sent.clone(),
            flushes: flushes.clone(),
            published: published.clone(),
            kicks: kicks.clone(),
            wake: std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket for its fd"),
        };
        let iface = Iface {
            addr: Ipv4Addr::new(10, 9, 0, 1),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: None,
            mac: Mac(probe.mac()),
        };
        let stack = install(iface, StackOptions::default(), Some(Box::new(probe)), 0);
        stack
            .state
            .borrow_mut()
            .learn(PEER, Mac([2, 0, 0, 0, 0, 2]), now(), false);
        assert!(stack.settle(false), "an idle stack may sleep");
        sent.borrow_mut().clear();
        flushes.set(0);
        Bed {
            stack,
            inbox,
            sent,
            flushes,
            published,
            kicks,
        }
    }

    fn reply(&self, payload: &[u8]) {
        self.stack
            .send_udp(
                11211,
                SocketAddrV4::new(PEER, 40000),
                (&[payload], payload.len()),
            )
            .expect("send");
    }

    /// A frame arrives (any bytes: the stack counts and drops it).
    fn arrive(&self) {
        self.inbox.borrow_mut().push_back(vec![0xff; 60]);
    }
}

#[test]
fn a_settle_with_nothing_waiting_flushes_at_once() {
    seastar_core::block_on(async {
        let bed = Bed::start();
        bed.reply(b"one");
        assert!(bed.stack.settle(false), "nothing left: the shard may sleep");
        assert_eq!(bed.flushes.get(), 1);
        assert_eq!(bed.sent.borrow().len(), 1);
        super::uninstall();
    });
}

#[test]
fn replies_wait_for_the_next_iteration_while_frames_wait() {
    seastar_core::block_on(async {
        let bed = Bed::start();
        bed.reply(b"one");
        bed.arrive();
        assert!(!bed.stack.settle(false), "a frame waits: no sleep");
        assert_eq!(bed.flushes.get(), 0, "the kick is held");
        bed.stack.poll();
        assert!(bed.inbox.borrow().is_empty(), "the poll took the frame");
        assert_eq!(bed.flushes.get(), 0, "still held while its tasks run");
        bed.reply(b"two");
        assert!(bed.stack.settle(false));
        assert_eq!(bed.flushes.get(), 1, "both replies in one kick");
        assert_eq!(bed.sent.borrow().len(), 2);
        super::uninstall();
    });
}

#[test]
fn a_hold_lasts_one_poll_at_most() {
    seastar_core::block_on(async {
        let bed = Bed::start();
        bed.reply(b"one");
        bed.arrive();
        assert!(!bed.stack.settle(false));
        bed.stack.poll();
        assert_eq!(bed.flushes.get(), 0);
        // The shard stays busy (no settle): the next poll flushes even
        // though a frame came in again.
        bed.arrive();
        bed.stack.poll();
        assert_eq!(bed.flushes.get(), 1);
        assert_eq!(bed.sent.borrow().len(), 1);
        // A settle holds again only after that flush.
        bed.reply(b"two");
        bed.arrive();
        assert!(!bed.stack.settle(false));
        assert_eq!(bed.flushes.get(), 1);
        assert!(!bed.stack.settle(false), "a frame still waits");
        assert_eq!(bed.flushes.get(), 2, "a second settle in a row flushes");
        super::uninstall();
    });
}

#[test]
fn a_settle_before_a_fresh_poll_only_publishes_and_a_later_drain_kicks() {
    seastar_core::block_on(async {
        let bed = Bed::start();
        bed.reply(b"one");
        assert!(bed.stack.settle(true), "nothing left: the shard may sleep");
        assert_eq!(bed.flushes.get(), 0, "no flush: the poll transmits");
        assert_eq!((bed.published.get(), bed.kicks.get()), (1, 0));
        assert!(bed.stack.published.get());
        // The poll was not armed after all: the next drain kicks, once.
        bed.stack.poll();
        assert_eq!(bed.kicks.get(), 1);
        assert!(!bed.stack.published.get());
        bed.stack.poll();
        assert_eq!(bed.kicks.get(), 1, "nothing published is left");
        super::uninstall();
    });
}

#[test]
fn a_published_batch_not_polled_for_is_kicked() {
    seastar_core::block_on(async {
        let bed = Bed::start();
        bed.reply(b"one");
        assert!(bed.stack.settle(true));
        bed.stack.kick_published();
        assert_eq!((bed.published.get(), bed.kicks.get()), (1, 1));
        // Without a fresh poll to come, a settle flushes as before.
        bed.reply(b"two");
        assert!(bed.stack.settle(false));
        assert_eq!((bed.flushes.get(), bed.published.get()), (1, 1));
        assert_eq!(bed.sent.borrow().len(), 2);
        super::uninstall();
    });
}

#[test]
fn frames_in_and_out_since_the_last_sleep_are_reported_once() {
    seastar_core::block_on(async {
        let bed = Bed::start();
        bed.stack.take_handled();
        for _ in 0..3 {
            bed.arrive();
        }
        bed.stack.poll();
        bed.reply(b"one");
        bed.reply(b"two");
        assert!(bed.stack.settle(false));
        assert_eq!(bed.sent.borrow().len(), 2);
        assert_eq!(bed.stack.take_handled(), 5, "three in, two out");
        assert_eq!(bed.stack.take_handled(), 0, "counted once");
        super::uninstall();
    });
}
