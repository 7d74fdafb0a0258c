//! Fair queuing on virtual time (pure logic, no I/O).
//!
//! Each class has a FIFO of requests and a virtual time: the sum of the
//! costs of the requests it dispatched, each divided by its shares. The
//! next request to dispatch is the head of the non-empty class with the
//! smallest virtual time, so while several classes are backlogged each
//! gets disk time in proportion to its shares. A class that was idle
//! re-enters at the current virtual clock (the virtual time of the last
//! dispatch), not at its old, smaller value: idleness earns no credit to
//! burst with later.
//!
//! Dispatch happens while the cost in flight stays within the capacity
//! (and the request count within its cap); one request is always allowed
//! when nothing is in flight, however costly, so no request waits forever.
//!
//! # Latency protection
//!
//! Shares divide the disk between classes that keep it busy; they cannot
//! help a class that sends one request at a time, because the disk serves
//! what it was given in order: such a request waits behind everything the
//! busy classes put in flight, up to the whole capacity. So while an
//! *interactive* class is active (at most [`INTERACTIVE_DEPTH`] requests
//! queued or in flight, and one dispatched within the last `window`), the
//! other classes may only fill the disk up to the smaller `contended`
//! capacity; the interactive class's own requests still use the whole of
//! it. Alone, or beside other busy classes, a class gets the full capacity.

use std::collections::VecDeque;

/// Requests queued plus in flight up to which a class counts as
/// interactive (latency-bound rather than throughput-bound).
pub(crate) const INTERACTIVE_DEPTH: usize = 2;

/// One class's queue.
#[derive(Debug)]
struct ClassQueue<T> {
    shares: f64,
    vtime: f64,
    queue: VecDeque<(f64, T)>,
    /// Its requests dispatched and not yet completed.
    in_flight: usize,
    /// When one of its requests was last dispatched (caller's clock, ns);
    /// `None` before the first.
    last_dispatch: Option<u64>,
}

impl<T> ClassQueue<T> {
    /// Requests queued plus in flight.
    fn depth(&self) -> usize {
        self.queue.len() + self.in_flight
    }

    fn interactive(&self, now: u64, window: u64) -> bool {
        self.depth() <= INTERACTIVE_DEPTH
            && self
                .last_dispatch
                .is_some_and(|t| now.saturating_sub(t) <= window)
    }
}

/// The capacities of a [`FairQueue`], in the unit of the costs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Cost in flight allowed.
    pub capacity: f64,
    /// Cost in flight allowed to the other classes while an interactive
    /// one is active.
    pub contended: f64,
    /// How long after its last dispatch a class still counts as active.
    pub window_ns: u64,
    /// Requests in flight allowed.
    pub max_requests: usize,
}

/// A fair queue of items `T` (request tickets) by class id.
#[derive(Debug)]
pub(crate) struct FairQueue<T> {
    classes: Vec<Option<ClassQueue<T>>>,
    vclock: f64,
    in_flight: f64,
    requests: usize,
    limits: Limits,
    queued: usize,
}

impl<T> FairQueue<T> {
    pub(crate) fn new(limits: Limits) -> Self {
        FairQueue {
            classes: Vec::new(),
            vclock: 0.0,
            in_flight: 0.0,
            requests: 0,
            limits: Limits {
                max_requests: limits.max_requests.max(1),
                ..limits
            },
            queued: 0,
        }
    }

    /// Changes the bounds (applies from the next dispatch).
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = Limits {
            max_requests: limits.max_requests.max(1),
            ..limits
        };
    }

    fn class(&mut self, id: usize, shares: u32) -> &mut ClassQueue<T> {
        if self.classes.len() <= id {
            self.classes.resize_with(id + 1, || None);
        }
        let c = self.classes[id].get_or_insert_with(|| ClassQueue {
            shares: 1.0,
            vtime: 0.0,
            queue: VecDeque::new(),
            in_flight: 0,
            last_dispatch: None,
        });
        c.shares = f64::from(shares.max(1));
        c
    }

    /// Whether a request of `cost` from class `id` (already queued there,
    /// or about to be dispatched) may go now.
    fn fits(&self, id: usize, cost: f64, now: u64, incoming: usize) -> bool {
        if self.requests == 0 {
            return true;
        }
        if self.requests >= self.limits.max_requests {
            return false;
        }
        let after = self.in_flight + cost;
        after <= self.limits.capacity
            && (after <= self.limits.contended || !self.held_back(id, now, incoming))
    }

    /// Whether class `id`, with `incoming` more requests, is busy while
    /// another class is interactive: it then gets the contended capacity.
    fn held_back(&self, id: usize, now: u64, incoming: usize) -> bool {
        let own = self.classes[id].as_ref().expect("a known class");
        if own.depth() + incoming <= INTERACTIVE_DEPTH {
            return false;
        }
        let window = self.limits.window_ns;
        self.classes
            .iter()
            .enumerate()
            .any(|(i, c)| i != id && c.as_ref().is_some_and(|c| c.interactive(now, window)))
    }

    fn charge(&mut self, id: usize, cost: f64, now: u64) {
        let c = self.classes[id].as_mut().expect("a known class");
        self.vclock = c.vtime;
        c.vtime += cost / c.shares;
        c.in_flight += 1;
        c.last_dispatch = Some(now);
        self.in_flight += cost;
        self.requests += 1;
    }

    /// Dispatches a request at once if nothing waits and it fits: the
    /// fast path. Returns whether it was dispatched (and charged).
    pub(crate) fn try_dispatch_now(&mut self, id: usize, shares: u32, cost: f64, now: u64) -> bool {
        self.class(id, shares);
        if self.queued > 0 || !self.fits(id, cost, now, 1) {
            return false;
        }
        let vclock = self.vclock;
        let c = self.classes[id].as_mut().expect("made above");
        c.vtime = c.vtime.max(vclock);
        self.charge(id, cost, now);
        true
    }

    /// Queues a request of class `id`.
    pub(crate) fn push(&mut self, id: usize, shares: u32, cost: f64, item: T) {
        let vclock = self.vclock;
        let c = self.class(id, shares);
        if c.queue.is_empty() {
            c.vtime = c.vtime.max(vclock);
        }
        c.queue.push_back((cost, item));
        self.queued += 1;
    }

    /// Dispatches the next request if one fits, skipping (uncharged) the
    /// items `alive` rejects. Returns its class, cost and item.
    pub(crate) fn pop(&mut self, alive: impl Fn(&T) -> bool, now: u64) -> Option<(usize, f64, T)> {
        loop {
            let (id, cost) = self
                .classes
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let c = c.as_ref()?;
                    let (cost, _) = c.queue.front()?;
                    Some((i, c.vtime, *cost))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _, cost)| (i, cost))?;
            let head_alive = {
                let c = self.classes[id].as_ref().expect("class with a queued item");
                alive(&c.queue.front().expect("non-empty").1)
            };
            if !head_alive {
                self.classes[id]
                    .as_mut()
                    .expect("checked")
                    .queue
                    .pop_front();
                self.queued -= 1;
                continue;
            }
            if !self.fits(id, cost, now, 0) {
                return None;
            }
            let c = self.classes[id].as_mut().expect("checked");
            let (cost, item) = c.queue.pop_front().expect("non-empty");
            self.queued -= 1;
            self.charge(id, cost, now);
            return Some((id, cost, item));
        }
    }

    /// A dispatched request of class `id` and `cost` completed.
    pub(crate) fn complete(&mut self, id: usize, cost: f64) {
        if let Some(Some(c)) = self.classes.get_mut(id) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        self.requests = self.requests.saturating_sub(1);
        self.in_flight = if self.requests == 0 {
            0.0
        } else {
            (self.in_flight - cost).max(0.0)
        };
    }

    /// Items waiting in class `id`'s queue.
    pub(crate) fn queue_len(&self, id: usize) -> usize {
        self.classes
            .get(id)
            .and_then(Option::as_ref)
            .map_or(0, |c| c.queue.len())
    }

    /// Requests in flight and their cost.
    pub(crate) fn in_flight(&self) -> (usize, f64) {
        (self.requests, self.in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue without latency protection.
    fn queue<T>(capacity: f64, max_requests: usize) -> FairQueue<T> {
        FairQueue::new(Limits {
            capacity,
            contended: capacity,
            window_ns: 0,
            max_requests,
        })
    }

    /// Two backlogged classes with shares 100 and 400, unit costs,
    /// capacity 1: dispatch counts split 1:4.
    #[test]
    fn backlogged_classes_split_dispatches_by_shares() {
        let mut q = queue(1.0, 1);
        for i in 0..1000 {
            q.push(0, 100, 1.0, i);
            q.push(1, 400, 1.0, i);
        }
        let mut counts = [0; 2];
        for _ in 0..500 {
            let (id, cost, _) = q.pop(|_| true, 0).unwrap();
            assert!(
                q.pop(|_| true, 0).is_none(),
                "capacity 1 admits one request"
            );
            counts[id] += 1;
            q.complete(id, cost);
        }
        assert_eq!(counts, [100, 400]);
    }

    #[test]
    fn cost_not_count_is_shared() {
        // Class 0 sends requests four times as costly: equal shares give
        // it a quarter of the dispatches.
        let mut q = queue(1.0, 1);
        for i in 0..1000 {
            q.push(0, 100, 4.0, i);
            q.push(1, 100, 1.0, i);
        }
        let mut counts = [0; 2];
        for _ in 0..500 {
            let (id, cost, _) = q.pop(|_| true, 0).unwrap();
            counts[id] += 1;
            q.complete(id, cost);
        }
        assert_eq!(counts, [100, 400]);
    }

    #[test]
    fn idle_class_earns_no_credit() {
        let mut q = queue(1.0, 1);
        for i in 0..100 {
            q.push(0, 100, 1.0, i);
        }
        for _ in 0..100 {
            let (id, c, _) = q.pop(|_| true, 0).unwrap();
            q.complete(id, c);
        }
        // Class 1 was idle while class 0 ran 100 requests; now both are
        // backlogged and alternate rather than class 1 running 100 in a row.
        for i in 0..10 {
            q.push(0, 100, 1.0, i);
            q.push(1, 100, 1.0, i);
        }
        let order: Vec<usize> = (0..6)
            .map(|_| {
                let (id, c, _) = q.pop(|_| true, 0).unwrap();
                q.complete(id, c);
                id
            })
            .collect();
        assert_eq!(order.iter().filter(|&&i| i == 1).count(), 3, "{order:?}");
    }

    #[test]
    fn capacity_bounds_cost_in_flight_but_one_request_always_fits() {
        let mut q = queue(2.5, 100);
        assert!(
            q.try_dispatch_now(0, 100, 10.0, 0),
            "an idle queue admits anything"
        );
        assert!(!q.try_dispatch_now(0, 100, 1.0, 0));
        q.complete(0, 10.0);
        for i in 0..5 {
            q.push(0, 100, 1.0, i);
        }
        assert!(
            !q.try_dispatch_now(0, 100, 1.0, 0),
            "queued work goes first"
        );
        assert_eq!(q.pop(|_| true, 0).map(|x| x.2), Some(0));
        assert_eq!(q.pop(|_| true, 0).map(|x| x.2), Some(1));
        assert!(q.pop(|_| true, 0).is_none(), "2 + 1 > 2.5");
        assert_eq!(q.in_flight(), (2, 2.0));
        q.complete(0, 1.0);
        assert_eq!(q.pop(|_| true, 0).map(|x| x.2), Some(2));
        assert_eq!(q.queue_len(0), 2);
    }

    #[test]
    fn dead_items_are_skipped_uncharged() {
        let mut q = queue(1.0, 1);
        q.push(0, 100, 1.0, 1);
        q.push(0, 100, 1.0, 2);
        assert_eq!(q.pop(|&i| i != 1, 0).map(|x| x.2), Some(2));
        assert_eq!(q.queue_len(0), 0);
        assert_eq!(q.in_flight(), (1, 1.0));
    }

    #[test]
    fn an_active_interactive_class_shrinks_what_the_others_may_put_in_flight() {
        let mut q = FairQueue::new(Limits {
            capacity: 10.0,
            contended: 2.0,
            window_ns: 1000,
            max_requests: 100,
        });
        for i in 0..20 {
            q.push(0, 100, 1.0, i);
        }
        let mut bg = Vec::new();
        while let Some((id, c, _)) = q.pop(|_| true, 0) {
            bg.push((id, c));
        }
        assert_eq!(bg.len(), 10, "alone, the background fills the capacity");
        for (id, c) in bg {
            q.complete(id, c);
        }
        // A request of class 1 (one at a time: interactive) goes first,
        // then the background may only fill up to the contended capacity.
        q.push(1, 1000, 1.0, 100);
        assert_eq!(q.pop(|_| true, 0).map(|x| (x.0, x.2)), Some((1, 100)));
        assert_eq!(q.pop(|_| true, 0).map(|x| x.0), Some(0));
        assert!(q.pop(|_| true, 0).is_none(), "1 + 1 in flight: contended");
        // Its request done, class 1 still counts as active for the window.
        q.complete(1, 1.0);
        assert_eq!(q.pop(|_| true, 500).map(|x| x.0), Some(0));
        assert!(q.pop(|_| true, 500).is_none());
        // Past the window the background gets the whole capacity back.
        let mut more = 0;
        while q.pop(|_| true, 5000).is_some() {
            more += 1;
        }
        assert_eq!(more, 8, "2 + 8 = the capacity");
        // An interactive request admitted on the fast path is not held
        // back by the contended capacity meant for the others.
        let mut q = FairQueue::<u32>::new(Limits {
            capacity: 10.0,
            contended: 2.0,
            window_ns: 1000,
            max_requests: 100,
        });
        assert!(q.try_dispatch_now(1, 1000, 1.0, 0));
        // Two at a time, class 0 is interactive too.
        assert!(q.try_dispatch_now(0, 100, 1.0, 0));
        assert!(q.try_dispatch_now(0, 100, 1.0, 0));
        assert!(
            !q.try_dispatch_now(0, 100, 1.0, 0),
            "a third makes class 0 busy: held to the contended capacity"
        );
        assert!(
            q.try_dispatch_now(1, 1000, 1.0, 0),
            "the interactive class uses the whole capacity"
        );
    }
}
