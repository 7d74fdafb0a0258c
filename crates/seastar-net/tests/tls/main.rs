//! TLS streams (feature `tls`) on the backend named by
//! `SEASTAR_REACTOR_BACKEND`: our client against our server, hostile
//! input, and `openssl s_client` against our server. Certificates are made
//! here, at test time (rcgen): no key material lives in the repository.
#![cfg(feature = "tls")]

#[path = "../common/mod.rs"]
mod common;

mod adapters;
mod after_close;
mod hostile;
mod measure;
mod offload;
mod openssl;
mod session;
mod support;
