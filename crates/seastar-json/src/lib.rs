//! `seastar-json`: JSON bodies for the seastar-rs runtime.
//!
//! Two things a JSON HTTP service needs beyond `serde_json`: a typed value
//! whose parse errors are fit to send back to a client (the serde message,
//! line and column), and a writer that streams a large array or object into
//! a response body in chunks, so a million-row answer never sits in memory
//! as one string. `seastar-http` builds its `Json` extractor and responder
//! on [`Json`]; both types know nothing of sockets and are tested without
//! them.
//!
//! # Map of the crate
//!
//! | module | what it holds |
//! |---|---|
//! | [`json`] | [`Json<T>`]: parse from bytes, encode to [`Bytes`](bytes::Bytes) |
//! | [`error`] | [`JsonError`] (with line and column) and [`WriteError`] |
//! | [`writer`] | [`JsonWriter`] and the body it feeds, [`JsonBody`] |
//!
//! # Example
//!
//! ```
//! use seastar_json::{Json, JsonWriter};
//! use http_body_util::BodyExt;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Point { x: i32, y: i32 }
//!
//! let Json(p) = Json::<Point>::from_slice(br#"{"x":1,"y":2}"#).unwrap();
//! assert_eq!(p, Point { x: 1, y: 2 });
//!
//! seastar_core::block_on(async {
//!     let (mut w, body) = JsonWriter::new();
//!     seastar_core::spawn_local(async move {
//!         w.begin_array().await.unwrap();
//!         for x in 0..3 {
//!             w.element(&Point { x, y: 0 }).await.unwrap();
//!         }
//!         w.end().await.unwrap();
//!         w.finish().await.unwrap();
//!     })
//!     .detach();
//!     let bytes = body.collect().await.unwrap().to_bytes();
//!     assert_eq!(&bytes[..], br#"[{"x":0,"y":0},{"x":1,"y":0},{"x":2,"y":0}]"#);
//! });
//! ```
#![deny(missing_docs)]

pub mod error;
pub mod json;
pub mod writer;

pub use error::{JsonError, WriteError};
pub use json::Json;
pub use writer::{JsonBody, JsonWriter};
