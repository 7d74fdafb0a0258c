//! memcached's time rules: expiration times and `flush_all`.
//!
//! The store counts time in seconds since server start (`now`), as
//! memcached's `current_time` does; the connection loop supplies it (from a
//! coarse clock ticking once a second, or a manual clock in tests).
//!
//! A client's exptime is converted by [`deadline`] exactly as memcached's
//! `realtime(EXPTIME_TO_POSITIVE_TIME(t))`:
//!
//! | exptime                 | meaning                                  |
//! |-------------------------|------------------------------------------|
//! | 0                       | never expires                            |
//! | 1 ..= 30 days (2592000) | relative: `now + exptime`                |
//! | > 30 days               | absolute Unix time (`exptime - epoch`)   |
//! | < 0, or absolute time at or before server start | already expired |
//!
//! An item is expired once `deadline <= now`. Deadlines are `i64` so that
//! "already expired" and "never" need no sentinel arithmetic on `u32`.

/// memcached's `REALTIME_MAXDELTA`: larger exptimes are absolute.
pub const MAX_RELATIVE: i64 = 60 * 60 * 24 * 30;

/// Deadline of an item that never expires.
pub const NEVER: i64 = i64::MAX;

/// Deadline of an item that is expired at any `now`.
pub const EXPIRED: i64 = i64::MIN;

/// Converts a client exptime into a deadline in server seconds.
///
/// `epoch` is the Unix time at which `now` was 0.
///
/// ```
/// use memcached::store::time::{deadline, EXPIRED, NEVER};
/// let epoch = 1_700_000_000;
/// assert_eq!(deadline(0, 100, epoch), NEVER);
/// assert_eq!(deadline(10, 100, epoch), 110);
/// assert_eq!(deadline(-1, 100, epoch), EXPIRED);
/// assert_eq!(deadline(epoch + 500, 100, epoch), 500);
/// assert_eq!(deadline(epoch - 5, 100, epoch), EXPIRED);
/// ```
pub fn deadline(exptime: i64, now: u32, epoch: i64) -> i64 {
    match exptime {
        0 => NEVER,
        t if t < 0 => EXPIRED,
        t if t > MAX_RELATIVE => {
            if t <= epoch {
                EXPIRED
            } else {
                t - epoch
            }
        }
        t => i64::from(now) + t,
    }
}

/// True once an item with this deadline must no longer be served.
pub fn is_expired(deadline: i64, now: u32) -> bool {
    deadline <= i64::from(now)
}

/// Seconds left before `deadline`, `None` for never (meta `t` prints -1).
pub fn remaining(deadline: i64, now: u32) -> Option<u64> {
    if deadline == NEVER {
        return None;
    }
    Some(deadline.saturating_sub(i64::from(now)).max(0) as u64)
}

/// The state `flush_all` leaves behind (memcached's `settings.oldest_live`
/// and `settings.oldest_cas`).
///
/// `flush_all [delay]` sets `oldest_live = flush_time - 1`, where
/// `flush_time` is `now` or the delay converted like an exptime. From the
/// moment `oldest_live <= now`, an item is flushed if it was last stored or
/// accessed at or before `oldest_live`, or, for an immediate flush, if its
/// CAS is below the CAS counter at flush time (which catches items stored
/// earlier in the same second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flush {
    oldest_live: Option<i64>,
    oldest_cas: u64,
}

impl Flush {
    /// Records a `flush_all` with `delay` at `now`; `next_cas` is the CAS
    /// value the next stored item will get.
    pub fn schedule(&mut self, delay: i64, now: u32, epoch: i64, next_cas: u64) {
        let flush_time = if delay > 0 {
            deadline(delay, now, epoch)
        } else {
            i64::from(now)
        };
        let oldest_live = flush_time.saturating_sub(1);
        self.oldest_live = Some(oldest_live);
        if oldest_live <= i64::from(now) {
            self.oldest_cas = next_cas;
        }
    }

    /// Whether an item last touched at `time` with `cas` has been flushed.
    pub fn is_flushed(&self, time: i64, cas: u64, now: u32) -> bool {
        let Some(oldest) = self.oldest_live else {
            return false;
        };
        if oldest > i64::from(now) {
            return false;
        }
        time <= oldest || (self.oldest_cas != 0 && cas != 0 && cas < self.oldest_cas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: i64 = 1_700_000_000;

    #[test]
    fn thirty_days_is_still_relative() {
        assert_eq!(deadline(MAX_RELATIVE, 5, EPOCH), 5 + MAX_RELATIVE);
        assert_eq!(deadline(MAX_RELATIVE + 1, 5, EPOCH), EXPIRED);
    }

    #[test]
    fn expiry_is_inclusive() {
        let d = deadline(2, 10, EPOCH);
        assert!(!is_expired(d, 11));
        assert!(is_expired(d, 12));
        assert!(!is_expired(NEVER, u32::MAX));
        assert!(is_expired(EXPIRED, 0));
        assert_eq!(remaining(d, 11), Some(1));
        assert_eq!(remaining(NEVER, 11), None);
    }

    #[test]
    fn immediate_flush_hides_items_of_the_same_second_by_cas() {
        let mut f = Flush::default();
        assert!(!f.is_flushed(10, 5, 10));
        f.schedule(0, 10, EPOCH, 6);
        assert!(f.is_flushed(9, 1, 10));
        assert!(f.is_flushed(10, 5, 10));
        assert!(!f.is_flushed(10, 6, 10));
        assert!(!f.is_flushed(11, 7, 11));
    }

    #[test]
    fn delayed_flush_waits_for_its_time() {
        let mut f = Flush::default();
        f.schedule(10, 100, EPOCH, 50);
        // memcached: oldest_live = realtime(10) - 1 = 109.
        assert!(!f.is_flushed(100, 1, 108));
        assert!(f.is_flushed(100, 1, 109));
        assert!(f.is_flushed(109, 1, 200));
        assert!(!f.is_flushed(110, 1, 200));
    }

    #[test]
    fn flush_at_time_zero_does_not_underflow() {
        let mut f = Flush::default();
        f.schedule(0, 0, EPOCH, 1);
        assert!(!f.is_flushed(0, 1, 0));
        assert!(f.is_flushed(-1, 0, 0));
    }
}
