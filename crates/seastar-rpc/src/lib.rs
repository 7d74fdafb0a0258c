//! `seastar-rpc`: RPC on the seastar-rs shard reactor.
//!
//! Two protocols, both served by shard-local tasks with no locks and no
//! tokio runtime:
//!
//! - a **native** framed protocol ([`RpcServer`], [`RpcClient`]): verbs
//!   with serde arguments, many calls multiplexed on one connection,
//!   typed handler errors, timeouts enforced on both sides, cancellation
//!   when a call future is dropped, flow-controlled streams, lz4
//!   compression (feature `lz4`), all negotiated per connection;
//! - **gRPC** (feature `grpc`, module [`grpc`]): tonic-generated services
//!   served through hyper's HTTP/2 server connection on the shard executor,
//!   `grpc-timeout` enforced on the shard's timers, and a tonic client
//!   channel over seastar-net connections.
//!
//! # Map of the crate
//!
//! | module | what it holds |
//! |---|---|
//! | [`frame`] | the wire format: negotiation frame, frame header, kinds, flags, statuses (pure, no I/O) |
//! | [`decode`] | the frame decoder: frames from received bytes, never trusting an announced length (pure, no I/O) |
//! | [`codec`] | payload serialization (postcard) and lz4 compression |
//! | [`error`] | [`RpcError`], [`CallError`] (handler error or RPC error) |
//! | [`server`] | [`RpcServer`], [`ServerOptions`]: verbs, handlers, the connection loop and its limits |
//! | [`client`] | [`RpcClient`], [`ClientOptions`]: multiplexed calls, timeouts, cancel on drop, reconnect |
//! | [`stream`] | [`Sink`], [`Source`]: a credit-based, bounded stream per streaming call |
//! | `conn` (private) | what both ends share: negotiated state, frame reading, the batching writer |
//! | [`grpc`] (feature `grpc`) | tonic services on hyper HTTP/2 per shard; `grpc-timeout`; a client channel |
//! | [`tls`] (feature `tls`) | TLS for both protocols: [`tls::ClientTls`], the server side through the options, mutual TLS |
//!
//! # The native wire protocol (version 1)
//!
//! All integers are little-endian. A connection opens with one
//! **negotiation frame** in each direction: the client sends its own, the
//! server answers with the intersection of both feature sets and its own
//! frame limit. Anything else than the magic and version 1 ends the
//! connection (the server closes it; the client reports
//! [`RpcError::Negotiation`]).
//!
//! | offset | size | negotiation field |
//! |---|---|---|
//! | 0 | 4 | magic `"SRPC"` |
//! | 4 | 2 | version, `1` |
//! | 6 | 2 | reserved, `0` |
//! | 8 | 4 | feature bits: `1` lz4, `2` timeouts, `4` cancellation, `8` streaming |
//! | 12 | 4 | largest payload the sender accepts (bytes) |
//!
//! Then **frames**, in both directions, each a 20-byte header, an optional
//! 8-byte timeout and the payload:
//!
//! | offset | size | frame field |
//! |---|---|---|
//! | 0 | 1 | kind: `1` request, `2` response, `3` cancel, `4` stream data, `5` stream end, `6` stream credit |
//! | 1 | 1 | flags: `1` payload lz4-compressed, `2` timeout follows, `4` request opens a stream |
//! | 2 | 2 | status (response, stream end): `0` ok, `1` handler error, `2` unknown verb, `3` timeout, `4` cancelled, `5` bad request, `6` frame too large, `7` internal |
//! | 4 | 4 | verb (request); credit in items (stream credit); else `0` |
//! | 8 | 8 | message id, chosen by the client per call or stream |
//! | 16 | 4 | payload length, at most the receiver's limit |
//! | 20 | 8 | timeout in µs, only with flag `2` (request) |
//! | 20 or 28 | length | payload: postcard-serialized value; with flag `1`, a `u32` original size then an lz4 block |
//!
//! Rules: a response carries the request's id; status `1` carries the
//! handler's serialized error, statuses `2`..`7` a UTF-8 message. A cancel
//! with a call's id asks the server to drop that handler (no response
//! follows); with a stream's id it means "stop sending". A header with an
//! unknown kind or flag, or a length over the limit, is a protocol error:
//! an oversized request is answered with status `6` and the connection is
//! closed, so no payload is ever buffered beyond the limit. A compressed
//! payload's original size is checked against the limit before
//! decompressing. Stream items flow only against credit: the receiver
//! grants its window when the stream opens and more as items are consumed;
//! a sender exceeding its credit is a protocol error.
//!
//! A request reusing the id of a call or stream still in flight on its
//! connection is a protocol error: the server answers it with status `5`
//! ("duplicate message id") under that id, cancels the calls in flight and
//! closes the connection. The client's end of stream (even a half-close)
//! cancels its calls in flight: their handlers are dropped and no answer
//! is sent. A server stops reading a connection while the answers it has
//! not sent exceed its output budget
//! ([`ServerOptions::output_budget`]), and resumes as they drain.
//!
//! # Example
//!
//! ```
//! use seastar_rpc::{RpcClient, RpcServer, ServerOptions};
//!
//! seastar_core::block_on(async {
//!     let server = RpcServer::new(ServerOptions::default());
//!     server.register(1, |v: Vec<u8>| async move { Ok::<_, ()>(v) });
//!     let addr = server.listen("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
//!     let client = RpcClient::connect(addr).await.unwrap();
//!     let echoed: Vec<u8> = client.call::<_, _, ()>(1, &vec![1u8, 2, 3]).await.unwrap();
//!     assert_eq!(echoed, [1, 2, 3]);
//!     drop(client);
//!     server.stop().await;
//! });
//! ```
#![deny(missing_docs)]

pub mod client;
pub mod codec;
mod conn;
pub mod decode;
pub mod error;
pub mod frame;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod server;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;

pub use client::{ClientOptions, RpcClient};
pub use error::{CallError, RpcError};
pub use frame::Features;
pub use server::{RpcServer, ServerOptions, ServerStats};
pub use stream::{Sink, Source};
