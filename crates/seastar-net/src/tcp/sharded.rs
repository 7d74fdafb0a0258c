//! [`ShardedListeners`]: one address bound on every shard, then served on
//! every shard: the "bind everywhere, stash, serve" step every server does.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;

use seastar_core::shard_local::{self, SlotKey};
use seastar_core::smp::{self, SubmitError};

use super::{ListenOptions, TcpListener};

/// Why [`ShardedListeners::bind`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BindAllError {
    /// A shard could not bind (the first error, in shard order).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The shard's error.
        source: io::Error,
    },
    /// A shard did not answer (the runtime is going down).
    #[error("cross-shard call failed: {0}")]
    Smp(#[from] SubmitError),
}

/// A shard's listener between binding and serving, in its slots.
struct Stashed(RefCell<Option<TcpListener>>);

/// One listening address bound on every shard of the runtime (one
/// `SO_REUSEPORT` socket per shard, or shard 0 distributing, per the
/// [`ListenOptions`]), each shard's listener waiting in that shard's
/// slots until [`serve`](Self::serve) (or [`take`](Self::take)) picks it
/// up. Several may exist at once (an HTTP and an HTTPS port); the handle
/// is `Send`, so it can be passed to the shards.
///
/// ```
/// use seastar_core::Runtime;
/// use seastar_net::{ListenOptions, tcp::ShardedListeners};
///
/// Runtime::builder().shards(2).handle_signals(false).build().unwrap().run(async {
///     let any = "127.0.0.1:0".parse().unwrap();
///     let bound = ShardedListeners::bind(any, ListenOptions::default()).await.unwrap();
///     println!("listening on {}", bound.local_addr());
///     // A real server accepts in a loop until it is asked to stop.
///     let ports = bound
///         .serve(|listener| async move { listener.local_addr().unwrap().port() })
///         .await
///         .unwrap();
///     assert_eq!(ports[0], ports[1]);
/// });
/// ```
#[derive(Debug, Clone)]
pub struct ShardedListeners {
    key: SlotKey,
    addr: SocketAddr,
}

impl ShardedListeners {
    /// Binds `addr` on every shard. Port 0 picks one port for all of them.
    /// If any shard fails, the listeners already bound are closed.
    pub async fn bind(addr: SocketAddr, opts: ListenOptions) -> Result<Self, BindAllError> {
        let key = SlotKey::unique();
        let bound = smp::invoke_on_all(move || {
            let opts = opts.clone();
            async move {
                let l = TcpListener::bind(addr, opts).await?;
                let local = l.local_addr()?;
                shard_local::insert(key, Stashed(RefCell::new(Some(l))));
                Ok::<_, io::Error>(local)
            }
        })
        .await?;
        match bound.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(addrs) => Ok(ShardedListeners {
                key,
                addr: addrs[0],
            }),
            Err(source) => {
                smp::invoke_on_all(move || async move { take(key).map(drop) }).await?;
                Err(BindAllError::Bind { addr, source })
            }
        }
    }

    /// The bound address (the concrete port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the calling shard's listener (once; `None` afterwards, or on
    /// a shard of another runtime).
    pub fn take(&self) -> Option<TcpListener> {
        seastar_core::ShardId::try_current()?;
        take(self.key)
    }

    /// Runs `serve` with each shard's listener, on every shard at once,
    /// and returns the results in shard order. A listener already taken
    /// on some shard makes that shard's call panic.
    pub async fn serve<F, Fut, T>(self, serve: F) -> Result<Vec<T>, SubmitError>
    where
        F: Fn(TcpListener) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let key = self.key;
        smp::invoke_on_all(move || {
            let serve = serve.clone();
            async move {
                let listener =
                    take(key).expect("ShardedListeners: this shard's listener was taken");
                serve(listener).await
            }
        })
        .await
    }
}

fn take(key: SlotKey) -> Option<TcpListener> {
    shard_local::remove::<Stashed>(key)?.0.borrow_mut().take()
}
