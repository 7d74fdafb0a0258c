//! `seastar-http`: HTTP servers and clients on the seastar-rs runtime.
//!
//! hyper 1.x drives each connection on the shard that accepted it, through
//! `seastar-net`'s `hyper::rt` adapters, its shard timer and its
//! shard-local executor: there is no tokio, no `Send` bound on handlers,
//! and no lock between shards. One [`Server`] runs per shard
//! ([`serve_sharded`] starts them all); a [`Router`] dispatches on method
//! and path pattern to [`Handler`]s: async closures, any `tower::Service`
//! ([`from_service`]), [`StaticFiles`] and [`Redirect`]. JSON comes from
//! `seastar-json` ([`Json`], [`JsonWriter`](json::JsonWriter) for streamed
//! bodies). The [`Client`] keeps a per-shard pool of keep-alive connections.
//!
//! # Map of the crate
//!
//! | module | what it holds |
//! |---|---|
//! | [`server`] | [`Server`] (limits, timeouts, graceful stop, HTTP/2 with feature `http2`, HTTPS with feature `tls`), [`ServeStats`], [`serve_sharded`] |
//! | [`router`] | [`Router`]: path patterns (`/users/{id}`, `/static/{*path}`), 404, fallback |
//! | [`routing`] | [`MethodRouter`](routing::MethodRouter) and [`get`](routing::get), [`post`](routing::post), ...: 405 with `Allow`, HEAD via GET |
//! | [`handler`] | [`Handler`], closures as handlers, [`from_service`] for tower services |
//! | [`request`] | [`RequestExt`] (params, query, body, JSON), [`PathParams`], [`Query`] |
//! | [`response`] | [`IntoResponse`], [`Redirect`], plain-text errors |
//! | [`body`] | [`Body`], [`BodyError`] |
//! | [`json`] | [`Json`] as extractor and response, [`JsonRejection`](json::JsonRejection), streamed [`JsonBody`](json::JsonBody) |
//! | [`static_files`] | [`StaticFiles`]: ETag, Last-Modified, Range, content types, no traversal |
//! | [`mime`] | content types by extension |
//! | [`client`] | [`Client`] with its per-shard pool, timeouts, [`ClientError`] |
//! | [`metrics`] | `seastar_http_requests_total`, `seastar_http_request_duration_seconds` |
//! | [`admin`] (feature `admin`) | the admin REST API (OpenAPI-described) and the live per-shard dashboard on a port of their own, [`AdminArgs`](admin::AdminArgs) for apps |
//! | [`prometheus`] (feature `prometheus`) | a handler serving every shard's metrics in the Prometheus text format |
//!
//! # Example
//!
//! ```
//! use seastar_http::{Json, Request, RequestExt, Router, Server, routing::{get, post}};
//!
//! #[derive(serde::Deserialize, serde::Serialize)]
//! struct Greeting { name: String }
//!
//! let router = Router::new()
//!     .route("/", get(|_r: Request| async { "Hello, world!\n" }))
//!     .route("/hello/{name}", get(|r: Request| async move {
//!         format!("Hello, {}!\n", r.param("name").unwrap_or("?"))
//!     }))
//!     .route("/greet", post(|r: Request| async move {
//!         r.json::<Greeting>().await.map(|g| Json(Greeting { name: g.name.to_uppercase() }))
//!     }));
//!
//! seastar_core::Runtime::builder().shards(1).handle_signals(false).build().unwrap().run(async move {
//!     let listener = seastar_net::TcpListener::bind(
//!         "127.0.0.1:0".parse().unwrap(),
//!         seastar_net::ListenOptions::default(),
//!     )
//!     .await
//!     .unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let stop = seastar_core::sync::AbortSource::new();
//!     let server = seastar_core::spawn_local(Server::new(router).serve(listener, stop.aborted()));
//!     let resp = seastar_http::Client::new()
//!         .get(&format!("http://{addr}/hello/seastar"))
//!         .await
//!         .unwrap();
//!     let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
//!     assert_eq!(&body[..], b"Hello, seastar!\n");
//!     stop.request_abort();
//!     server.await.unwrap();
//! });
//! ```
#![deny(missing_docs)]

#[cfg(feature = "admin")]
pub mod admin;
pub mod body;
pub mod client;
pub mod handler;
pub mod json;
pub mod metrics;
pub mod mime;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod request;
pub mod response;
pub mod router;
pub mod routing;
pub mod server;
pub mod static_files;
mod util;

pub use body::{Body, BodyError, BoxError};
pub use client::{Client, ClientBuilder, ClientError, ClientResponse};
pub use handler::{Handler, from_service};
pub use json::Json;
pub use request::{PathParams, Query, RequestExt};
pub use response::{IntoResponse, Redirect};
pub use router::Router;
pub use server::{ServeError, ServeStats, Server, serve_sharded};
pub use static_files::StaticFiles;

/// A request as handlers see it.
pub type Request<B = Body> = http::Request<B>;
/// A response as handlers return it.
pub type Response<B = Body> = http::Response<B>;
