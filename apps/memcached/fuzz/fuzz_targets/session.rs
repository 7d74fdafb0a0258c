//! Arbitrary bytes through a whole socket-free session (parser, handler,
//! store) with a tiny memory limit: no panic, and the store stays within
//! its limit. The first byte picks how the input is split into reads and
//! how far the clock moves between them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memcached::handler::{Connection, Handler, HandlerConfig};
use memcached::protocol::Limits;
use memcached::store::StoreConfig;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, data)) = data.split_first() else {
        return;
    };
    let mem_limit = 2048;
    let mut handler = Handler::new(HandlerConfig {
        store: StoreConfig {
            mem_limit,
            epoch: 1_700_000_000,
            item_size_max: 1024,
        },
        ..HandlerConfig::default()
    });
    let limits = Limits {
        max_line: 256,
        max_get_line: 512,
        max_item_size: 1024,
    };
    let mut conn = Connection::new(limits);
    let chunk = usize::from(knob % 16) + 1;
    let mut buf = Vec::new();
    let mut now = 0u32;
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        let mut out = memcached::protocol::Out::new();
        let feed = conn.feed(&mut handler, &buf, now, &mut out);
        assert!(feed.consumed <= buf.len());
        buf.drain(..feed.consumed);
        assert!(handler.store().mem_used() <= mem_limit);
        if feed.close {
            break;
        }
        now += u32::from(knob >> 4);
        handler.store_mut().sweep(now, 8);
    }
});
