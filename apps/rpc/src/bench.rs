//! `rpc bench`: a closed-loop load client for both protocols.
//!
//! `--in-flight N` calls are kept outstanding on one connection (native
//! calls are multiplexed by message id, gRPC calls are HTTP/2 streams);
//! each call echoes `--size` bytes (native verb [`ECHO`](crate::verbs::ECHO),
//! gRPC `echo.Echo/Echo`). The client runs on one shard; pin it with
//! `taskset`. `--protocol auto` speaks native if the server answers the
//! native negotiation and gRPC otherwise, so one command line drives both
//! kinds of server (as the `rpc` bench suite needs).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use hdrhistogram::Histogram;
use seastar_core::{Runtime, spawn_local};
use seastar_rpc::grpc::GrpcChannel;
use seastar_rpc::tls::ClientTls;
use seastar_rpc::{ClientOptions, RpcClient, RpcError};

use crate::proto::echo::Payload;
use crate::proto::echo::echo_client::EchoClient;

/// Which protocol `rpc bench` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// The native framed protocol.
    Native,
    /// gRPC `echo.Echo/Echo`.
    Grpc,
    /// Native if the server negotiates it, else gRPC.
    Auto,
}

/// Options of `rpc bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:10002")]
    pub addr: SocketAddr,
    /// Protocol to speak.
    #[arg(long, value_enum, default_value_t = Protocol::Auto)]
    pub protocol: Protocol,
    /// Calls kept in flight.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
    /// Payload bytes per call.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Print one JSON line (for `cargo xtask bench`).
    #[arg(long)]
    pub json: bool,
    /// TLS (both protocols).
    #[command(flatten)]
    pub tls: crate::tls::ClientTlsArgs,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The protocol spoken.
    pub protocol: Protocol,
    /// Calls completed.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Measured seconds.
    pub secs: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
}

impl Report {
    /// Calls per second.
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.secs
    }

    /// The JSON line `--json` prints.
    pub fn json(&self) -> String {
        format!(
            "{{\"protocol\":\"{:?}\",\"calls\":{},\"errors\":{},\"duration_s\":{:.3},\"calls_per_sec\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
            self.protocol,
            self.calls,
            self.errors,
            self.secs,
            self.calls_per_sec(),
            self.p50_us,
            self.p99_us
        )
    }
}

/// A connection of either protocol.
#[derive(Clone)]
enum Client {
    Native(RpcClient),
    Grpc(EchoClient<GrpcChannel>),
}

impl Client {
    async fn connect(
        addr: SocketAddr,
        protocol: Protocol,
        tls: Option<ClientTls>,
    ) -> Result<(Client, Protocol), String> {
        let mut opts = ClientOptions::default().connect_timeout(Duration::from_secs(2));
        opts.tls = tls.clone();
        let grpc = || async {
            let ch = match &tls {
                Some(t) => GrpcChannel::connect_tls(addr, &t.connector, &t.server_name).await,
                None => GrpcChannel::connect(addr).await,
            }
            .map_err(|e| e.to_string())?;
            let origin = ch.origin();
            Ok((
                Client::Grpc(EchoClient::with_origin(ch, origin)),
                Protocol::Grpc,
            ))
        };
        match protocol {
            Protocol::Native => RpcClient::connect_with(addr, opts)
                .await
                .map(|c| (Client::Native(c), Protocol::Native))
                .map_err(|e| e.to_string()),
            Protocol::Grpc => grpc().await,
            Protocol::Auto => match RpcClient::connect_with(addr, opts).await {
                Ok(c) => Ok((Client::Native(c), Protocol::Native)),
                Err(RpcError::Negotiation(_) | RpcError::Timeout) => grpc().await,
                Err(e) => Err(e.to_string()),
            },
        }
    }

    async fn echo(&mut self, data: &[u8]) -> Result<usize, String> {
        match self {
            Client::Native(c) => c
                .call::<[u8], Vec<u8>, ()>(crate::verbs::ECHO, data)
                .await
                .map(|v| v.len())
                .map_err(|e| e.to_string()),
            Client::Grpc(c) => c
                .echo(Payload {
                    data: data.to_vec(),
                })
                .await
                .map(|r| r.into_inner().data.len())
                .map_err(|e| e.to_string()),
        }
    }
}

/// Runs the load on the current shard.
pub async fn drive(args: BenchArgs) -> Result<Report, String> {
    let tls = args.tls.client()?;
    let (client, protocol) = Client::connect(args.addr, args.protocol, tls).await?;
    let data = Rc::new(vec![0x5au8; args.size]);
    let hist = Rc::new(RefCell::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
    ));
    let (calls, errors) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
    let start = seastar_core::timer::now();
    let end = start + Duration::from_secs_f64(args.duration);
    let tasks: Vec<_> = (0..args.in_flight.max(1))
        .map(|_| {
            let (mut client, data, hist) = (client.clone(), data.clone(), hist.clone());
            let (calls, errors) = (calls.clone(), errors.clone());
            spawn_local(async move {
                while seastar_core::timer::now() < end {
                    let t0 = Instant::now();
                    match client.echo(&data).await {
                        Ok(n) if n == data.len() => {
                            let us = t0.elapsed().as_micros() as u64;
                            let _ = hist.borrow_mut().record(us.max(1));
                            calls.set(calls.get() + 1);
                        }
                        Ok(n) => {
                            tracing::warn!(got = n, "short echo");
                            errors.set(errors.get() + 1);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "call failed");
                            errors.set(errors.get() + 1);
                            seastar_core::timer::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let secs = (seastar_core::timer::now() - start).as_secs_f64();
    let h = hist.borrow();
    Ok(Report {
        protocol,
        calls: calls.get(),
        errors: errors.get(),
        secs,
        p50_us: h.value_at_quantile(0.5) as f64,
        p99_us: h.value_at_quantile(0.99) as f64,
    })
}

/// `rpc bench`: a one-shard runtime running [`drive`].
pub fn run(args: BenchArgs) -> Result<Report, String> {
    let runtime = Runtime::builder()
        .shards(1)
        .pin(false)
        .handle_signals(false)
        .build()
        .map_err(|e| e.to_string())?;
    runtime.run(drive(args))
}
