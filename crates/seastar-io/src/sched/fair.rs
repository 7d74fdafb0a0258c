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

use std::collections::VecDeque;

/// One class's queue.
#[derive(Debug)]
struct ClassQueue<T> {
    shares: f64,
    vtime: f64,
    queue: VecDeque<(f64, T)>,
}

/// A fair queue of items `T` (request tickets) by class id.
#[derive(Debug)]
pub(crate) struct FairQueue<T> {
    classes: Vec<Option<ClassQueue<T>>>,
    vclock: f64,
    in_flight: f64,
    requests: usize,
    capacity: f64,
    max_requests: usize,
    queued: usize,
}

impl<T> FairQueue<T> {
    pub(crate) fn new(capacity: f64, max_requests: usize) -> Self {
        FairQueue {
            classes: Vec::new(),
            vclock: 0.0,
            in_flight: 0.0,
            requests: 0,
            capacity,
            max_requests: max_requests.max(1),
            queued: 0,
        }
    }

    /// Changes the bounds (applies from the next dispatch).
    pub(crate) fn set_limits(&mut self, capacity: f64, max_requests: usize) {
        self.capacity = capacity;
        self.max_requests = max_requests.max(1);
    }

    fn class(&mut self, id: usize, shares: u32) -> &mut ClassQueue<T> {
        if self.classes.len() <= id {
            self.classes.resize_with(id + 1, || None);
        }
        let c = self.classes[id].get_or_insert_with(|| ClassQueue {
            shares: 1.0,
            vtime: 0.0,
            queue: VecDeque::new(),
        });
        c.shares = f64::from(shares.max(1));
        c
    }

    fn fits(&self, cost: f64) -> bool {
        self.requests == 0
            || (self.in_flight + cost <= self.capacity && self.requests < self.max_requests)
    }

    /// Dispatches a request at once if nothing waits and it fits: the
    /// fast path. Returns whether it was dispatched (and charged).
    pub(crate) fn try_dispatch_now(&mut self, id: usize, shares: u32, cost: f64) -> bool {
        if self.queued > 0 || !self.fits(cost) {
            return false;
        }
        let vclock = self.vclock;
        let c = self.class(id, shares);
        c.vtime = c.vtime.max(vclock);
        let start = c.vtime;
        c.vtime += cost / c.shares;
        self.vclock = start;
        self.in_flight += cost;
        self.requests += 1;
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
    pub(crate) fn pop(&mut self, alive: impl Fn(&T) -> bool) -> Option<(usize, f64, T)> {
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
            if !self.fits(cost) {
                return None;
            }
            let c = self.classes[id].as_mut().expect("checked");
            let (cost, item) = c.queue.pop_front().expect("non-empty");
            self.vclock = c.vtime;
            c.vtime += cost / c.shares;
            self.queued -= 1;
            self.in_flight += cost;
            self.requests += 1;
            return Some((id, cost, item));
        }
    }

    /// A dispatched request of `cost` completed.
    pub(crate) fn complete(&mut self, cost: f64) {
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

    /// Two backlogged classes with shares 100 and 400, unit costs,
    /// capacity 1: dispatch counts split 1:4.
    #[test]
    fn backlogged_classes_split_dispatches_by_shares() {
        let mut q = FairQueue::new(1.0, 1);
        for i in 0..1000 {
            q.push(0, 100, 1.0, i);
            q.push(1, 400, 1.0, i);
        }
        let mut counts = [0; 2];
        for _ in 0..500 {
            let (id, cost, _) = q.pop(|_| true).unwrap();
            assert!(q.pop(|_| true).is_none(), "capacity 1 admits one request");
            counts[id] += 1;
            q.complete(cost);
        }
        assert_eq!(counts, [100, 400]);
    }

    #[test]
    fn cost_not_count_is_shared() {
        // Class 0 sends requests four times as costly: equal shares give
        // it a quarter of the dispatches.
        let mut q = FairQueue::new(1.0, 1);
        for i in 0..1000 {
            q.push(0, 100, 4.0, i);
            q.push(1, 100, 1.0, i);
        }
        let mut counts = [0; 2];
        for _ in 0..500 {
            let (id, cost, _) = q.pop(|_| true).unwrap();
            counts[id] += 1;
            q.complete(cost);
        }
        assert_eq!(counts, [100, 400]);
    }

    #[test]
    fn idle_class_earns_no_credit() {
        let mut q = FairQueue::new(1.0, 1);
        for i in 0..100 {
            q.push(0, 100, 1.0, i);
        }
        for _ in 0..100 {
            let (_, c, _) = q.pop(|_| true).unwrap();
            q.complete(c);
        }
        // Class 1 was idle while class 0 ran 100 requests; now both are
        // backlogged and alternate rather than class 1 running 100 in a row.
        for i in 0..10 {
            q.push(0, 100, 1.0, i);
            q.push(1, 100, 1.0, i);
        }
        let order: Vec<usize> = (0..6)
            .map(|_| {
                let (id, c, _) = q.pop(|_| true).unwrap();
                q.complete(c);
                id
            })
            .collect();
        assert_eq!(order.iter().filter(|&&i| i == 1).count(), 3, "{order:?}");
    }

    #[test]
    fn capacity_bounds_cost_in_flight_but_one_request_always_fits() {
        let mut q = FairQueue::new(2.5, 100);
        assert!(
            q.try_dispatch_now(0, 100, 10.0),
            "an idle queue admits anything"
        );
        assert!(!q.try_dispatch_now(0, 100, 1.0));
        q.complete(10.0);
        for i in 0..5 {
            q.push(0, 100, 1.0, i);
        }
        assert!(!q.try_dispatch_now(0, 100, 1.0), "queued work goes first");
        assert_eq!(q.pop(|_| true).map(|x| x.2), Some(0));
        assert_eq!(q.pop(|_| true).map(|x| x.2), Some(1));
        assert!(q.pop(|_| true).is_none(), "2 + 1 > 2.5");
        assert_eq!(q.in_flight(), (2, 2.0));
        q.complete(1.0);
        assert_eq!(q.pop(|_| true).map(|x| x.2), Some(2));
        assert_eq!(q.queue_len(0), 2);
    }

    #[test]
    fn dead_items_are_skipped_uncharged() {
        let mut q = FairQueue::new(1.0, 1);
        q.push(0, 100, 1.0, 1);
        q.push(0, 100, 1.0, 2);
        assert_eq!(q.pop(|&i| i != 1).map(|x| x.2), Some(2));
        assert_eq!(q.queue_len(0), 0);
        assert_eq!(q.in_flight(), (1, 1.0));
    }
}
