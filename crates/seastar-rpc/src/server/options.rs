//! [`ServerOptions`]: the limits a native server puts on each client.
//!
//! Every knob bounds what one client can make the server hold: calls and
//! request bytes in flight, reply bytes waiting to be sent (the output
//! budget), time to negotiate (first bytes), time idle, connections open,
//! and time to stop.

use std::time::Duration;

use crate::frame::{DEFAULT_MAX_FRAME, Features};

/// The default [`ServerOptions::output_budget`].
pub const DEFAULT_OUTPUT_BUDGET: usize = 1 << 20;

/// Server settings.
///
/// ```
/// use std::time::Duration;
/// let opts = seastar_rpc::ServerOptions::default()
///     .max_frame(1 << 20)
///     .negotiation_timeout(Duration::from_secs(2))
///     .output_budget(256 << 10)
///     .max_connections(1000);
/// assert_eq!(opts.max_frame, 1 << 20);
/// assert_eq!(opts.output_budget, 256 << 10);
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request payload accepted; a larger frame gets a
    /// `FrameTooLarge` response and the connection is closed.
    pub max_frame: u32,
    /// Features offered at negotiation (the connection uses those the client also offers).
    pub features: Features,
    /// Calls served at once per connection before the reader pauses.
    pub max_concurrent_calls: usize,
    /// Request payload bytes held by the calls in flight on a connection
    /// before the reader pauses (a single larger request still runs, alone).
    pub max_in_flight_bytes: usize,
    /// Reply bytes a connection may have waiting to be sent (buffered or
    /// in a send the kernel has not taken) before its reader pauses: a
    /// client that does not read its replies stops being read, so it holds
    /// at most this budget plus the replies of the calls already in flight
    /// (themselves bounded by `max_concurrent_calls` and
    /// `max_in_flight_bytes`). Reading resumes as the replies drain.
    pub output_budget: usize,
    /// How long a new connection may take to send its negotiation frame
    /// (the first-bytes timeout): a silent connection is closed after it.
    pub negotiation_timeout: Duration,
    /// A connection with no call in flight that receives nothing for this
    /// long is closed; so is one whose replies stay over the output budget
    /// this long (its client stopped reading). `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Connections open at once on this server (this shard); one accepted
    /// beyond it is closed at once and counted in
    /// [`ServerStats::refused`](super::ServerStats::refused).
    pub max_connections: usize,
    /// How long [`RpcServer::stop`](super::RpcServer::stop) waits for the
    /// calls in flight before it drops the remaining connections.
    pub shutdown_timeout: Duration,
    /// Items a client may send ahead on a stream (the receive window).
    pub stream_window: u32,
    /// Serve TLS connections with this acceptor (feature `tls`; see
    /// [`crate::tls`]); `None`: plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<seastar_net::tls::TlsAcceptor>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_frame: DEFAULT_MAX_FRAME,
            features: Features::supported(),
            max_concurrent_calls: 1024,
            max_in_flight_bytes: 64 << 20,
            output_budget: DEFAULT_OUTPUT_BUDGET,
            negotiation_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            max_connections: usize::MAX,
            shutdown_timeout: Duration::from_secs(30),
            stream_window: 16,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ServerOptions {
    /// Sets [`max_frame`](Self::max_frame).
    pub fn max_frame(mut self, bytes: u32) -> Self {
        self.max_frame = bytes;
        self
    }
    /// Sets [`features`](Self::features).
    pub fn features(mut self, f: Features) -> Self {
        self.features = f;
        self
    }
    /// Sets [`max_concurrent_calls`](Self::max_concurrent_calls).
    pub fn max_concurrent_calls(mut self, n: usize) -> Self {
        self.max_concurrent_calls = n.max(1);
        self
    }
    /// Sets [`max_in_flight_bytes`](Self::max_in_flight_bytes).
    pub fn max_in_flight_bytes(mut self, bytes: usize) -> Self {
        self.max_in_flight_bytes = bytes.max(1);
        self
    }
    /// Sets [`output_budget`](Self::output_budget).
    pub fn output_budget(mut self, bytes: usize) -> Self {
        self.output_budget = bytes;
        self
    }
    /// Sets [`negotiation_timeout`](Self::negotiation_timeout).
    pub fn negotiation_timeout(mut self, d: Duration) -> Self {
        self.negotiation_timeout = d;
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
    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }
    /// Sets [`stream_window`](Self::stream_window).
    pub fn stream_window(mut self, items: u32) -> Self {
        self.stream_window = items.max(1);
        self
    }
    /// Sets [`tls`](Self::tls): connections are TLS sessions from `acceptor`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: seastar_net::tls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }
}
