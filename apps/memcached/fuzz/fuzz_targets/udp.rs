//! Arbitrary datagrams through the server's UDP request path (framing,
//! session, handler, store; no socket), one shard, a tiny reply cap: no
//! panic, every reply is well framed (the request's id, sequence numbers
//! `0..count`, at most 1400 bytes each) and its payload stays within the
//! cap plus one item (the budget bound), ending with the cut line when it
//! was reached. The input is split into datagrams at each `0xfe` byte.
#![no_main]

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use memcached::server::Config;
use memcached::server::udp::{CUT_LINE, FrameHeader, HEADER_LEN, MAX_DATAGRAM, Responder};

const CAP: usize = 4096;
const ITEM_MAX: usize = 2048;

/// The largest single reply that may cross the cap: an item with its
/// `VALUE` line, or `stats`.
const ONE_REPLY_MAX: usize = 8192;

type Ask = (Vec<u8>, Sender<Vec<Bytes>>);

/// One runtime thread for the whole run, owning the responder.
fn responder() -> &'static Mutex<Sender<Ask>> {
    static TX: OnceLock<Mutex<Sender<Ask>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx): (Sender<Ask>, Receiver<Ask>) = channel();
        std::thread::spawn(move || {
            seastar_core::block_on(async move {
                let config = Config {
                    memory_limit: 64 << 10,
                    item_size_max: ITEM_MAX,
                    udp_reply_max: CAP,
                    ..Config::default()
                };
                let mut r = Responder::start(config).await.expect("responder");
                // Blocking here is fine: nothing else runs on this shard.
                while let Ok((datagram, back)) = rx.recv() {
                    let _ = back.send(r.answer(&datagram).await);
                }
            });
        });
        Mutex::new(tx)
    })
}

fuzz_target!(|data: &[u8]| {
    let tx = responder().lock().unwrap().clone();
    for body in data.split(|&b| b == 0xfe) {
        // A valid header (id from the body's length) unless the body
        // starts with 0xfd: then the raw bytes, header and all.
        let datagram = match body.split_first() {
            Some((0xfd, raw)) => raw.to_vec(),
            _ => {
                let id = (body.len() as u16).to_be_bytes();
                let mut d = vec![id[0], id[1], 0, 0, 0, 1, 0, 0];
                d.extend_from_slice(body);
                d
            }
        };
        let (back, rx) = channel();
        tx.send((datagram.clone(), back)).unwrap();
        let reply = rx.recv().unwrap();
        let Some(req) = FrameHeader::parse(&datagram) else {
            assert!(reply.is_empty());
            continue;
        };
        let mut payload = Vec::new();
        for (i, d) in reply.iter().enumerate() {
            assert!(d.len() <= MAX_DATAGRAM && d.len() > HEADER_LEN);
            let h = FrameHeader::parse(d).unwrap();
            assert_eq!(h.request_id, req.request_id);
            assert_eq!((h.sequence as usize, h.count as usize), (i, reply.len()));
            payload.extend_from_slice(&d[HEADER_LEN..]);
        }
        // The cap, one reply crossing it, the cut line.
        assert!(
            payload.len() <= CAP + ONE_REPLY_MAX + CUT_LINE.len(),
            "{} bytes",
            payload.len()
        );
    }
});
