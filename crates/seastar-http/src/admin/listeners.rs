//! Listeners an app names for `/api/v1/connections`, per shard.
//!
//! A shard's listener counters ([`ListenerStats`]) live with the listener,
//! which the app owns; the app registers a way to read them on each shard
//! that serves ([`register_listener`]) and the API calls it there, by
//! message passing. A registration whose reader answers `None` (its
//! listener is gone) is dropped.

use std::cell::RefCell;

use seastar_net::ListenerStats;

type Reader = Box<dyn Fn() -> Option<ListenerStats>>;

thread_local! {
    static LISTENERS: RefCell<Vec<(String, Reader)>> = const { RefCell::new(Vec::new()) };
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
pub fn register_listener(name: &str, read: impl Fn() -> Option<ListenerStats> + 'static) {
    LISTENERS.with(|l| l.borrow_mut().push((name.to_owned(), Box::new(read))));
}

/// The calling shard's registered listeners that are still alive, with
/// their counters, in registration order.
pub fn local_listeners() -> Vec<(String, ListenerStats)> {
    LISTENERS.with(|l| {
        let mut l = l.borrow_mut();
        let mut out = Vec::with_capacity(l.len());
        l.retain(|(name, read)| match read() {
            Some(s) => {
                out.push((name.clone(), s));
                true
            }
            None => false,
        });
        out
    })
}
