//! The sharded memcached server: TCP and UDP on every shard.
//!
//! # Shape
//!
//! [`serve`] runs on shard 0 of a running [`Runtime`](seastar_core::Runtime)
//! and drives all shards:
//!
//! 1. A `Sharded<ShardState>` service gives every shard its own
//!    [`Handler`](crate::handler::Handler): a store holding `-m / shards`
//!    bytes and its stats. Nothing is shared between shards; the key's hash
//!    ([`shard_of`](crate::shard_of)) names the shard that owns it.
//! 2. The TCP address is bound on every shard ([`ShardedListeners`]: shard
//!    0 hands connections to the least-loaded shard, or with `--listener
//!    per-shard` one `SO_REUSEPORT` socket per shard lets the kernel
//!    spread them) and, with `-U`, every shard binds its own UDP socket.
//! 3. Every shard accepts and serves its connections (`conn`), forwarding
//!    requests for keys it does not own in one batch per owner and read
//!    (`routing`); `stats` and `flush_all` go to all shards (`global`).
//!    A periodic timer per shard sweeps a slice of the store for expired
//!    items ([`SWEEP_PERIOD`], [`SWEEP_BUDGET`]).
//! 4. On [`stop_signal`](seastar_core::stop_signal) (SIGINT/SIGTERM, or
//!    [`request_stop`](seastar_core::request_stop)) every shard stops
//!    accepting, lets each connection finish the read it is serving, waits
//!    for them up to [`Config::shutdown_timeout`], aborts the rest, and
//!    `serve` returns.
//!
//! ```no_run
//! use memcached::server::{Config, serve};
//! use seastar_core::Runtime;
//!
//! let report = Runtime::builder().shards(2).build().unwrap().run(async {
//!     serve(Config::default(), |bound| println!("listening on {}", bound.tcp)).await
//! });
//! println!("{:?}", report.unwrap());
//! ```

mod coalesce;
mod conn;
mod exporters;
mod global;
pub mod native;
mod routing;
mod shard;
pub mod tls;
pub mod udp;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seastar_core::smp::{Sharded, SubmitError};
use seastar_core::timer::{self, Timer};
use seastar_core::{shard_count, shard_id, spawn_local};
use seastar_net::tcp::BindAllError;
use seastar_net::{ListenOptions, ListenerMode, ShardedListeners};

pub use conn::ShardReport;
use shard::{Settings, ShardState};

/// How often each shard's sweeper runs.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// Table slots each sweep examines (a full pass over a million-slot table
/// takes about a minute; lazy expiry covers the keys that are asked for).
pub const SWEEP_BUDGET: usize = 16 * 1024;

/// Server options (the memcached flags they come from in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// TCP address (`-l`, `-p`); port 0 picks a free port.
    pub tcp: SocketAddr,
    /// UDP address (`-l`, `-U`), `None` for no UDP; port 0 picks a free port.
    pub udp: Option<SocketAddr>,
    /// Item memory of the whole server in bytes (`-m`, in MiB there),
    /// split evenly across shards.
    pub memory_limit: usize,
    /// Simultaneous connections (`-c`), split evenly across shards.
    pub max_connections: usize,
    /// Largest item (`-I`): key, value and per-item overhead.
    pub item_size_max: usize,
    /// Serve every shard's metrics for Prometheus at `http://ADDR/metrics`
    /// (`--prometheus-port`); off when `None`.
    pub prometheus: Option<SocketAddr>,
    /// Push every shard's metrics to collectd (`--collectd-address`,
    /// `--collectd-interval`); off when `None`.
    pub collectd: Option<seastar_net::collectd::Config>,
    /// Replies a connection builds before it waits for the client to take
    /// them (`--conn-output-budget`, see `conn`).
    pub conn_output_budget: usize,
    /// Close connections without a request for this long (`-o
    /// idle_timeout=N`, `--idle-timeout`); `None` never does (memcached's
    /// default).
    pub idle_timeout: Option<Duration>,
    /// How long a stop waits for the connections to finish before it
    /// aborts them (`--shutdown-timeout`).
    pub shutdown_timeout: Duration,
    /// Reply bytes after which a UDP request's execution stops
    /// (`--udp-reply-max`, see [`udp`]).
    pub udp_reply_max: usize,
    /// Serve UDP on the native stack instead of the kernel's
    /// (`--network-stack native`; TCP is then off), see [`native`].
    pub native: Option<native::NativeNet>,
    /// TLS on the TCP port (`-Z`, `-o ssl_chain_cert=…,ssl_key=…`), see [`tls`].
    pub tls: Option<tls::TlsConfig>,
    /// How TCP connections reach the shards (`--listener`).
    pub listener: ListenerMode,
}

/// Default [`Config::conn_output_budget`]: 1 MiB.
pub const DEFAULT_OUTPUT_BUDGET: usize = 1 << 20;

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp: SocketAddr::from((Ipv4Addr::LOCALHOST, 11211)),
            udp: None,
            memory_limit: 64 << 20,
            max_connections: 1024,
            item_size_max: 1 << 20,
            prometheus: None,
            collectd: None,
            conn_output_budget: DEFAULT_OUTPUT_BUDGET,
            idle_timeout: None,
            shutdown_timeout: Duration::from_secs(30),
            udp_reply_max: udp::MAX_REPLY,
            native: None,
            tls: None,
            listener: ListenerMode::default(),
        }
    }
}

/// Where the server listens, once bound (passed to `serve`'s `on_ready`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The TCP address (the real port when 0 was asked for).
    pub tcp: SocketAddr,
    /// The UDP address, if serving UDP.
    pub udp: Option<SocketAddr>,
    /// Shards serving.
    pub shards: usize,
    /// The Prometheus endpoint's address, when on.
    pub prometheus: Option<SocketAddr>,
}

/// What the server did, per shard, returned after a stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardReport>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr} ({proto}): {source}")]
    Bind {
        /// `tcp` or `udp`.
        proto: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// A shard could not be reached.
    #[error("shard unavailable: {0}")]
    Shard(#[from] SubmitError),
    /// `serve` was called on a shard other than 0.
    #[error("serve must run on shard 0")]
    NotShardZero,
    /// The native stack did not start, or its UDP port could not be bound.
    #[error("native stack: {0}")]
    Native(String),
}

/// Runs the server on every shard until a stop is requested (see the
/// module doc). Call it on shard 0; `on_ready` runs once every socket is
/// bound.
pub async fn serve(config: Config, on_ready: impl FnOnce(&Bound)) -> Result<Report, ServeError> {
    if shard_id() != 0 {
        return Err(ServeError::NotShardZero);
    }
    let settings = Settings {
        config: config.clone(),
        start: timer::now(),
        epoch: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        shards: shard_count(),
    };
    let service = Sharded::start(move |_| ShardState::new(&settings)).await?;
    let result = run(&service, &config, on_ready).await;
    if let Err(e) = service.stop().await {
        tracing::warn!(error = %e, "stopping the shards");
    }
    result
}

async fn run(
    service: &Sharded<ShardState>,
    config: &Config,
    on_ready: impl FnOnce(&Bound),
) -> Result<Report, ServeError> {
    if let Some(net) = &config.native {
        return native::run(service, config, net, on_ready).await;
    }
    let want = config.tcp;
    let opts = ListenOptions::default()
        .nodelay(true)
        .policy(config.listener.into());
    let listeners = match ShardedListeners::bind(want, opts).await {
        Ok(l) => l,
        Err(BindAllError::Bind { source, .. }) => {
            return Err(ServeError::Bind {
                proto: "tcp",
                addr: want,
                source,
            });
        }
        Err(BindAllError::Smp(e)) => return Err(e.into()),
    };
    let tcp = listeners.local_addr();
    let listeners = Some(listeners);
    let udp = match config.udp {
        None => None,
        Some(want) => {
            let err = |source| ServeError::Bind {
                proto: "udp",
                addr: want,
                source,
            };
            // Shard 0 first, so that port 0 becomes one port for all.
            let first = udp::bind(want).map_err(err)?;
            let addr = first.local_addr().map_err(err)?;
            *service.local().udp.borrow_mut() = Some(first.into());
            let rest = service
                .invoke_on_all(move |st| async move {
                    if shard_id() != 0 {
                        *st.udp.borrow_mut() = Some(udp::bind(addr)?.into());
                    }
                    Ok::<_, io::Error>(())
                })
                .await?;
            rest.into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            Some(addr)
        }
    };
    serve_bound(service, config, tcp, listeners, udp, on_ready).await
}

/// Records the ports, starts the exporters, runs `on_ready`, then serves
/// every shard until stopped.
async fn serve_bound(
    service: &Sharded<ShardState>,
    config: &Config,
    tcp: SocketAddr,
    listeners: Option<ShardedListeners>,
    udp: Option<SocketAddr>,
    on_ready: impl FnOnce(&Bound),
) -> Result<Report, ServeError> {
    let (tcp_port, udp_port) = (tcp.port(), udp.map_or(0, |a| a.port()));
    service
        .invoke_on_all(move |st| async move {
            let mut h = st.handler.borrow_mut();
            let info = h.server_info_mut();
            info.tcp_port = tcp_port;
            info.udp_port = udp_port;
        })
        .await?;
    let exporters = exporters::Exporters::start(config).await?;
    on_ready(&Bound {
        tcp,
        udp,
        shards: shard_count(),
        prometheus: exporters.prometheus,
    });
    let svc = service.clone();
    let shards = service
        .invoke_on_all(move |st| serve_shard(st, svc.clone(), listeners.clone()))
        .await;
    exporters.finish().await;
    let shards = shards?;
    Ok(Report { shards })
}

/// One shard's part: sweeper, UDP loop, accept loop, until stopped.
async fn serve_shard(
    st: std::rc::Rc<ShardState>,
    service: Sharded<ShardState>,
    listeners: Option<ShardedListeners>,
) -> ShardReport {
    exporters::register_shard(&st);
    let sweeper = {
        let st = st.clone();
        Timer::new(move || {
            let now = st.now();
            st.handler.borrow_mut().store_mut().sweep(now, SWEEP_BUDGET);
        })
    };
    sweeper.arm_periodic(SWEEP_PERIOD);
    let sock = st.udp.borrow_mut().take();
    let udp = sock.map(|s| spawn_local(udp::serve_udp(st.clone(), service.clone(), s)));
    let report = match listeners.and_then(|l| l.take()) {
        Some(l) => conn::serve_tcp(st.clone(), service, l).await,
        None => ShardReport::default(),
    };
    if let Some(u) = udp {
        let _ = u.await;
    }
    drop(sweeper);
    report
}
