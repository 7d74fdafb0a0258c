//! The per-connection state machine, without I/O.
//!
//! A connection alternates between parsing commands and swallowing the data
//! block of a refused storage command (memcached's `conn_swallow`). The I/O
//! loop appends what it reads to a buffer, calls [`Connection::feed`], drops
//! the consumed prefix, writes `out` (all replies of one read coalesced into
//! one write), and closes when told to. Everything runs on one shard; a
//! multi-shard loop uses [`parse`] and [`Handler::execute`] directly.

use super::{Action, Handler};
use crate::protocol::{Limits, Out, ProtocolError, parse};

/// Parser bounds plus the bytes still to swallow.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    limits: Limits,
    swallow: usize,
}

/// Result of [`Connection::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    /// Bytes of the input that were used and may be dropped.
    pub consumed: usize,
    /// Close after writing the replies (`quit`, overlong line, HTTP).
    pub close: bool,
}

impl Connection {
    /// A connection enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Connection { limits, swallow: 0 }
    }

    /// Bytes of a refused data block still to be discarded.
    pub fn swallowing(&self) -> usize {
        self.swallow
    }

    /// Executes every complete request in `buf`, appending replies to `out`.
    ///
    /// ```
    /// use memcached::handler::{Connection, Handler, HandlerConfig};
    /// let mut h = Handler::new(HandlerConfig::default());
    /// let mut c = Connection::default();
    /// let mut out = memcached::protocol::Out::new();
    /// let feed = c.feed(&mut h, b"mn\r\nget k\r\nget", 0, &mut out);
    /// assert_eq!((feed.consumed, feed.close), (11, false));
    /// assert_eq!(out.to_vec(), b"MN\r\nEND\r\n");
    /// ```
    pub fn feed(&mut self, h: &mut Handler, buf: &[u8], now: u32, out: &mut Out) -> Feed {
        let mut pos = 0;
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(buf.len() - pos);
                pos += n;
                self.swallow -= n;
                if self.swallow > 0 {
                    return Feed {
                        consumed: pos,
                        close: false,
                    };
                }
            }
            match parse(&buf[pos..], &self.limits) {
                Ok(None) => {
                    return Feed {
                        consumed: pos,
                        close: false,
                    };
                }
                Ok(Some((req, used))) => {
                    pos += used;
                    self.swallow = req.swallow();
                    if h.execute(&req, now, out) == Action::Close {
                        return Feed {
                            consumed: pos,
                            close: true,
                        };
                    }
                }
                Err(ProtocolError::Rejected(r)) => {
                    h.reject(&r, out);
                    pos += r.consumed;
                    self.swallow = r.swallow;
                }
                Err(ProtocolError::LineTooLong { .. } | ProtocolError::HttpRequest) => {
                    return Feed {
                        consumed: pos,
                        close: true,
                    };
                }
            }
        }
    }
}
