//! Buffered streams over sockets: seastar-core's one stream model
//! ([`seastar_core::stream`]), re-exported here where sockets live.
//!
//! Stream sockets implement [`DataSource`] and [`DataSink`] for themselves,
//! for `&Socket` and for `Rc<Socket>` (so one connection can feed an input
//! and an output stream, see
//! [`TcpStream::into_streams`](crate::TcpStream::into_streams)). The same
//! [`InputStream`] and [`OutputStream`] work over seastar-io's file streams.
//!
//! ```
//! use bytes::Bytes;
//! use seastar_net::stream::{InputStream, OutputStream};
//! use seastar_net::{ListenOptions, TcpListener, TcpStream};
//! # seastar_core::block_on(async {
//! let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
//! let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
//! let (conn, _) = l.accept().await.unwrap();
//!
//! let mut out = OutputStream::new(c);
//! out.write(b"GET /\r\n").await.unwrap();
//! out.write_bytes(Bytes::from(vec![b'x'; 4096])).await.unwrap(); // not copied
//! out.close().await.unwrap(); // one writev, then end of stream (FIN)
//!
//! let mut input = InputStream::new(conn);
//! assert_eq!(&input.read_until(b'\n', 1024).await.unwrap()[..], b"GET /\r\n");
//! assert_eq!(input.read_exactly(4096).await.unwrap().len(), 4096);
//! assert!(input.read().await.unwrap().is_empty()); // the peer's FIN
//! # });
//! ```

pub use seastar_core::stream::*;
