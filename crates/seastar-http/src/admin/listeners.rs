//! Listeners an app names for `/api/v1/connections`, per shard.
//!
//! A shard's listener counters ([`ListenerStats`]) live with the listener,
//! which the app owns; the app registers a way to read them on each shard
//! that serves ([`register_listener`]) and the API calls it there, by
//! message passing. A registration whose reader answers `None` (its
//! listener is gone) is dropped. Registrations live in the shard's slots
//! ([`seastar_core::shard_local`]): they end with the runtime.

use std::cell::RefCell;
use std::rc::Rc;

use seastar_core::shard_local::{self, SlotKey};
use seastar_net::ListenerStats;

type Reader = Box<dyn Fn() -> Option<ListenerStats>>;

/// The calling shard's registrations.
#[derive(Default)]
struct Listeners(RefCell<Vec<(String, Reader)>>);

fn listeners() -> Rc<Listeners> {
    shard_local::get_or_init(SlotKey::SINGLETON, Listeners::default)
}

/// Names a listener of the calling shard for the admin API: `read` returns
/// its counters, or `None` once it is gone (typically from a `Weak`).
///
/// ```
/// # seastar_core::block_on(async {
/// use std::rc::Rc;
/// use seastar_net::{ListenOptions, TcpListener};
///
/// let l = Rc::new(TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap());
/// let weak = Rc::downgrade(&l);
/// seastar_http::admin::register_listener("echo", move || weak.upgrade().map(|l| l.stats()));
/// assert_eq!(seastar_http::admin::local_listeners()[0].0, "echo");
/// drop(l);
/// assert!(seastar_http::admin::local_listeners().is_empty());
/// # });
/// ```
///
/// # Panics
///
/// Outside a shard.
pub fn register_listener(name: &str, read: impl Fn() -> Option<ListenerStats> + 'static) {
    listeners()
        .0
        .borrow_mut()
        .push((name.to_owned(), Box::new(read)));
}

/// The calling shard's registered listeners that are still alive, with
/// their counters, in registration order (none outside a shard).
pub fn local_listeners() -> Vec<(String, ListenerStats)> {
    if seastar_core::ShardId::try_current().is_none() {
        return Vec::new();
    }
    let Some(l) = shard_local::get::<Listeners>(SlotKey::SINGLETON) else {
        return Vec::new();
    };
    // Taken out while the readers run, so that one may register another.
    let mut all = std::mem::take(&mut *l.0.borrow_mut());
    let mut out = Vec::with_capacity(all.len());
    all.retain(|(name, read)| match read() {
        Some(s) => {
            out.push((name.clone(), s));
            true
        }
        None => false,
    });
    let mut l = l.0.borrow_mut();
    all.append(&mut l);
    *l = all;
    out
}
