//! The open connections of one shard's server, for a graceful stop.
//!
//! A server that stops must stop accepting, let each connection finish what
//! it is serving, and know when the last one is gone. [`Connections`]
//! holds every open stream of the shard so that a stop can shut their read
//! sides at once ([`shutdown_all`](Connections::shutdown_all): each
//! connection sees end of stream after its current request) and then wait
//! for them to leave ([`wait_idle`](Connections::wait_idle)). Shard-local,
//! no atomics.
//!
//! A client decides neither how long that takes nor whether it ends: one
//! that never reads its replies keeps a connection's write blocked forever.
//! [`drain`](Connections::drain) bounds the stop: after its timeout it
//! shuts the remaining sockets both ways ([`abort_all`](Connections::abort_all)),
//! which fails their pending writes and ends their reads, so each
//! connection's task sees an error at its next I/O and leaves.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::net::Shutdown;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures::future::{Either, select};

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

    /// Registers an open connection and returns a guard that forgets it
    /// when dropped: the way to keep the set right whatever ends the
    /// connection's task (a return, an error, a panic unwinding it, or the
    /// task being dropped at a stop).
    ///
    /// ```
    /// use std::rc::Rc;
    /// use seastar_net::{Connections, ListenOptions, TcpListener, TcpStream};
    ///
    /// seastar_core::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
    ///     let client = seastar_core::spawn_local(TcpStream::connect(listener.local_addr().unwrap()));
    ///     let (server_side, _) = listener.accept().await.unwrap();
    ///     let conns = Rc::new(Connections::default());
    ///     let slot = Connections::register(&conns, Rc::new(server_side));
    ///     assert_eq!(conns.len(), 1);
    ///     drop(slot);
    ///     assert!(conns.is_empty());
    ///     drop(client.await.unwrap());
    /// });
    /// ```
    pub fn register(this: &Rc<Connections>, c: Rc<TcpStream>) -> Registration {
        Registration {
            id: this.insert(c),
            conns: this.clone(),
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

    /// Shuts both directions of every open connection: pending and future
    /// reads see end of stream and writes fail (`EPIPE`), so a connection
    /// blocked on a client that does not read its replies ends too.
    pub fn abort_all(&self) {
        for c in self.open.borrow().iter().flatten() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// The bounded graceful stop: shuts every read side
    /// ([`shutdown_all`](Self::shutdown_all)), waits up to `timeout` for
    /// the connections to finish and leave, then
    /// [`abort_all`](Self::abort_all)s those still open. Returns how many
    /// were aborted; it does not wait for them after aborting (their tasks
    /// end at their next I/O, or with the runtime).
    ///
    /// ```
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use seastar_net::{Connections, ListenOptions, TcpListener, TcpStream};
    ///
    /// seastar_core::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
    ///     let client = seastar_core::spawn_local(TcpStream::connect(listener.local_addr().unwrap()));
    ///     let (server_side, _) = listener.accept().await.unwrap();
    ///     let conns = Connections::default();
    ///     conns.insert(Rc::new(server_side));
    ///     // Nobody removes the connection: the drain gives up and aborts it.
    ///     assert_eq!(conns.drain(Duration::from_millis(10)).await, 1);
    ///     drop(client.await.unwrap());
    /// });
    /// ```
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.shutdown_all();
        let idle = std::pin::pin!(self.wait_idle());
        let limit = std::pin::pin!(seastar_core::timer::sleep(timeout));
        if let Either::Left(_) = select(idle, limit).await {
            return 0;
        }
        let left = self.len();
        tracing::warn!(
            shard = seastar_core::shard_id(),
            connections = left,
            "shutdown timeout: aborting connections"
        );
        self.abort_all();
        left
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

/// A connection's place in a [`Connections`] set, released when dropped
/// (see [`Connections::register`]).
#[derive(Debug)]
pub struct Registration {
    conns: Rc<Connections>,
    id: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.conns.remove(self.id);
    }
}
