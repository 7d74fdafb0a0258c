//! gRPC on the shard reactor (feature `grpc`).
//!
//! | module | what it holds |
//! |---|---|
//! | [`options`] | [`GrpcOptions`]: per-connection HTTP/2 limits, first-bytes and idle timeouts, connection cap |
//! | [`server`] | [`GrpcServer`]: tonic [`Routes`](tonic::service::Routes) served through hyper's HTTP/2 server connection on every shard; [`serve_connection`] |
//! | [`timeout`] | [`GrpcTimeout`]: the `grpc-timeout` header enforced on the shard's timers; [`parse_grpc_timeout`] |
//! | [`client`] | [`GrpcChannel`]: a tonic client transport over a seastar-net connection and hyper's HTTP/2 client |
//! | `io` (private) | a socket wrapper that makes hyper yield when the shard's task quota is spent, and reports activity |
//! | `activity` (private) | a connection's activity and the watchdog of its first-bytes and idle timeouts |
//!
//! **No tokio runtime.** tonic is built with `default-features = false`
//! and only `codegen` and `router`: its `transport` module (the only part
//! that starts tokio tasks, timers or sockets) is not compiled. tokio still
//! appears in the dependency graph, compiled with only `bytes`, `io-util`
//! and `sync`, because tonic's and hyper's public types name its traits
//! (`AsyncRead`/`AsyncWrite`) and its sync primitives; nothing in the
//! serving or calling path spawns on, sleeps on or polls a tokio runtime.
//! hyper runs on [`ShardExecutor`](seastar_net::hyper::ShardExecutor) (HTTP/2
//! stream tasks are shard-local tasks) and
//! [`ShardTimer`](seastar_net::hyper::ShardTimer) (keep-alive and deadlines
//! on the shard's timer queue, so they follow the manual clock in tests).
//!
//! tonic's generated service traits require `Send + Sync` services and
//! `Send` handler futures. They still run on one shard; a handler simply
//! cannot hold an `Rc` or a `RefCell` borrow across an `.await`. Reach
//! shard state through [`Sharded::local`](seastar_core::smp::Sharded::local)
//! or a thread-local between awaits; `seastar_core::timer::sleep` is `Send`.
//!
//! Without tonic's `transport`, h2 reset codes are not mapped to gRPC
//! statuses on the client side: a reset stream surfaces as
//! `Code::Unknown` with the h2 error in the message.

mod activity;
pub mod client;
mod io;
pub mod options;
pub mod server;
pub mod timeout;

pub use client::GrpcChannel;
pub use options::GrpcOptions;
pub use server::{Ended, GrpcServer, GrpcStats, serve_connection, serve_connection_with};
pub use timeout::{GrpcTimeout, parse_grpc_timeout};

/// Boxed error used by the gRPC adapters (tonic's `StdError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
