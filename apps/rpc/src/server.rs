//! `rpc server`: the native verbs on `--port` and the gRPC services on
//! `--grpc-port`, on every shard. The native port is bound on every shard
//! through [`ShardedListeners`] (`--listener distribute`: shard 0 hands
//! each connection to the least-loaded shard; `per-shard`: one
//! `SO_REUSEPORT` listener per shard), gRPC with one `SO_REUSEPORT`
//! listener per shard. SIGINT/SIGTERM stops accepting, lets calls in flight answer
//! for at most `--shutdown-timeout`, then drops the connections left and
//! exits 0.
//!
//! Every listener bounds what a client can hold: `--conn-output-budget`
//! (native replies waiting to be sent before the connection stops being
//! read), `--first-bytes-timeout` (negotiation frame / HTTP/2 preface),
//! `--idle-timeout`, and `--max-connections` (per protocol, shared out
//! across shards like memcached's `-c`; over it a connection is closed at
//! once and counted).
//!
//! With `--tls-cert FILE --tls-key FILE` both ports speak TLS (gRPC with
//! ALPN `h2`); `--tls-client-ca FILE` adds mutual TLS (see [`crate::tls`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use seastar_core::runtime::RuntimeArgs;
use seastar_core::shard_local::{self, SlotKey};
use seastar_core::{shard_count, smp};
use seastar_net::{ListenOptions, ListenerMode, ShardedListeners};
use seastar_rpc::grpc::{GrpcOptions, GrpcServer};
use seastar_rpc::server::DEFAULT_OUTPUT_BUDGET;
use seastar_rpc::{RpcServer, ServerOptions};

/// Options of `rpc server`.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Port of the native protocol (0: any free port).
    #[arg(long, default_value_t = 10002)]
    pub port: u16,
    /// Port of gRPC (0: any free port).
    #[arg(long, default_value_t = 50051)]
    pub grpc_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// How native connections reach the shards: `distribute` (shard 0
    /// hands each to the least-loaded shard) or `per-shard` (one
    /// SO_REUSEPORT listener per shard; the kernel spreads them).
    #[arg(long, value_name = "MODE", default_value_t = ListenerMode::Distribute)]
    pub listener: ListenerMode,
    /// Native protocol: reply bytes a connection may have waiting to be
    /// sent; above it the connection is not read (back-pressure) until its
    /// client takes them.
    #[arg(long, default_value_t = DEFAULT_OUTPUT_BUDGET)]
    pub conn_output_budget: usize,
    /// Connections open at once, per protocol (divided among shards);
    /// over it a new connection is closed at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Seconds a new connection may take to send its first bytes (native
    /// negotiation frame, HTTP/2 preface) before it is closed.
    #[arg(long, default_value_t = 10.0)]
    pub first_bytes_timeout: f64,
    /// Seconds a connection with nothing in flight may stay silent before
    /// it is closed (0: never).
    #[arg(long, default_value_t = 300.0)]
    pub idle_timeout: f64,
    /// TLS for both ports.
    #[command(flatten)]
    pub tls: crate::tls::ServerTlsArgs,
    /// Runtime options.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The admin API and dashboard (`--admin-port`, `--admin-address`,
    /// `--admin-token-file`).
    #[command(flatten)]
    pub admin: seastar_http::admin::AdminArgs,
}

/// The per-shard limits, from the command line.
#[derive(Debug, Clone)]
struct Limits {
    output_budget: usize,
    max_connections: usize,
    first_bytes: Duration,
    idle: Option<Duration>,
    shutdown: Duration,
    tls: Option<seastar_net::tls::TlsAcceptor>,
}

impl Limits {
    fn from_args(args: &ServerArgs) -> Result<Limits, String> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v).map_err(|_| format!("--{name}: bad duration {v}"))
        };
        let idle = secs("idle-timeout", args.idle_timeout)?;
        Ok(Limits {
            output_budget: args.conn_output_budget,
            max_connections: args.max_connections,
            first_bytes: secs("first-bytes-timeout", args.first_bytes_timeout)?,
            idle: (!idle.is_zero()).then_some(idle),
            shutdown: args.runtime.shutdown_timeout(),
            tls: args.tls.acceptor()?,
        })
    }

    fn native(&self) -> ServerOptions {
        let opts = ServerOptions::default()
            .output_budget(self.output_budget)
            .max_connections(self.max_connections.div_ceil(shard_count()).max(1))
            .negotiation_timeout(self.first_bytes)
            .idle_timeout(self.idle)
            .shutdown_timeout(self.shutdown);
        match &self.tls {
            Some(a) => opts.tls(a.clone()),
            None => opts,
        }
    }

    fn grpc(&self) -> GrpcOptions {
        let opts = GrpcOptions::default()
            .max_connections(self.max_connections.div_ceil(shard_count()).max(1))
            .first_bytes_timeout(self.first_bytes)
            .idle_timeout(self.idle)
            .grace(self.shutdown);
        match &self.tls {
            Some(a) => opts.tls(a.clone()),
            None => opts,
        }
    }
}

/// This shard's servers, in its slots (so they end with the runtime, on
/// its shard, if nothing stopped them).
struct Servers(RpcServer, GrpcServer);

/// Serves both protocols on this shard: the native one on this shard's
/// listener of `native`, gRPC on a listener bound here (`grpc` of 0 picks a
/// port; shards after the first reuse shard 0's). Returns gRPC's address.
async fn bind(
    address: IpAddr,
    native: &ShardedListeners,
    grpc: u16,
    limits: &Limits,
) -> std::io::Result<SocketAddr> {
    let rpc = RpcServer::new(limits.native());
    crate::verbs::register(&rpc);
    rpc.register(crate::verbs::STATS, |(): ()| async move {
        let (hello_started, hello_cancelled) = crate::verbs::hello_counters();
        let (server, connections) = shard_local::get::<Servers>(SlotKey::SINGLETON)
            .map(|s| (s.0.stats(), s.0.connections() as u64))
            .unwrap_or_default();
        Ok::<_, ()>(crate::verbs::Stats {
            server,
            connections,
            hello_started,
            hello_cancelled,
        })
    });
    let grpc_server = GrpcServer::with_options(crate::greeter::routes(), limits.grpc());
    let b = grpc_server
        .listen(SocketAddr::new(address, grpc), ListenOptions::default())
        .await?;
    let listener = native
        .take()
        .ok_or_else(|| std::io::Error::other("the native listener was taken already"))?;
    let server = rpc.clone();
    seastar_core::spawn_local(async move { server.serve(listener).await }).detach();
    shard_local::insert(SlotKey::SINGLETON, Servers(rpc, grpc_server));
    Ok(b)
}

async fn stop_local() {
    if let Some(s) = shard_local::remove::<Servers>(SlotKey::SINGLETON) {
        futures::join!(s.0.stop(), s.1.stop());
    }
}

/// Runs the server until a stop signal; the error says what failed.
pub fn run(args: ServerArgs) -> Result<(), String> {
    let runtime = args
        .runtime
        .builder()
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    let address = args.address;
    let (port, grpc_port, listener_mode) = (args.port, args.grpc_port, args.listener);
    let limits = Limits::from_args(&args)?;
    args.admin.token().map_err(|e| e.to_string())?;
    let admin_args = args.admin.clone();
    let admin = seastar_http::admin::Admin::new("rpc", env!("CARGO_PKG_VERSION"))
        .runtime_args(&args.runtime)
        .option("address", address)
        .option("port", port)
        .option("grpc-port", grpc_port)
        .option("listener", listener_mode)
        .option("max-connections", args.max_connections)
        // Native calls and gRPC requests (served by seastar-http) both
        // count; latency percentiles are the native calls'.
        .requests_metrics(&["seastar_rpc_calls_total", "seastar_http_requests_total"])
        .latency_metric("seastar_rpc_call_duration_seconds")
        .shutdown_timeout(args.runtime.shutdown_timeout());
    let tls = if limits.tls.is_some() { ", tls" } else { "" };
    runtime.run(async move {
        let admin = admin_args.start(admin).await.map_err(|e| e.to_string())?;
        if let Some(a) = &admin {
            println!("rpc: admin API and dashboard at http://{}/", a.addr());
        }
        let native_opts = ListenOptions::default().policy(listener_mode.into());
        let listeners = ShardedListeners::bind(SocketAddr::new(address, port), native_opts)
            .await
            .map_err(|e| e.to_string())?;
        let native = listeners.local_addr();
        let grpc = match bind(address, &listeners, grpc_port, &limits).await {
            Ok(a) => a,
            Err(e) => {
                // The other shards' native listeners close with the runtime.
                let _ = smp::invoke_on_all(stop_local).await;
                return Err(format!("cannot listen: {e}"));
            }
        };
        let gp = grpc.port();
        let others = smp::invoke_on_others(move || {
            let (limits, listeners) = (limits.clone(), listeners.clone());
            async move { bind(address, &listeners, gp, &limits).await.map(|_| ()) }
        })
        .await
        .map_err(|e| e.to_string())?;
        if let Some(Err(e)) = others.into_iter().find(Result::is_err) {
            let _ = smp::invoke_on_all(stop_local).await;
            return Err(format!("cannot listen on every shard: {e}"));
        }
        println!(
            "rpc: native on {native}, grpc on {grpc}, {} shards, backend {}{tls}",
            shard_count(),
            seastar_core::runtime::backend()
        );
        seastar_core::stop_signal().await;
        smp::invoke_on_all(stop_local)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(a) = admin
            && let Err(e) = a.stopped().await
        {
            tracing::warn!(error = %e, "admin server");
        }
        println!("rpc: stopped cleanly");
        Ok(())
    })
}
