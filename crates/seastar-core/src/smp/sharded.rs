//! `Sharded<S>`: one instance of a service per shard.
//!
//! The Seastar way to hold state: instead of one object behind a lock,
//! every shard owns its own instance and callers send work to the shard
//! that owns the data (`invoke_on`), to all of them (`invoke_on_all`), or
//! gather from all (`map_reduce`). Instances are `!Send`-friendly: each is
//! built on its shard by the factory and never leaves it. `stop()` waits for
//! the calls in flight on each shard, then runs each instance's
//! [`StopHook::stop`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::{SubmitError, submit_to};
use crate::ShardId;
use crate::shard_local::{self, SlotKey};

/// A service's asynchronous shutdown, run on each shard by
/// [`Sharded::stop`] after the calls in flight there have finished.
pub trait StopHook: 'static {
    /// Releases the instance's resources. The default does nothing.
    fn stop(self: Rc<Self>) -> impl Future<Output = ()> {
        async {}
    }
}

struct Entry {
    instance: Rc<dyn Any>,
    in_flight: Rc<InFlight>,
}

#[derive(Default)]
struct InFlight {
    count: Cell<usize>,
    idle_waiters: RefCell<Vec<Waker>>,
}

struct InFlightGuard(Rc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let c = self.0.count.get() - 1;
        self.0.count.set(c);
        if c == 0 {
            self.0.idle_waiters.take().into_iter().for_each(Waker::wake);
        }
    }
}

/// One instance of `S` per shard. The handle is `Send + Sync + Clone`:
/// pass it to any shard.
///
/// ```
/// use std::cell::Cell;
/// use seastar_core::{Runtime, smp::{Sharded, StopHook}};
///
/// struct Counter(Cell<u64>);
/// impl StopHook for Counter {}
///
/// Runtime::builder().shards(2).build().unwrap().run(async {
///     let counters = Sharded::start(|_shard| Counter(Cell::new(0))).await.unwrap();
///     counters.invoke_on(1, |c| async move { c.0.set(c.0.get() + 5) }).await.unwrap();
///     counters.local().0.set(2);
///     let total = counters.map_reduce(|c| async move { c.0.get() }, |a, b| a + b, 0).await.unwrap();
///     assert_eq!(total, 7);
///     counters.stop().await.unwrap();
/// });
/// ```
pub struct Sharded<S> {
    /// Names the instance among each shard's slots (`shard_local`), where
    /// it lives and dies with the shard.
    key: SlotKey,
    /// The runtime whose shards hold the instances.
    runtime: u64,
    _marker: PhantomData<fn() -> S>,
}

impl<S> Clone for Sharded<S> {
    fn clone(&self) -> Self {
        Sharded {
            key: self.key,
            runtime: self.runtime,
            _marker: PhantomData,
        }
    }
}

impl<S> fmt::Debug for Sharded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sharded")
            .field("key", &self.key)
            .field("runtime", &self.runtime)
            .finish()
    }
}

impl<S: StopHook> Sharded<S> {
    /// Builds one instance on every shard with `factory(shard_id)`.
    pub async fn start<F>(factory: F) -> Result<Self, SubmitError>
    where
        F: Fn(usize) -> S + Send + Sync + Clone + 'static,
    {
        let key = SlotKey::unique();
        let runtime = ShardId::current().runtime();
        super::invoke_on_all(move || {
            let factory = factory.clone();
            async move {
                let instance: Rc<dyn Any> = Rc::new(factory(crate::shard_id()));
                let entry = Entry {
                    instance,
                    in_flight: Rc::default(),
                };
                shard_local::insert(key, entry);
            }
        })
        .await?;
        Ok(Sharded {
            key,
            runtime,
            _marker: PhantomData,
        })
    }

    /// The calling shard's instance.
    ///
    /// # Panics
    ///
    /// If the service was stopped, or on a thread that is not a shard of
    /// the runtime that started it.
    pub fn local(&self) -> Rc<S> {
        match self.try_local() {
            Some(s) => s,
            None if !self.on_its_runtime() => panic!(
                "Sharded service of runtime {} used outside it (on {:?})",
                self.runtime,
                ShardId::try_current()
            ),
            None => panic!("Sharded service not running on this shard"),
        }
    }

    /// The calling shard's instance, or `None` if the service was stopped
    /// or the calling thread is not a shard of the runtime that started it.
    pub fn try_local(&self) -> Option<Rc<S>> {
        if !self.on_its_runtime() {
            return None;
        }
        let e = shard_local::get::<Entry>(self.key)?;
        e.instance.clone().downcast::<S>().ok()
    }

    fn on_its_runtime(&self) -> bool {
        ShardId::try_current().is_some_and(|s| s.runtime() == self.runtime)
    }

    fn enter(key: SlotKey) -> Option<(Rc<S>, InFlightGuard)> {
        let e = shard_local::get::<Entry>(key)?;
        e.in_flight.count.set(e.in_flight.count.get() + 1);
        let guard = InFlightGuard(e.in_flight.clone());
        Some((e.instance.clone().downcast::<S>().ok()?, guard))
    }

    /// Runs `f` with shard `shard`'s instance, on that shard. The future
    /// does not borrow the handle.
    pub fn invoke_on<F, Fut, T>(
        &self,
        shard: usize,
        f: F,
    ) -> impl Future<Output = Result<T, SubmitError>> + 'static
    where
        F: FnOnce(Rc<S>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let key = self.key;
        let foreign = !self.on_its_runtime();
        async move {
            if foreign {
                return Err(SubmitError::Stopped);
            }
            submit_to(shard, move || async move {
                let (instance, _guard) = Self::enter(key).ok_or(SubmitError::Stopped)?;
                Ok(f(instance).await)
            })
            .await?
        }
    }

    /// Runs `f` with every shard's instance, concurrently; results in shard
    /// order.
    pub async fn invoke_on_all<F, Fut, T>(&self, f: F) -> Result<Vec<T>, SubmitError>
    where
        F: Fn(Rc<S>) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let calls = (0..crate::shard_count()).map(|s| self.invoke_on(s, f.clone()));
        futures::future::join_all(calls).await.into_iter().collect()
    }

    /// Maps every instance with `map` (on its shard) and folds the results
    /// with `reduce`, starting from `init`.
    pub async fn map_reduce<M, Fut, T, R, A>(
        &self,
        map: M,
        reduce: R,
        init: A,
    ) -> Result<A, SubmitError>
    where
        M: Fn(Rc<S>) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
        R: FnMut(A, T) -> A,
    {
        Ok(self
            .invoke_on_all(map)
            .await?
            .into_iter()
            .fold(init, reduce))
    }

    /// Stops the service: on every shard, refuses new calls, waits for the
    /// calls in flight, runs the instance's stop hook and drops it.
    pub async fn stop(&self) -> Result<(), SubmitError> {
        if !self.on_its_runtime() {
            return Err(SubmitError::Stopped);
        }
        let key = self.key;
        super::invoke_on_all(move || async move {
            let Some(entry) = shard_local::remove::<Entry>(key) else {
                return;
            };
            let entry = Rc::try_unwrap(entry).unwrap_or_else(|shared| Entry {
                instance: shared.instance.clone(),
                in_flight: shared.in_flight.clone(),
            });
            std::future::poll_fn(|cx| {
                if entry.in_flight.count.get() == 0 {
                    Poll::Ready(())
                } else {
                    entry
                        .in_flight
                        .idle_waiters
                        .borrow_mut()
                        .push(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            if let Ok(instance) = entry.instance.downcast::<S>() {
                instance.stop().await;
            }
        })
        .await
        .map(drop)
    }
}
