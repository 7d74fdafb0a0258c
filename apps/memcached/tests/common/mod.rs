//! A socket-free server: bytes in, reply bytes out, with a manual clock.

#![allow(dead_code)]

use memcached::handler::{Connection, Handler, HandlerConfig};
use memcached::protocol::Limits;
use memcached::store::StoreConfig;

/// Unix time of `now == 0` in tests.
pub const EPOCH: i64 = 1_700_000_000;

pub struct Harness {
    pub handler: Handler,
    pub conn: Connection,
    pub buf: Vec<u8>,
    pub now: u32,
    pub closed: bool,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(64 << 20, Limits::default())
    }

    pub fn with(mem_limit: usize, limits: Limits) -> Self {
        let config = HandlerConfig {
            store: StoreConfig {
                mem_limit,
                epoch: EPOCH,
                item_size_max: limits.max_item_size,
            },
            ..HandlerConfig::default()
        };
        Harness {
            handler: Handler::new(config),
            conn: Connection::new(limits),
            buf: Vec::new(),
            now: 0,
            closed: false,
        }
    }

    /// Feeds bytes as one read; returns the replies it produced.
    pub fn send(&mut self, input: &[u8]) -> Vec<u8> {
        assert!(!self.closed, "connection already closed");
        self.buf.extend_from_slice(input);
        let mut out = memcached::protocol::Out::new();
        let feed = self
            .conn
            .feed(&mut self.handler, &self.buf, self.now, &mut out);
        self.buf.drain(..feed.consumed);
        self.closed |= feed.close;
        out.to_vec()
    }

    /// `send` with text in and text out.
    pub fn ask(&mut self, input: &str) -> String {
        String::from_utf8(self.send(input.as_bytes())).expect("utf-8 reply")
    }

    /// Asserts the exact reply to `input`.
    #[track_caller]
    pub fn expect(&mut self, input: &str, reply: &str) {
        assert_eq!(self.ask(input), reply, "request {input:?}");
    }

    pub fn stat(&mut self, name: &str) -> u64 {
        let text = self.ask("stats\r\n");
        let prefix = format!("STAT {name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no stat {name}"))
            .parse()
            .expect("numeric stat")
    }
}
