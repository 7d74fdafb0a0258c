//! `seastar-net`: sockets for the seastar-rs thread-per-core runtime.
//!
//! Every socket belongs to the shard that made it and does its I/O through
//! that shard's reactor (io_uring, or epoll as the fallback). I/O is
//! completion-style with owned buffers: a call moves its buffer in and
//! returns it with the result, `(io::Result<T>, B)` ([`BufResult`]),
//! because on io_uring the kernel may still write into a buffer after the
//! future that started the operation was dropped.
//!
//! # Map of the crate
//!
//! | module | what it holds |
//! |---|---|
//! | [`connections`] | [`Connections`]: a shard's open connections, for a graceful stop bounded by a timeout; [`Registration`], the drop guard of one |
//! | [`tcp`] | [`TcpStream`], [`TcpListener`] with the per-shard or distributing [`Policy`], [`ListenerStats`] |
//! | [`stream`] | [`DataSource`](stream::DataSource)/[`DataSink`](stream::DataSink), buffered [`InputStream`](stream::InputStream) and [`OutputStream`](stream::OutputStream) |
//! | [`udp`] | [`UdpSocket`] |
//! | [`socket_stream`] | [`SocketStream`]: the one implementation of a connected stream socket behind [`TcpStream`] and [`UnixStream`] |
//! | [`stats`] | this shard's connection and byte counters (exported as `seastar_net_*` metrics with feature `metrics`) |
//! | [`unix`] | [`UnixListener`], [`UnixStream`] |
//! | [`buf`] | [`Slice`](buf::Slice), a window into an owned buffer |
//! | `send_behind` (private) | [`SendBehind`]: a send that runs while the caller reads on |
//! | `fd` (private) | socket ownership (closed through the reactor) and the shared I/O loops |
//! | `poll` (private) | poll-style reads and writes over completion I/O, for the adapters |
//! | `sys` (private) | the few libc calls the standard library lacks; the only `unsafe` besides `buf` and the native stack's `device` and `testbed` |
//! | [`hyper`] (feature `hyper`) | `hyper::rt::{Read, Write}` for the stream sockets; `ShardExecutor` and `ShardTimer` for hyper without tokio |
//! | [`collectd`] (feature `collectd`) | a client pushing every shard's metrics to collectd (binary network protocol) |
//! | [`tls`] (feature `tls`) | TLS on rustls (`ring`): [`TlsAcceptor`](tls::TlsAcceptor), [`TlsConnector`](tls::TlsConnector), [`TlsStream`](tls::TlsStream), configurations from PEM files |
//! | [`native`] (feature `native`) | the user-space network stack: AF_XDP and TAP devices, Ethernet, ARP, IPv4, ICMP, UDP, software RSS across shards |
//! | `futures_io` (feature `futures-io`) | `futures::io::{AsyncRead, AsyncWrite}` for the stream sockets |
//!
//! # Example: an echo server on every shard
//!
//! ```
//! use seastar_core::{Runtime, smp, spawn_local};
//! use seastar_net::{ListenOptions, TcpListener, TcpStream};
//!
//! Runtime::builder().shards(2).handle_signals(false).build().unwrap().run(async {
//!     let addr = smp::invoke_on_all(|| async {
//!         let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
//!             .await
//!             .unwrap();
//!         let addr = listener.local_addr().unwrap();
//!         spawn_local(async move {
//!             while let Ok((conn, _peer)) = listener.accept().await {
//!                 spawn_local(async move {
//!                     let mut buf = Vec::with_capacity(4096);
//!                     loop {
//!                         let (n, b) = conn.read(buf).await;
//!                         match n {
//!                             Ok(0) | Err(_) => break,
//!                             Ok(n) => {
//!                                 let (r, b) = conn.write_all(b[..n].to_vec()).await;
//!                                 if r.is_err() { break; }
//!                                 buf = b;
//!                             }
//!                         }
//!                     }
//!                 })
//!                 .detach();
//!             }
//!         })
//!         .detach();
//!         addr
//!     })
//!     .await
//!     .unwrap()[0];
//!
//!     let client = TcpStream::connect(addr).await.unwrap();
//!     client.write_all(b"hi".to_vec()).await.0.unwrap();
//!     let (n, buf) = client.read(vec![0; 16]).await;
//!     assert_eq!(&buf[..n.unwrap()], b"hi");
//! });
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod buf;
#[cfg(feature = "collectd")]
pub mod collectd;
pub mod connections;
mod fd;
#[cfg(feature = "futures-io")]
pub mod futures_io;
#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(feature = "native")]
pub mod native;
mod poll;
mod send_behind;
pub mod socket_stream;
pub mod stats;
pub mod stream;
#[allow(unsafe_code)]
mod sys;
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
pub mod udp;
pub mod unix;

pub use connections::{Connections, Registration};
pub use seastar_core::io::{IoBuf, IoBufMut, PooledBuf};
pub use send_behind::SendBehind;
pub use socket_stream::SocketStream;
pub use tcp::{
    Balance, ListenOptions, ListenerMode, ListenerStats, Policy, ShardedListeners, TcpListener,
    TcpStream,
};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

pub use seastar_core::io::BufResult;
