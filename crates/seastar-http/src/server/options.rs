//! The [`Server`] builder: limits, timeouts and budgets, with their defaults.

use std::time::Duration;

use super::Server;

/// Every knob of a [`Server`]; the defaults are in [`Config::default`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) body_read_timeout: Option<Duration>,
    pub(crate) max_header_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_body_size: Option<u64>,
    pub(crate) max_requests_per_connection: Option<u64>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_output_buffer: usize,
    pub(crate) keep_alive: bool,
    pub(crate) pipeline_flush: bool,
    pub(crate) nodelay: bool,
    pub(crate) shutdown_timeout: Duration,
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) http2: bool,
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) h2: H2Config,
    #[cfg(feature = "tls")]
    pub(crate) tls: super::tls::TlsOptions,
}

/// HTTP/2 limits: what one connection may make the server hold.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "http2"), allow(dead_code))]
pub(crate) struct H2Config {
    pub(crate) max_concurrent_streams: u32,
    pub(crate) max_send_buf_size: usize,
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
    pub(crate) keep_alive_interval: Option<Duration>,
    pub(crate) keep_alive_timeout: Duration,
}

/// Default [`Server::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Server::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Server::max_output_buffer`].
pub const DEFAULT_MAX_OUTPUT_BUFFER: usize = 256 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            header_read_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            body_read_timeout: Some(DEFAULT_BODY_READ_TIMEOUT),
            max_header_size: 64 * 1024,
            max_headers: 100,
            max_body_size: Some(8 * 1024 * 1024),
            max_requests_per_connection: None,
            max_connections: None,
            max_output_buffer: DEFAULT_MAX_OUTPUT_BUFFER,
            keep_alive: true,
            pipeline_flush: true,
            nodelay: true,
            shutdown_timeout: Duration::from_secs(30),
            http2: true,
            h2: H2Config {
                max_concurrent_streams: 100,
                max_send_buf_size: 64 * 1024,
                stream_window: 256 * 1024,
                connection_window: 1024 * 1024,
                keep_alive_interval: Some(Duration::from_secs(60)),
                keep_alive_timeout: Duration::from_secs(20),
            },
            #[cfg(feature = "tls")]
            tls: Default::default(),
        }
    }
}

impl Server {
    /// Closes a connection whose request head has not fully arrived this
    /// long after the server started waiting for it (slow clients, and
    /// idle keep-alive connections too); `None` turns it off. Default 30 s.
    pub fn header_read_timeout(mut self, t: impl Into<Option<Duration>>) -> Server {
        self.config.header_read_timeout = t.into();
        self
    }

    /// Closes an HTTP/1 connection on which no byte moved either way for
    /// this long while no handler was running: an idle keep-alive
    /// connection, or a client that stopped reading its responses.
    /// `None` turns it off. Default 60 s ([`DEFAULT_IDLE_TIMEOUT`]).
    pub fn idle_timeout(mut self, t: impl Into<Option<Duration>>) -> Server {
        self.config.idle_timeout = t.into();
        self
    }

    /// Fails a request body read when no body byte arrived for this long:
    /// the handler sees [`BodyError::Timeout`](crate::BodyError::Timeout)
    /// (a `408 Request Timeout` as a response), and if nothing was answered
    /// yet the server answers `408` and closes. `None` turns it off.
    /// Default 60 s ([`DEFAULT_BODY_READ_TIMEOUT`]).
    pub fn body_read_timeout(mut self, t: impl Into<Option<Duration>>) -> Server {
        self.config.body_read_timeout = t.into();
        self
    }

    /// Largest request head in bytes (at least 8 KiB); larger gets 431.
    pub fn max_header_size(mut self, bytes: usize) -> Server {
        self.config.max_header_size = bytes.max(8192);
        self
    }

    /// Most header fields in one request; more gets 431.
    pub fn max_headers(mut self, n: usize) -> Server {
        self.config.max_headers = n;
        self
    }

    /// Largest request body in bytes (`None`: unlimited); larger gets 413.
    pub fn max_body_size(mut self, bytes: impl Into<Option<u64>>) -> Server {
        self.config.max_body_size = bytes.into();
        self
    }

    /// Closes a connection after this many requests (`None`: never).
    pub fn max_requests_per_connection(mut self, n: impl Into<Option<u64>>) -> Server {
        self.config.max_requests_per_connection = n.into().map(|n| n.max(1));
        self
    }

    /// Most connections this server (one shard) keeps open; a connection
    /// accepted beyond it is closed at once and counted in
    /// [`ServeStats::refused`](super::ServeStats::refused). `None` (the
    /// default): no cap.
    pub fn max_connections(mut self, n: impl Into<Option<usize>>) -> Server {
        self.config.max_connections = n.into();
        self
    }

    /// Most response bytes an HTTP/1 connection holds for a client that
    /// does not read them (at least 16 KiB): past it the connection stops
    /// producing responses (and reading requests) until the socket takes
    /// some. Default 256 KiB ([`DEFAULT_MAX_OUTPUT_BUFFER`]).
    pub fn max_output_buffer(mut self, bytes: usize) -> Server {
        self.config.max_output_buffer = bytes.max(16 * 1024);
        self
    }

    /// HTTP/1.1 keep-alive (on by default); off closes after each response.
    pub fn keep_alive(mut self, on: bool) -> Server {
        self.config.keep_alive = on;
        self
    }

    /// Writes the responses to pipelined requests together (on by default);
    /// off sends each response as soon as hyper flushes it.
    pub fn pipeline_flush(mut self, on: bool) -> Server {
        self.config.pipeline_flush = on;
        self
    }

    /// `TCP_NODELAY` on accepted connections (on by default).
    pub fn nodelay(mut self, on: bool) -> Server {
        self.config.nodelay = on;
        self
    }

    /// How long a graceful stop waits for busy connections before dropping
    /// them (their sockets closed, their tasks ended). Default 30 s.
    pub fn shutdown_timeout(mut self, t: Duration) -> Server {
        self.config.shutdown_timeout = t;
        self
    }

    /// Serves HTTP/2 to connections that open with its preface (on by
    /// default with feature `http2`).
    #[cfg(feature = "http2")]
    pub fn http2(mut self, on: bool) -> Server {
        self.config.http2 = on;
        self
    }

    /// HTTP/2: most streams open at once on one connection (default 100).
    #[cfg(feature = "http2")]
    pub fn http2_max_concurrent_streams(mut self, n: u32) -> Server {
        self.config.h2.max_concurrent_streams = n.max(1);
        self
    }

    /// HTTP/2: most response bytes buffered per stream, whatever window
    /// the client announces (default 64 KiB; at least 4 KiB).
    #[cfg(feature = "http2")]
    pub fn http2_max_send_buf_size(mut self, bytes: usize) -> Server {
        self.config.h2.max_send_buf_size = bytes.max(4096);
        self
    }

    /// HTTP/2: the receive windows the server announces, per stream and
    /// per connection: how much request body a client may send ahead
    /// (defaults 256 KiB and 1 MiB).
    #[cfg(feature = "http2")]
    pub fn http2_windows(mut self, stream: u32, connection: u32) -> Server {
        self.config.h2.stream_window = stream.max(65_535);
        self.config.h2.connection_window = connection.max(65_535);
        self
    }

    /// HTTP/2 keep-alive: a PING every `interval` of silence, and the
    /// connection closed if no answer comes within `timeout` (defaults
    /// 60 s and 20 s); `None` sends no pings.
    #[cfg(feature = "http2")]
    pub fn http2_keep_alive(
        mut self,
        interval: impl Into<Option<Duration>>,
        timeout: Duration,
    ) -> Server {
        self.config.h2.keep_alive_interval = interval.into();
        self.config.h2.keep_alive_timeout = timeout;
        self
    }
}
