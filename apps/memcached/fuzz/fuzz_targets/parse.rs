//! Arbitrary bytes into the text+meta parser: it must never panic, never
//! claim more bytes than it was given, and make progress on every request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memcached::protocol::{Limits, ProtocolError, parse};

fuzz_target!(|data: &[u8]| {
    // Small limits reach the line and item bounds with short inputs.
    for limits in [
        Limits::default(),
        Limits {
            max_line: 64,
            max_get_line: 128,
            max_item_size: 80,
        },
    ] {
        let mut rest = data;
        loop {
            match parse(rest, &limits) {
                Ok(None) => break,
                Ok(Some((req, used))) => {
                    assert!(used > 0 && used <= rest.len());
                    if let Some(key) = req.key() {
                        assert!(key.len() <= 250);
                    }
                    rest = &rest[used..];
                }
                Err(ProtocolError::Rejected(r)) => {
                    assert!(r.consumed > 0 && r.consumed <= rest.len());
                    let _ = r.reply.as_str();
                    rest = &rest[r.consumed..];
                }
                Err(_) => break,
            }
        }
    }
});
