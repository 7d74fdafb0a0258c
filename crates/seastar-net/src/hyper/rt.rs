//! hyper's runtime traits on a shard: an executor that spawns on the current
//! shard and a timer on the shard's timer queue.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::hyper::rt::{Executor, Sleep, Timer};
use seastar_core::timer;

/// hyper's [`Executor`] for shard-local tasks: `execute` spawns the future
/// on the calling shard with [`seastar_core::spawn_local`], so the future
/// need not be `Send` (HTTP/2 stream tasks of a connection stay on the
/// shard that serves it).
///
/// ```
/// use hyper::rt::Executor;
/// use seastar_net::hyper::ShardExecutor;
///
/// seastar_core::block_on(async {
///     let (tx, rx) = seastar_core::promise::promise();
///     ShardExecutor.execute(async move { tx.set_value(7) });
///     assert_eq!(rx.await.unwrap(), 7);
/// });
/// ```
///
/// # Panics
///
/// `execute` panics outside a shard.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardExecutor;

impl<F> Executor<F> for ShardExecutor
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        seastar_core::spawn_local(async move {
            fut.await;
        })
        .detach();
    }
}

/// hyper's [`Timer`] on the shard's timer queue (and so on its manual clock
/// in tests): header-read timeouts, HTTP/2 keep-alive pings.
///
/// ```
/// use std::time::Duration;
/// use seastar_net::hyper::ShardTimer;
///
/// let _builder = hyper::server::conn::http1::Builder::new()
///     .timer(ShardTimer)
///     .header_read_timeout(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardTimer;

impl Timer for ShardTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(ShardSleep::new(timer::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(ShardSleep::new(timer::sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<ShardSleep>() {
            Some(mut s) => s.0.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    /// The loop iteration's clock ([`timer::lowres_now`]): hyper asks on
    /// every request (its header-read deadline), and a deadline early by
    /// at most one task quota is harmless, where a clock read costs about
    /// 130 instructions (callgrind, httpd).
    fn now(&self) -> Instant {
        timer::lowres_now()
    }
}

/// The sleep [`ShardTimer`] hands to hyper: a [`timer::Sleep`] that
/// implements [`hyper::rt::Sleep`](Sleep).
///
/// ```
/// use std::time::Duration;
/// use hyper::rt::Timer;
/// use seastar_net::hyper::ShardTimer;
///
/// seastar_core::block_on(async {
///     ShardTimer.sleep(Duration::from_micros(10)).await;
/// });
/// ```
///
/// hyper wants its sleeps `Send + Sync`: this is a shard-checked
/// [`timer::SendSleep`].
#[derive(Debug)]
pub struct ShardSleep(timer::SendSleep);

impl ShardSleep {
    fn new(sleep: timer::Sleep) -> ShardSleep {
        ShardSleep(sleep.into_send())
    }
}

impl Future for ShardSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl Sleep for ShardSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use seastar_core::timer::ManualClock;

    #[test]
    fn timer_follows_the_manual_clock_and_reset_moves_the_deadline() {
        seastar_core::Runtime::builder()
            .shards(1)
            .manual_clock()
            .build()
            .unwrap()
            .run(async {
                let start = ShardTimer.now();
                let mut s = ShardTimer.sleep(Duration::from_millis(10));
                ShardTimer.reset(&mut s, start + Duration::from_millis(30));
                let done = std::rc::Rc::new(std::cell::Cell::new(false));
                let flag = done.clone();
                seastar_core::spawn_local(async move {
                    s.await;
                    flag.set(true);
                })
                .detach();
                ManualClock::advance(Duration::from_millis(20)).await;
                assert!(!done.get(), "fired at the old deadline");
                ManualClock::advance(Duration::from_millis(10)).await;
                assert!(done.get());
                assert_eq!(ShardTimer.now() - start, Duration::from_millis(30));
            });
    }
}
