//! The `rpc` demo app as a library: native verbs, the gRPC services, the
//! server and the load client, so tests can run them in-process.
//!
//! | module | what it holds |
//! |---|---|
//! | [`proto`] | code generated from `proto/*.proto` (checked in; regenerate with `cargo run --manifest-path apps/rpc/codegen/Cargo.toml`) |
//! | [`verbs`] | the native verbs: echo, hello (typed errors, delays), count (a stream) |
//! | [`greeter`] | the gRPC `helloworld.Greeter` and `echo.Echo` services |
//! | [`server`] | `rpc server`: both protocols on every shard, graceful stop |
//! | [`bench`](mod@bench) | `rpc bench`: the load client for both protocols |
//! | [`tls`] | `--tls-*` options of both: PEM files to rustls acceptors and connectors |

pub mod bench;
pub mod greeter;
pub mod server;
pub mod tls;
pub mod verbs;

/// Generated protobuf messages and tonic services.
#[allow(clippy::all, missing_debug_implementations)]
pub mod proto {
    /// `echo.proto`: the benchmark's echo service.
    pub mod echo;
    /// `helloworld.proto`: the Greeter (see its header comment for the contract).
    pub mod helloworld;
}
