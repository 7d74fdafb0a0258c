//! Batched sleeps: under load, a sleeping shard asks the kernel to wake
//! it for a batch of completions rather than for the first one.
//!
//! A loaded server that sleeps between bursts (a shard serving many
//! connections whose clients are slower than it) is woken once per
//! burst, and each wake-up costs the core a context switch and, in a
//! virtual machine, an exit to the hypervisor for the interrupt that
//! ends the idle state: measured at several microseconds of kernel time
//! per sleep here, against 6-7 µs of kernel work per HTTPS request
//! (64 connections from wrk, one shard), with one wake-up every 13-15
//! requests. io_uring (Linux 6.12, `IORING_FEAT_MIN_TIMEOUT`) lets a
//! waiter ask for `want` completions but for at most `min_wait`: after
//! that it returns as soon as one is there. With `DEFER_TASKRUN` the
//! kernel does not even wake the thread before `want` items of work are
//! queued for it. So the shard sleeps through the first few arrivals of
//! a burst and handles them together, at the price of at most `min_wait`
//! of extra latency for the first of them.
//!
//! Reactor pollers count too (`Poller::handled`): a device woken through
//! one poll of its fd (the native stack's AF_XDP socket) brings one
//! completion per wake-up, however many frames follow it, so the frames a
//! poller received and sent since the last wake-up add to that wake-up's
//! completions. Its next burst then waits in the ring for up to `min_wait`
//! and is taken in one wake-up, as a NIC moderates its interrupts.
//!
//! The batch follows the load: a sleep waits for a batch (up to `max`
//! completions, for at most `min_wait`) only after a sleep that ended with
//! [`MIN_BATCH`] completions or more; otherwise it waits for the first
//! completion as before. A shard serving a few requests at a time (a
//! ping-pong client's wake-up carries its receive and the send posted on
//! the way to sleep) never waits longer than it did; a burst that thins
//! out costs one sleep of at most `min_wait`. (Waiting for only as many
//! completions as the previous sleep brought saved little: such a batch
//! fills as fast as the sleeps did before.)
//!
//! Measured (HTTPS keep-alive `GET /`, wrk -c64, server and wrk pinned to
//! one core each under `chrt -f 10`, server CPU per request, medians of 3
//! interleaved runs, every sleep after a busy one waiting for 64 or
//! `min_wait`): 8.56 µs without batching, 7.81 µs with `min_wait` 20 µs,
//! 7.03 µs with 50 µs; hyper on tokio-rustls 9.00 µs in the same runs. Cross-thread wake-ups (the eventfd poll) count as one completion
//! like any other, so a shard that sleeps in a batch also sees a
//! cross-shard message up to `min_wait` late; shards that exchange
//! messages poll for `smp_poll` before sleeping and are not affected.

use std::time::Duration;

/// The previous sleep ended with at least this many completions (about
/// eight requests: each brings a receive and its answer's send): the
/// next one waits for a batch.
pub(crate) const MIN_BATCH: u32 = 16;

/// The batching policy of one shard's sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SleepBatch {
    /// Most completions one sleep waits for (0 or 1: batching off).
    max: u32,
    /// Longest a sleep waits for the batch, in microseconds (0: off).
    min_wait_us: u32,
    /// Completions the previous sleep ended with.
    last: u32,
}

impl SleepBatch {
    /// Sleeps wait for up to `max` completions for at most `min_wait`
    /// (either zero turns batching off).
    pub(crate) fn new(max: u32, min_wait: Duration) -> SleepBatch {
        SleepBatch {
            max,
            min_wait_us: u32::try_from(min_wait.as_micros()).unwrap_or(u32::MAX),
            last: 0,
        }
    }

    /// Batching off.
    pub(crate) fn off() -> SleepBatch {
        SleepBatch::new(0, Duration::ZERO)
    }

    /// Whether sleeps may batch at all.
    pub(crate) fn enabled(&self) -> bool {
        self.max >= MIN_BATCH && self.min_wait_us > 0
    }

    /// What the next sleep waits for: `(want, min_wait_us)`, or `None` to
    /// wait for the first completion.
    #[inline]
    pub(crate) fn next(&self) -> Option<(u32, u32)> {
        (self.enabled() && self.last >= MIN_BATCH).then_some((self.max, self.min_wait_us))
    }

    /// A sleep ended with `completions` completions reaped.
    #[inline]
    pub(crate) fn woke(&mut self, completions: u32) {
        self.last = completions;
    }

    /// Reactor pollers handled `items` of work (frames received and sent)
    /// since the shard last woke: they count as that sleep's completions
    /// (a poller's device wakes the shard through one poll, whatever
    /// burst of frames follows it).
    #[inline]
    pub(crate) fn handled(&mut self, items: u32) {
        self.last = self.last.saturating_add(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SleepBatch {
        SleepBatch::new(64, Duration::from_micros(50))
    }

    #[test]
    fn the_first_sleep_waits_for_one_completion() {
        assert_eq!(policy().next(), None);
    }

    #[test]
    fn a_few_completions_never_batch() {
        let mut b = policy();
        for n in [1, 2, 3, MIN_BATCH - 1] {
            b.woke(n);
            assert_eq!(b.next(), None, "{n} completions");
        }
    }

    #[test]
    fn a_pollers_burst_after_a_single_wake_up_batches_the_next_sleep() {
        let mut b = policy();
        b.woke(1);
        b.handled(MIN_BATCH - 2);
        assert_eq!(b.next(), None, "one short");
        b.handled(1);
        assert_eq!(b.next(), Some((64, 50)));
        b.woke(1);
        assert_eq!(b.next(), None, "a wake-up starts the count again");
        b.handled(u32::MAX);
        assert_eq!(b.next(), Some((64, 50)), "saturates");
    }

    #[test]
    fn a_burst_makes_the_next_sleep_wait_for_a_full_batch() {
        let mut b = policy();
        b.woke(MIN_BATCH);
        assert_eq!(b.next(), Some((64, 50)));
        b.woke(1000);
        assert_eq!(b.next(), Some((64, 50)));
    }

    #[test]
    fn a_thinning_burst_stops_batching_at_once() {
        let mut b = policy();
        b.woke(40);
        // The sleep ran out of its wait with one completion.
        b.woke(1);
        assert_eq!(b.next(), None);
    }

    #[test]
    fn zero_max_or_zero_wait_turn_it_off() {
        for mut b in [
            SleepBatch::new(0, Duration::from_micros(50)),
            SleepBatch::new(64, Duration::ZERO),
            SleepBatch::new(MIN_BATCH - 1, Duration::from_micros(50)),
            SleepBatch::off(),
        ] {
            assert!(!b.enabled());
            b.woke(100);
            assert_eq!(b.next(), None);
        }
    }

    #[test]
    fn a_huge_wait_saturates() {
        let mut b = SleepBatch::new(MIN_BATCH, Duration::from_secs(1 << 40));
        b.woke(MIN_BATCH);
        assert_eq!(b.next(), Some((MIN_BATCH, u32::MAX)));
    }
}
