//! [`serve_sharded`]: one [`Server`] per shard, until the runtime is asked
//! to stop.

use std::cell::RefCell;
use std::net::SocketAddr;

use seastar_core::shard_local::{self, SlotKey};
use seastar_core::smp;
use seastar_net::{ListenOptions, TcpListener};

use super::{ServeStats, Server};

/// A shard's listener between binding and serving, in the shard's slots
/// under the key of its `serve_sharded` call (several may run at once:
/// HTTP and HTTPS).
struct Bound(RefCell<Option<TcpListener>>);

/// Takes this shard's listener of call `key`.
fn take_listener(key: SlotKey) -> Option<TcpListener> {
    shard_local::remove::<Bound>(key)?.0.borrow_mut().take()
}

/// Why [`serve_sharded`] could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A shard could not bind its listener.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A shard did not answer (the runtime is going down).
    #[error("cross-shard call failed: {0}")]
    Smp(#[from] smp::SubmitError),
}

/// Binds `addr` on every shard (per `opts`: one `SO_REUSEPORT` listener per
/// shard by default), calls `on_listening` with the bound address (port 0
/// picks one), then serves `make()` on every shard until
/// [`stop_signal`](seastar_core::stop_signal) (SIGINT/SIGTERM or
/// [`request_stop`](seastar_core::request_stop)) and stops gracefully.
/// Returns each shard's [`ServeStats`] in shard order.
///
/// ```
/// use seastar_http::{Request, Router, Server, routing::get};
///
/// seastar_core::Runtime::builder().shards(2).handle_signals(false).build().unwrap().run(async {
///     let make = || Server::new(Router::new().route("/", get(|_r: Request| async { "hi\n" })));
///     let stats = seastar_http::serve_sharded(
///         "127.0.0.1:0".parse().unwrap(),
///         seastar_net::ListenOptions::default(),
///         make,
///         |addr| {
///             println!("listening on {addr}");
///             seastar_core::request_stop(); // a real server waits for a signal
///         },
///     )
///     .await
///     .unwrap();
///     assert_eq!(stats.len(), 2);
/// });
/// ```
pub async fn serve_sharded<F>(
    addr: SocketAddr,
    opts: ListenOptions,
    make: F,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<Vec<ServeStats>, ServeError>
where
    F: Fn() -> Server + Send + Clone + 'static,
{
    let id = SlotKey::unique();
    let bound = smp::invoke_on_all(move || {
        let opts = opts.clone();
        async move {
            let l = TcpListener::bind(addr, opts).await?;
            let local = l.local_addr()?;
            shard_local::insert(id, Bound(RefCell::new(Some(l))));
            Ok::<_, std::io::Error>(local)
        }
    })
    .await?;
    let local = match bound.into_iter().collect::<Result<Vec<_>, _>>() {
        Ok(addrs) => addrs[0],
        Err(source) => {
            smp::invoke_on_all(move || async move { take_listener(id).map(drop) }).await?;
            return Err(ServeError::Bind { addr, source });
        }
    };
    on_listening(local);
    let stats = smp::invoke_on_all(move || {
        let make = make.clone();
        async move {
            let listener = take_listener(id).expect("bound before serving");
            make().serve(listener, seastar_core::stop_signal()).await
        }
    })
    .await?;
    Ok(stats)
}
