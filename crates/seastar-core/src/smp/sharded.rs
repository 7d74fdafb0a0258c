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
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};

use super::{SubmitError, submit_to};

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

thread_local! {
    static REGISTRY: RefCell<HashMap<u64, Entry>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

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
    id: u64,
    _marker: PhantomData<fn() -> S>,
}

impl<S> Clone for Sharded<S> {
    fn clone(&self) -> Self {
        Sharded {
            id: self.id,
            _marker: PhantomData,
        }
    }
}

impl<S> fmt::Debug for Sharded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sharded").field("id", &self.id).finish()
    }
}

impl<S: StopHook> Sharded<S> {
    /// Builds one instance on every shard with `factory(shard_id)`.
    pub async fn start<F>(factory: F) -> Result<Self, SubmitError>
    where
        F: Fn(usize) -> S + Send + Sync + Clone + 'static,
    {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        super::invoke_on_all(move || {
            let factory = factory.clone();
            async move {
                let instance: Rc<dyn Any> = Rc::new(factory(crate::shard_id()));
                let entry = Entry {
                    instance,
                    in_flight: Rc::default(),
                };
                REGISTRY.with(|r| r.borrow_mut().insert(id, entry));
            }
        })
        .await?;
        Ok(Sharded {
            id,
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
        self.try_local()
            .expect("Sharded service not running on this shard")
    }

    fn try_local(&self) -> Option<Rc<S>> {
        REGISTRY
            .with(|r| r.borrow().get(&self.id).map(|e| e.instance.clone()))
            .and_then(|i| i.downcast::<S>().ok())
    }

    fn enter(id: u64) -> Option<(Rc<S>, InFlightGuard)> {
        REGISTRY.with(|r| {
            let r = r.borrow();
            let e = r.get(&id)?;
            e.in_flight.count.set(e.in_flight.count.get() + 1);
            let guard = InFlightGuard(e.in_flight.clone());
            Some((e.instance.clone().downcast::<S>().ok()?, guard))
        })
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
        let id = self.id;
        async move {
            submit_to(shard, move || async move {
                let (instance, _guard) = Self::enter(id).ok_or(SubmitError::Stopped)?;
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
        let id = self.id;
        super::invoke_on_all(move || async move {
            let Some(entry) = REGISTRY.with(|r| r.borrow_mut().remove(&id)) else {
                return;
            };
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
