//! [`serve_sharded`]: one [`Server`] per shard, until the runtime is asked
//! to stop.

use std::net::SocketAddr;

use seastar_core::smp;
use seastar_net::ListenOptions;
use seastar_net::tcp::{BindAllError, ShardedListeners};

use super::{ServeStats, Server};

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
    let bound = match ShardedListeners::bind(addr, opts).await {
        Ok(b) => b,
        Err(BindAllError::Bind { addr, source }) => return Err(ServeError::Bind { addr, source }),
        Err(BindAllError::Smp(e)) => return Err(e.into()),
    };
    on_listening(bound.local_addr());
    let stats = bound
        .serve(move |listener| {
            let make = make.clone();
            async move { make().serve(listener, seastar_core::stop_signal()).await }
        })
        .await?;
    Ok(stats)
}
