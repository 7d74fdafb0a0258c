//! TLS on rustls (feature `tls`): server and client sessions over
//! [`TcpStream`](crate::TcpStream), one rustls session per connection,
//! driven on the connection's shard by its own reads and writes (no tokio,
//! no extra thread: the handshake is a shard task like any other).
//!
//! - [`TlsServerConfig`] / [`TlsClientConfig`]: configurations from PEM
//!   files (certificate chain, key, client CAs for mutual TLS, trusted
//!   roots), ALPN, session tickets, or bring your own
//!   `Arc<rustls::ServerConfig>` / `Arc<rustls::ClientConfig>`.
//! - [`TlsAcceptor::accept`] / [`TlsConnector::connect`]: the handshake,
//!   bounded by a timeout on the shard's timer; errors are [`TlsError`]s.
//! - [`TlsStream`]: `read` / `write_all` / `shutdown` (`close_notify`) in
//!   the owned-buffer style of [`TcpStream`](crate::TcpStream), the same
//!   poll-style adapters (`hyper::rt::{Read, Write}` with feature `hyper`,
//!   `futures::io::{AsyncRead, AsyncWrite}` with `futures-io`), and the
//!   session's ALPN protocol, SNI name, peer certificates and whether it
//!   was resumed.
//!
//! Bad input (garbage, a truncated record, an unsupported version, a
//! certificate that does not verify) ends the session with rustls' alert
//! and an error; the connection closes when the stream is dropped, and the
//! shard goes on serving. The plaintext buffered per connection is bounded
//! (rustls is fed only once what it decrypted has been read).
//!
//! # Record offload (servers, TLS 1.3)
//!
//! rustls runs every handshake. A TLS 1.3 server session then leaves it,
//! once rustls holds nothing for it: its records are sealed and opened by
//! the stream with the traffic keys rustls hands out (rustls'
//! `enable_secret_extraction`, set by
//! [`TlsServerConfig::record_offload`], on by default), straight into the
//! send buffer and in the receive record, without rustls' per-record
//! copies and allocations (the kTLS split, in user space). A peer's
//! `KeyUpdate` then ends the session with an alert, since the keys to
//! follow it are rustls'; turn offload off where that matters.
//!
//! # Crypto provider: `ring`
//!
//! rustls' default provider, aws-lc-rs, builds its C library with cmake
//! (and wants Go or NASM on some targets); `ring` builds with the C
//! compiler any fresh build machine already has, so `cargo build` works
//! on what the CI image installs and nothing more. Every configuration this
//! module builds names `ring` explicitly
//! ([`crypto_provider`]), so no process-wide default has to be installed
//! and a dependency that enables aws-lc-rs too changes nothing here. The
//! price: no post-quantum hybrid key exchange (X25519MLKEM768 is
//! aws-lc-rs only; rustls marks its `ring` provider deprecated for that);
//! X25519, P-256 and P-384 are offered, in that order (rustls lists P-384
//! first for `ring`, whose P-384 has no fast path: full handshakes ran at a
//! quarter of the rate).
//!
//! # Sharing configurations among shards
//!
//! Build a configuration once and hand clones of the acceptor (an `Arc`)
//! to every shard: a ticket issued on one shard then resumes on any other,
//! and a client's session cache serves every shard. rustls guards the
//! ticket keys and the session caches with its own locks, taken once per
//! handshake, not per record.
//!
//! # Example
//!
//! ```
//! use seastar_net::tls::{TlsAcceptor, TlsClientConfig, TlsConnector, TlsServerConfig};
//! use seastar_net::{ListenOptions, TcpListener, TcpStream};
//!
//! // A self-signed certificate for "localhost" (normally: PEM files).
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
//! let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
//!
//! let server = TlsServerConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
//! let acceptor = TlsAcceptor::new(server.alpn(["h2", "http/1.1"]).build().unwrap());
//! let client = TlsClientConfig::new().root_pem(cert_pem.as_bytes()).unwrap();
//! let connector = TlsConnector::new(client.alpn(["http/1.1", "h2"]).build().unwrap());
//!
//! seastar_core::block_on(async move {
//!     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
//!         .await
//!         .unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = seastar_core::spawn_local(async move {
//!         let (tcp, _) = listener.accept().await.unwrap();
//!         let mut tls = acceptor.accept(tcp).await.unwrap();
//!         assert_eq!(tls.server_name(), Some("localhost"));
//!         let (n, buf) = tls.read(Vec::with_capacity(64)).await;
//!         n.unwrap();
//!         tls.write_all(buf).await.0.unwrap(); // echo
//!         tls.shutdown().await.unwrap();
//!     });
//!     let tcp = TcpStream::connect(addr).await.unwrap();
//!     let mut tls = connector.connect("localhost", tcp).await.unwrap();
//!     assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..])); // the server's preference
//!     tls.write_all(b"ping".to_vec()).await.0.unwrap();
//!     let (n, buf) = tls.read(Vec::with_capacity(64)).await;
//!     assert_eq!(&buf[..n.unwrap()], b"ping");
//!     server.await.unwrap();
//! });
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | `config` | [`TlsServerConfig`], [`TlsClientConfig`], [`crypto_provider`] |
//! | `handshake` | [`TlsAcceptor`], [`TlsConnector`], the timeout |
//! | `stream` | [`TlsStream`]: the session driven over the socket |
//! | `recv` | its receive side: pooled receives, fed to rustls |
//! | `records` | a server session's TLS 1.3 records after the handshake (offload) |
//! | `adapters` | the `hyper::rt` and `futures::io` traits for [`TlsStream`] |
//! | `error` | [`TlsError`] |
//! | `pem` | PEM parsing (rustls' `pki_types`) |
//! | `fuzzing`, `fuzzing_offload` | the receive paths (rustls', offloaded) without a socket, for the fuzz targets (hidden) |

mod adapters;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod fuzzing_offload;
mod handshake;
mod pem;
mod records;
mod recv;
mod stream;

pub use config::{TlsClientConfig, TlsServerConfig, crypto_provider};
pub use error::TlsError;
pub use handshake::{DEFAULT_HANDSHAKE_TIMEOUT, TlsAcceptor, TlsConnector};
pub use rustls;
pub use stream::TlsStream;
