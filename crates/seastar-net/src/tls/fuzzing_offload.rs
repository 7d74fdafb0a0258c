//! The receive path of an offloaded server session (`records::Records`,
//! as [`TlsStream`](super::TlsStream) drives it once a TLS 1.3 session
//! left rustls) without a socket, for the `tls_records` fuzz target in
//! `crates/seastar-net/fuzz` (not a public API).
//!
//! Random bytes alone never get past the first record's authentication,
//! so an [`Offloaded`] pairs a real rustls client with the server: the
//! input writes plaintext through the client, delivers its ciphertext to
//! the server in pieces of any size, and tampers with it (flips a byte,
//! injects bytes). Checked on every input: nothing panics, the bytes kept
//! for an incomplete record stay bounded, and while nothing was tampered
//! with the server reads exactly what the client wrote, in order.

use std::io::Write;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

use super::fuzzing::RECEIVE_MAX;
use super::records::Records;

/// Most bytes kept for an incomplete record after a receive: a whole
/// record at its largest header-declared size, plus one receive.
pub const CARRY_BOUND: usize = 5 + 0xffff + RECEIVE_MAX;

/// A client and an offloaded server session after an in-memory TLS 1.3
/// handshake.
pub struct Offloaded {
    client: ClientConnection,
    server: Records,
    /// The client's ciphertext not yet received by the server.
    wire: Vec<u8>,
    /// Plaintext the client wrote, and what the server read.
    written: Vec<u8>,
    read: Vec<u8>,
    tampered: bool,
    failed: bool,
}

impl std::fmt::Debug for Offloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offloaded")
            .field("wire", &self.wire.len())
            .field("written", &self.written.len())
            .field("read", &self.read.len())
            .field("tampered", &self.tampered)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Offloaded {
    /// Runs the handshake between `client` (for `localhost`) and `server`
    /// (which must allow secret extraction, as `TlsServerConfig`'s do) and
    /// moves the server session to record offload. `None` if the pair
    /// negotiated anything but TLS 1.3 or failed.
    pub fn new(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Option<Offloaded> {
        let name = ServerName::try_from("localhost").ok()?;
        let mut c = ClientConnection::new(client, name).ok()?;
        let mut s = ServerConnection::new(server).ok()?;
        for _ in 0..10 {
            let mut b = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut b).ok()?;
            }
            s.read_tls(&mut &b[..]).ok()?;
            s.process_new_packets().ok()?;
            let mut b = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut b).ok()?;
            }
            c.read_tls(&mut &b[..]).ok()?;
            c.process_new_packets().ok()?;
            if !c.is_handshaking() && !s.is_handshaking() && !s.wants_write() {
                break;
            }
        }
        if c.is_handshaking() || s.is_handshaking() {
            return None;
        }
        Some(Offloaded {
            client: c,
            server: Records::from_server(s).ok()?,
            wire: Vec::new(),
            written: Vec::new(),
            read: Vec::new(),
            tampered: false,
            failed: false,
        })
    }

    /// Whether the server's session has failed (it receives nothing more).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Plaintext the server read so far.
    pub fn read(&self) -> &[u8] {
        &self.read
    }

    /// The client writes `n` bytes of plaintext (a pattern that shows
    /// order) and its records go on the wire.
    pub fn write(&mut self, n: usize) {
        let data: Vec<u8> = (self.written.len()..self.written.len() + n)
            .map(|i| (i % 251) as u8)
            .collect();
        if self.client.writer().write_all(&data).is_ok() {
            self.written.extend_from_slice(&data);
        }
        self.flush_client();
    }

    /// The client sends its `close_notify`.
    pub fn close(&mut self) {
        self.client.send_close_notify();
        self.flush_client();
    }

    fn flush_client(&mut self) {
        while self.client.wants_write() {
            if self.client.write_tls(&mut self.wire).is_err() {
                break;
            }
        }
    }

    /// The server receives up to `n` bytes of the wire, as the stream's
    /// reads do: kept records first, then receives of at most
    /// [`RECEIVE_MAX`] bytes, every whole record opened and its plaintext
    /// read. Asserts the carry bound.
    pub fn receive(&mut self, n: usize) {
        let n = n.min(self.wire.len());
        let chunk: Vec<u8> = self.wire.drain(..n).collect();
        if self.failed {
            return;
        }
        let mut piece = &chunk[..];
        loop {
            let record = if !self.server.peer_closed() && self.server.next_from_carry() {
                true
            } else if piece.is_empty() || self.server.peer_closed() {
                break;
            } else {
                // One receive is at most a receive buffer.
                let now = &piece[..piece.len().min(RECEIVE_MAX)];
                let taken = self.server.take(now);
                piece = &piece[taken.consumed..];
                taken.record
            };
            assert!(
                self.server.carry_len() <= CARRY_BOUND,
                "{} bytes kept for an incomplete record",
                self.server.carry_len()
            );
            if !record {
                continue;
            }
            if self.server.open().is_err() {
                self.failed = true;
                return;
            }
            let plain = self.server.plaintext();
            self.read.extend_from_slice(plain);
            let n = plain.len();
            self.server.consume(n);
        }
    }

    /// Flips bit `bit` of the wire's byte at `at` (modulo its length).
    pub fn flip(&mut self, at: usize, bit: u8) {
        if !self.wire.is_empty() {
            let i = at % self.wire.len();
            self.wire[i] ^= 1 << (bit % 8);
            self.tampered = true;
        }
    }

    /// Puts `bytes` on the wire, after what the client sent.
    pub fn inject(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
        self.tampered |= !bytes.is_empty();
    }

    /// Checks the stream's promise: untampered, the server read a prefix
    /// of what the client wrote (all of it once the wire is drained).
    pub fn check(&self) {
        if self.tampered {
            return;
        }
        assert!(!self.failed, "an untampered session failed");
        assert!(
            self.written.starts_with(&self.read),
            "read {} bytes that are not what the client wrote",
            self.read.len()
        );
        if self.wire.is_empty() && !self.server.peer_closed() {
            assert_eq!(self.read.len(), self.written.len(), "bytes left unread");
        }
    }

    /// Runs a fuzz input: a sequence of operations, each a tag byte and a
    /// 2-byte little-endian argument `a`: 0..=0x5F the client writes
    /// `a % 40_000` bytes; 0x60..=0xBF the server receives `a` bytes;
    /// 0xC0..=0xDF flip a bit at `a`; 0xE0..=0xEF inject the next
    /// `a % 64` input bytes; 0xF0.. the client closes. Then the server
    /// receives the rest, and [`check`](Self::check) runs after every step.
    pub fn run(&mut self, mut data: &[u8]) {
        while let [tag, lo, hi, rest @ ..] = data {
            data = rest;
            let a = usize::from(u16::from_le_bytes([*lo, *hi]));
            match tag {
                0..=0x5F => self.write(a % 40_000),
                0x60..=0xBF => self.receive(a),
                0xC0..=0xDF => self.flip(a, *tag),
                0xE0..=0xEF => {
                    let (bytes, rest) = data.split_at((a % 64).min(data.len()));
                    data = rest;
                    self.inject(bytes);
                }
                _ => self.close(),
            }
            self.check();
        }
        self.receive(usize::MAX);
        self.check();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> Offloaded {
        let (server, client) = crate::tls::fuzzing::tests::configs();
        Offloaded::new(server, client).expect("a TLS 1.3 session offloaded")
    }

    #[test]
    fn writes_delivered_in_odd_pieces_read_back_whole() {
        let mut p = pair();
        // write 20000, receive 7, write 3, receive 16389, receive the rest
        p.run(&[
            0x00, 0x20, 0x4e, 0x60, 7, 0, 0x01, 3, 0, 0x61, 0x05, 0x40, 0x62, 0xff, 0xff,
        ]);
        assert!(!p.failed());
        assert_eq!(p.read().len(), 20_003);
    }

    // The target's first finding, in the harness: it handed a whole wire
    // (more than a receive buffer) to one `take`, and the carry passed the
    // bound. The stream never receives more than a buffer at once.
    #[test]
    fn tls_records_finding_a_huge_delivery_stays_within_the_bound() {
        let input = include_bytes!(
            "../../fuzz/regressions/tls_records/crash-7ba9bf8eec08e3b08a080e88c580e3fc5329bf93"
        );
        pair().run(input);
    }

    #[test]
    fn a_flipped_bit_fails_the_session_and_nothing_after_it_is_read() {
        let mut p = pair();
        p.write(100);
        p.flip(30, 3);
        p.write(100);
        p.receive(usize::MAX);
        assert!(p.failed());
        assert!(p.read().is_empty(), "the tampered record is not read");
    }

    #[test]
    fn a_forged_header_declaring_64_kib_is_held_within_the_bound() {
        let mut p = pair();
        p.inject(&[23, 3, 3, 0xff, 0xff]);
        p.inject(&[0; 60]);
        p.receive(usize::MAX);
        assert!(!p.failed(), "incomplete: not opened yet");
        p.inject(&vec![0; 0x10000]);
        p.receive(usize::MAX);
        assert!(p.failed(), "oversized or forged: refused");
    }
}
