//! One shard's running stack: its [`State`], its device (if this shard
//! has a queue), the reactor poller that drives them, and the hand-overs
//! to and from other shards.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddrV4;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Waker};
use std::time::Instant;

use seastar_core::poller::{FdWatch, Poller, PollerHandle, add_poller};
use seastar_core::shard_local::{self, SlotKey};
use seastar_core::timer;

use super::device::Device;
use super::iface::Iface;
use super::state::{Handover, StackOptions, State};
use super::stats::DropReason;

#[cfg(test)]
mod tests;

/// Frames taken from the device per poll.
pub(crate) const BATCH: usize = 64;

/// A shard's stack.
pub(crate) struct Stack {
    pub(crate) dev: RefCell<Option<Box<dyn Device>>>,
    pub(crate) state: RefCell<State>,
    /// The device shard this one hands its frames to (itself if it has a
    /// device).
    tx_shard: usize,
    /// Hand-over batches in flight, per target shard.
    inflight: Vec<Cell<usize>>,
    /// Frames given to the device since the last flush.
    unflushed: Cell<bool>,
    /// The transmit flush held back (see [`Stack::settle`]): 0 none;
    /// [`HELD`] the settle before a sleep found frames waiting and left
    /// its replies unflushed; [`HELD_AGAIN`] the poll that received those
    /// frames left them unflushed too. Never more: the next settle or
    /// poll flushes.
    hold: Cell<u8>,
    /// The reactor's coarse time as of this iteration's [`Stack::poll`]
    /// (pollers run before the iteration's tasks, so their sends see the
    /// same reading without asking the reactor for it again).
    now: Cell<Instant>,
    /// The last flush only published its frames, for the poll of the
    /// device's fd that the sleep arms to transmit them (see
    /// [`StackPoller::try_sleep`]): the next drain or flush has the device
    /// kick what that poll left (nothing, when it ran).
    published: Cell<bool>,
    /// Frames in and out as counted when [`Stack::take_handled`] last
    /// asked.
    frames_seen: Cell<u64>,
}

/// [`Stack::hold`]: replies held by a settle.
const HELD: u8 = 1;
/// [`Stack::hold`]: and by the poll after it.
const HELD_AGAIN: u8 = 2;

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("tx_shard", &self.tx_shard)
            .finish_non_exhaustive()
    }
}

/// What a shard keeps while its stack runs (in its shard-local slots, so
/// that it ends with the runtime).
struct Installed {
    stack: Rc<Stack>,
    _poller: PollerHandle,
}

/// The calling shard's stack, if started.
///
/// # Panics
///
/// Outside a shard.
pub(crate) fn current() -> Option<Rc<Stack>> {
    shard_local::get::<Installed>(SlotKey::SINGLETON).map(|i| i.stack.clone())
}

/// Starts the stack on the calling shard with `device` (`None`: hand
/// frames to shard `tx_shard`, which has one), replacing a running one.
pub(crate) fn install(
    iface: Iface,
    opts: StackOptions,
    device: Option<Box<dyn Device>>,
    tx_shard: usize,
) -> Rc<Stack> {
    let (shard, shards) = (seastar_core::shard_id(), seastar_core::shard_count());
    let frame_max = device.as_ref().map_or(1514, |d| d.frame_max());
    let has_device = device.is_some();
    let mut state = State::new(iface, opts, shard, shards, has_device, frame_max);
    if has_device && shard == 0 {
        state.announce();
    }
    let wake = device.as_ref().map(|d| FdWatch::new(d.wake_fd()));
    let stack = Rc::new(Stack {
        dev: RefCell::new(device),
        state: RefCell::new(state),
        tx_shard: if has_device { shard } else { tx_shard },
        inflight: (0..shards).map(|_| Cell::new(0)).collect(),
        unflushed: Cell::new(false),
        hold: Cell::new(0),
        now: Cell::new(now()),
        published: Cell::new(false),
        frames_seen: Cell::new(0),
    });
    super::stats::register();
    // On io_uring a sleep's poll of the device's fd runs its poll handler
    // when submitted; on epoll the fd is registered once, and not polled.
    let poll_kicks = seastar_core::runtime::backend() == seastar_core::BackendKind::IoUring;
    let handle = add_poller(StackPoller {
        stack: stack.clone(),
        poll_kicks,
        wake,
        armed: None,
        timer: None,
    });
    uninstall();
    shard_local::insert(
        SlotKey::SINGLETON,
        Installed {
            stack: stack.clone(),
            _poller: handle,
        },
    );
    tracing::debug!(shard, has_device, "native stack started");
    stack
}

/// Stops the calling shard's stack (its poller removed, its device
/// closed once the last socket is gone).
pub(crate) fn uninstall() {
    drop(shard_local::remove::<Installed>(SlotKey::SINGLETON));
}

fn now() -> Instant {
    timer::lowres_now()
}

impl Stack {
    /// Sends a datagram from `src_port` whose payload is the
    /// concatenation of `parts`, `len` bytes in all (see
    /// [`State::send_udp_parts`]).
    pub(crate) fn send_udp(
        &self,
        src_port: u16,
        dst: SocketAddrV4,
        payload: (&[&[u8]], usize),
    ) -> io::Result<()> {
        let mut dev = self.dev.borrow_mut();
        let mut st = self.state.borrow_mut();
        let d = dev.as_mut().map(|d| d.as_mut() as &mut dyn Device);
        st.send_udp_payload(d, self.now.get(), src_port, dst, payload)?;
        if dev.is_some() {
            self.unflushed.set(true);
        }
        Ok(())
    }

    /// One round: a batch from the device, timers, output, hand-overs.
    /// Returns whether the shard should come back at once without asking
    /// [`StackPoller::try_sleep`]: the batch was full (a shorter one
    /// emptied the device), or hand-overs went out. The tasks the batch
    /// woke run in this iteration anyway, and their replies are flushed
    /// before the shard sleeps (in `try_sleep`), so a round that answered
    /// a few requests costs one transmit kick and one sleep, not another
    /// iteration (with its `io_uring_enter`) first. Replies a settle held
    /// back stay unflushed if this batch brought frames: the settle after
    /// their tasks flushes both in one kick.
    fn poll(self: &Rc<Self>) -> bool {
        let now = now();
        self.now.set(now);
        let mut dev = self.dev.borrow_mut();
        let mut st = self.state.borrow_mut();
        let mut again = false;
        let mut n = 0;
        if let Some(d) = dev.as_deref_mut() {
            n = d.receive(BATCH, &mut |frame| st.input(frame, now, false));
            again |= n == BATCH;
        }
        st.tick(now);
        if self.hold.get() == HELD && n > 0 && st.out.is_empty() {
            self.hold.set(HELD_AGAIN);
        } else {
            self.drain(&mut dev, &mut st, false);
        }
        drop(dev);
        drop(st);
        again |= self.dispatch();
        again
    }

    /// Flushes what the tasks of this iteration sent, then tells whether
    /// the shard may sleep: nothing is left to do and no frame waits.
    ///
    /// If frames already wait in the device, the flush is held back once
    /// (the shard does not sleep anyway): the next poll receives them,
    /// their tasks add their replies, and the settle after them sends
    /// both iterations' replies with one kick (a `sendto` in copy-mode
    /// AF_XDP) instead of two. A reply thus waits at most one more
    /// iteration; under a steady trickle of requests that halves the
    /// kicks.
    ///
    /// `by_poll`: the sleep will arm a fresh poll of the device's fd, which
    /// transmits what the flush publishes (the caller kicks if it does not
    /// sleep after all).
    fn settle(self: &Rc<Self>, by_poll: bool) -> bool {
        if self.hold.get() == 0
            && self.unflushed.get()
            && !self.state.borrow().has_output()
            && self.rx_ready()
        {
            self.hold.set(HELD);
            return false;
        }
        if self.pending() {
            {
                let mut dev = self.dev.borrow_mut();
                let mut st = self.state.borrow_mut();
                self.drain(&mut dev, &mut st, by_poll);
            }
            if self.dispatch() {
                return false;
            }
        }
        self.hold.set(0);
        if self.pending() {
            return false;
        }
        !self.rx_ready()
    }

    /// Whether the device has received frames not yet taken.
    fn rx_ready(&self) -> bool {
        self.dev
            .borrow_mut()
            .as_deref_mut()
            .is_some_and(|d| d.rx_ready())
    }

    /// Gives queued frames to the device and flushes it (`by_poll`: only
    /// publishes them, if the device can leave their kick to the poll of
    /// its fd, see [`Stack::settle`]). Returns whether there was anything
    /// to do.
    fn drain(&self, dev: &mut Option<Box<dyn Device>>, st: &mut State, by_poll: bool) -> bool {
        let Some(d) = dev.as_deref_mut() else {
            return false;
        };
        let frames = std::mem::take(&mut st.out);
        let work = !frames.is_empty() || self.unflushed.get();
        for frame in &frames {
            if transmit(d, frame) {
                st.stats.frames_out += 1;
                st.stats.bytes_out += frame.len() as u64;
            } else {
                st.drop_frame(DropReason::TxFull);
            }
        }
        if work {
            if by_poll && d.publish_for_poll() {
                self.published.set(true);
            } else {
                if let Err(e) = d.flush() {
                    tracing::debug!(shard = st.shard, "native: device flush failed: {e}");
                }
                self.published.set(false);
            }
            self.unflushed.set(false);
        } else if self.published.take()
            && let Err(e) = d.kick()
        {
            tracing::debug!(shard = st.shard, "native: device kick failed: {e}");
        }
        self.hold.set(0);
        work
    }

    /// Sends the hand-overs queued in the state. Returns whether any.
    fn dispatch(self: &Rc<Self>) -> bool {
        let mut msgs = Vec::new();
        {
            let mut st = self.state.borrow_mut();
            if !st.has_output() {
                return false;
            }
            for (shard, frames) in st.handover_rx.iter_mut().enumerate() {
                if !frames.is_empty() {
                    msgs.push((shard, Handover::Rx(std::mem::take(frames))));
                }
            }
            if !st.handover_tx.is_empty() {
                msgs.push((
                    self.tx_shard,
                    Handover::Tx(std::mem::take(&mut st.handover_tx)),
                ));
            }
            if !st.learned.is_empty() {
                let learned = std::mem::take(&mut st.learned);
                for shard in (0..st.shards).filter(|&s| s != st.shard) {
                    msgs.push((shard, Handover::Learn(learned.clone())));
                }
            }
        }
        let any = !msgs.is_empty();
        for (shard, msg) in msgs {
            self.hand_over(shard, msg);
        }
        any
    }

    fn hand_over(self: &Rc<Self>, shard: usize, msg: Handover) {
        let max = self.state.borrow().opts.handover_max;
        let slot = &self.inflight[shard];
        if slot.get() >= max {
            let n = match &msg {
                Handover::Rx(f) | Handover::Tx(f) => f.len(),
                Handover::Learn(_) => 1,
            };
            let mut st = self.state.borrow_mut();
            (0..n).for_each(|_| st.drop_frame(DropReason::HandoverFull));
            return;
        }
        slot.set(slot.get() + 1);
        let me = self.clone();
        let call = seastar_core::smp::submit_to(shard, move || async move { receive(msg) });
        seastar_core::spawn_local(async move {
            let _ = call.await;
            let slot = &me.inflight[shard];
            slot.set(slot.get() - 1);
        })
        .detach();
    }

    /// Kicks the device for frames a flush only published, when the poll
    /// meant to transmit them did not come.
    fn kick_published(&self) {
        if self.published.take()
            && let Some(d) = self.dev.borrow_mut().as_deref_mut()
            && let Err(e) = d.kick()
        {
            tracing::debug!("native: device kick failed: {e}");
        }
    }

    /// Frames received and sent since the last call (see
    /// [`StackPoller::handled`]).
    fn take_handled(&self) -> u32 {
        let st = self.state.borrow();
        let frames = st.stats.frames_in + st.stats.frames_out;
        let n = frames.wrapping_sub(self.frames_seen.replace(frames));
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Whether work waits that the next poll would do.
    fn pending(&self) -> bool {
        self.unflushed.get() || self.state.borrow().has_output()
    }
}

/// Gives `frame` to the device, flushing once if it has no free buffer.
fn transmit(d: &mut dyn Device, frame: &[u8]) -> bool {
    let mut fill = |b: &mut [u8]| b.copy_from_slice(frame);
    match d.transmit(frame.len(), &mut fill) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            let _ = d.flush();
            d.transmit(frame.len(), &mut fill).is_ok()
        }
        Err(_) => false,
    }
}

/// Runs on the target shard of a hand-over.
fn receive(msg: Handover) {
    let Some(stack) = current() else { return };
    let now = now();
    {
        let mut dev = stack.dev.borrow_mut();
        let mut st = stack.state.borrow_mut();
        match msg {
            Handover::Rx(frames) => {
                for f in &frames {
                    st.input(f, now, true);
                }
            }
            Handover::Tx(frames) => match dev.as_deref_mut() {
                Some(d) => {
                    for f in &frames {
                        if transmit(d, f) {
                            st.stats.handover_tx_in += 1;
                        } else {
                            st.drop_frame(DropReason::TxFull);
                        }
                    }
                    stack.unflushed.set(true);
                }
                None => (0..frames.len()).for_each(|_| st.drop_frame(DropReason::TxFull)),
            },
            Handover::Learn(pairs) => {
                for (ip, mac) in pairs {
                    st.learn(ip, mac, now, false);
                }
            }
        }
        stack.drain(&mut dev, &mut st, false);
    }
    stack.dispatch();
}

/// The reactor poller of a shard's stack.
struct StackPoller {
    stack: Rc<Stack>,
    /// Arming `wake` polls the device's fd (io_uring).
    poll_kicks: bool,
    wake: Option<FdWatch>,
    /// The waker `wake` was armed with, while it waits (see `poll`).
    armed: Option<Waker>,
    timer: Option<timer::Sleep>,
}

impl Poller for StackPoller {
    fn poll(&mut self) -> bool {
        // Collect a watch that fired (or check on one still waiting) as
        // soon as the shard runs again, not at its next sleep: on io_uring
        // a completed poll left uncollected counts as an operation in
        // flight, and the reactor then enters the kernel on every busy
        // iteration (about one `io_uring_enter` per get under load).
        if let (Some(w), Some(waker)) = (self.wake.as_mut(), self.armed.as_ref())
            && w.arm(&mut Context::from_waker(waker))
        {
            self.armed = None;
        }
        self.stack.poll()
    }

    /// Before a sleep that arms a fresh poll of the device's fd (io_uring),
    /// the last flush only publishes its frames: the poll handler, which
    /// the submission of that poll runs, transmits them (an AF_XDP socket
    /// in copy mode: one `sendto` less per sleep). Whenever the shard does
    /// not go on to that arm, they are kicked at once.
    fn try_sleep(&mut self, cx: &mut Context<'_>) -> bool {
        let by_poll = self.poll_kicks && self.wake.as_ref().is_some_and(|w| !w.is_armed());
        let sleep = self.settle_and_arm(cx, by_poll);
        // Armed: the poll submitted with the sleep (or the next entry into
        // the kernel) transmits; the next poll's drain checks that it did.
        if !(sleep && by_poll) {
            self.stack.kick_published();
        }
        sleep
    }

    /// Frames received and sent since the last sleep: a shard that
    /// answered a burst sleeps through the first frames of the next one
    /// (its sleep waits for a batch, see [`Poller::handled`]) and takes
    /// them in one wake-up, as a NIC's interrupt moderation would.
    fn handled(&mut self) -> u32 {
        self.stack.take_handled()
    }
}

impl StackPoller {
    /// [`Poller::try_sleep`] but for the kick of what its flush published.
    fn settle_and_arm(&mut self, cx: &mut Context<'_>, by_poll: bool) -> bool {
        if !self.stack.settle(by_poll) {
            return false;
        }
        // Wake for the next ARP retry or timeout, if frames wait.
        match self.stack.state.borrow().arp.next_deadline() {
            Some(at) => {
                let t = self.timer.get_or_insert_with(|| timer::sleep_until(at));
                if t.deadline() != at {
                    t.reset(at);
                }
                if Pin::new(t).poll(cx).is_ready() {
                    self.timer = None;
                    return false;
                }
            }
            None => self.timer = None,
        }
        match &mut self.wake {
            Some(w) => {
                if w.arm(cx) {
                    self.armed = None;
                    false
                } else {
                    if !self.armed.as_ref().is_some_and(|a| a.will_wake(cx.waker())) {
                        self.armed = Some(cx.waker().clone());
                    }
                    true
                }
            }
            None => true,
        }
    }
}
