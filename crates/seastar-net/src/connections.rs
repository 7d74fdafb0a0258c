//! The open connections of one shard's server, for a graceful stop.
//!
//! A server that stops must stop accepting, let each connection finish what
//! it is serving, and know when the last one is gone. [`Connections`]
//! holds every open stream of the shard so that a stop can shut their read
//! sides at once ([`shutdown_all`](Connections::shutdown_all): each
//! connection sees end of stream after its current request) and then wait
//! for them to leave ([`wait_idle`](Connections::wait_idle)). Shard-local,
//! no atomics.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::net::Shutdown;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::TcpStream;

/// The open connections of a shard, with a waiter for "none left".
///
/// ```
/// use std::rc::Rc;
/// use seastar_net::{Connections, ListenOptions, TcpListener, TcpStream};
///
/// seastar_core::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let conns = Rc::new(Connections::default());
///     let client = seastar_core::spawn_local(TcpStream::connect(addr));
///     let (server_side, _) = listener.accept().await.unwrap();
///     let id = conns.insert(Rc::new(server_side));
///     assert_eq!(conns.len(), 1);
///     conns.shutdown_all();
///     conns.remove(id);
///     conns.wait_idle().await;
///     drop(client.await.unwrap());
/// });
/// ```
#[derive(Default)]
pub struct Connections {
    open: RefCell<Vec<Option<Rc<TcpStream>>>>,
    free: RefCell<Vec<usize>>,
    count: Cell<usize>,
    idle: RefCell<Option<Waker>>,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.count.get())
            .finish()
    }
}

impl Connections {
    /// Registers an open connection; returns the id to [`remove`](Self::remove) it with.
    pub fn insert(&self, c: Rc<TcpStream>) -> usize {
        self.count.set(self.count.get() + 1);
        let mut open = self.open.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(i) => {
                open[i] = Some(c);
                i
            }
            None => {
                open.push(Some(c));
                open.len() - 1
            }
        }
    }

    /// Forgets connection `id` (it ended); wakes [`wait_idle`](Self::wait_idle) after the last.
    pub fn remove(&self, id: usize) {
        self.open.borrow_mut()[id] = None;
        self.free.borrow_mut().push(id);
        self.count.set(self.count.get() - 1);
        if self.count.get() == 0 {
            if let Some(w) = self.idle.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.count.get()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.count.get() == 0
    }

    /// Shuts every connection's read side: each sees end of stream once it
    /// has read what was already sent, so it ends after its current request.
    pub fn shutdown_all(&self) {
        for c in self.open.borrow().iter().flatten() {
            let _ = c.shutdown(Shutdown::Read);
        }
    }

    /// Resolves once no connection is open.
    pub async fn wait_idle(&self) {
        poll_fn(|cx| {
            if self.count.get() == 0 {
                Poll::Ready(())
            } else {
                *self.idle.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}
