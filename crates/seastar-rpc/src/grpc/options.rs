//! [`GrpcOptions`]: the limits a gRPC server puts on each HTTP/2 client.
//!
//! HTTP/2 lets a client ask for a lot: many streams, large windows (so the
//! server buffers replies it cannot send), large header lists, and it may
//! open a TCP connection and send nothing at all. Each knob here bounds one
//! of those per connection, whatever the client announces: at most
//! `max_concurrent_streams × max_send_buf_size` reply bytes buffered,
//! `initial_connection_window` request bytes received ahead of the
//! handlers, `max_header_list_size` bytes of headers per request.

use std::time::Duration;

/// gRPC server settings.
///
/// ```
/// use std::time::Duration;
/// use seastar_rpc::grpc::GrpcOptions;
/// let opts = GrpcOptions::default()
///     .first_bytes_timeout(Duration::from_secs(2))
///     .max_connections(1000);
/// assert_eq!(opts.max_connections, 1000);
/// ```
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// How long a stopping server waits for a connection's streams.
    pub grace: Duration,
    /// A connection that has not sent a byte (no HTTP/2 preface) after
    /// this long is closed.
    pub first_bytes_timeout: Duration,
    /// A connection with no request in flight and no byte received or sent
    /// for this long is shut down (GOAWAY). `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Connections open at once on this server (this shard); one accepted
    /// beyond it is closed at once and counted.
    pub max_connections: usize,
    /// Streams a client may have open at once on a connection.
    pub max_concurrent_streams: u32,
    /// Reply bytes buffered per stream, whatever window the client grants.
    pub max_send_buf_size: usize,
    /// Request bytes a client may send ahead on one stream.
    pub initial_stream_window: u32,
    /// Request bytes a client may send ahead on the whole connection.
    pub initial_connection_window: u32,
    /// Largest header list (decoded) accepted per request.
    pub max_header_list_size: u32,
    /// Serve TLS connections with this acceptor (feature `tls`), ALPN
    /// `h2`; the handshake must finish within
    /// [`first_bytes_timeout`](Self::first_bytes_timeout). `None`: plain
    /// HTTP/2 with prior knowledge.
    #[cfg(feature = "tls")]
    pub tls: Option<seastar_net::tls::TlsAcceptor>,
}

impl Default for GrpcOptions {
    fn default() -> Self {
        GrpcOptions {
            grace: super::server::DEFAULT_GRACE,
            first_bytes_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            max_connections: usize::MAX,
            max_concurrent_streams: 128,
            max_send_buf_size: 64 << 10,
            initial_stream_window: 256 << 10,
            initial_connection_window: 1 << 20,
            max_header_list_size: 16 << 10,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl GrpcOptions {
    /// Sets [`grace`](Self::grace).
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }
    /// Sets [`first_bytes_timeout`](Self::first_bytes_timeout).
    pub fn first_bytes_timeout(mut self, d: Duration) -> Self {
        self.first_bytes_timeout = d;
        self
    }
    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    /// Sets [`max_concurrent_streams`](Self::max_concurrent_streams).
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.max_concurrent_streams = n.max(1);
        self
    }
    /// Sets [`max_send_buf_size`](Self::max_send_buf_size).
    pub fn max_send_buf_size(mut self, bytes: usize) -> Self {
        self.max_send_buf_size = bytes.max(1);
        self
    }
    /// Sets [`tls`](Self::tls): `acceptor`'s configuration with ALPN `h2`
    /// (a copy, if it offered another list). Mutual TLS is the
    /// configuration's client-CA setting.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: seastar_net::tls::TlsAcceptor) -> Self {
        self.tls = Some(crate::tls::grpc_acceptor(&acceptor));
        self
    }
}
