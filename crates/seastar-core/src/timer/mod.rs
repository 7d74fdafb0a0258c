//! Timers: [`sleep`], [`sleep_until`], [`timeout`], the callback [`Timer`],
//! a low-resolution clock for hot paths and a [`ManualClock`] for tests.
//!
//! Every shard keeps its own timer queue (a heap over a slab, see
//! `queue.rs`): arming and firing touch no other shard. Deadlines are
//! [`std::time::Instant`]s. A runtime built with
//! [`RuntimeBuilder::manual_clock`](crate::RuntimeBuilder::manual_clock)
//! replaces the real clock with one that moves only when a test calls
//! [`ManualClock::advance`], so time-dependent code is tested without
//! sleeping: timers fire in deadline order as time is advanced past them.
//!
//! ```
//! use std::time::Duration;
//! use seastar_core::{Runtime, timer};
//!
//! Runtime::builder().shards(1).build().unwrap().run(async {
//!     timer::sleep(Duration::from_millis(1)).await;
//!     let r = timer::timeout(Duration::from_millis(1), std::future::pending::<()>()).await;
//!     assert!(r.is_err());
//! });
//! ```

mod clock;
pub(crate) mod queue;
mod send_sleep;
mod sleep;
mod timer_cb;

pub(crate) use clock::Clock;
pub use clock::{ManualClock, lowres_now, now};
pub use send_sleep::SendSleep;
pub use sleep::{Elapsed, Sleep, Timeout, sleep, sleep_until, timeout};
pub use timer_cb::Timer;
pub(crate) use timer_cb::TimerInner;
