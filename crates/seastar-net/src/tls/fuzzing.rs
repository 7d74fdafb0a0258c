//! The receive path of [`TlsStream`](super::TlsStream) without a socket,
//! for the fuzz targets in `crates/seastar-net/fuzz` (not a public API).
//!
//! A [`Session`] is a rustls session driven exactly as the stream drives
//! it: a receive is fed with `recv::feed` only once the
//! plaintext decrypted before has been read, what rustls queues to send is
//! collected (and dropped: there is no peer), after a failure every call
//! fails, and after [`Session::close`] (our `close_notify`) rustls
//! processes nothing more. The fuzz targets run their input through
//! [`Session::run`] and check that nothing panics and that the plaintext
//! buffered stays under [`PLAINTEXT_BOUND`]; the unit tests here replay
//! their findings (`fuzz/regressions/`).

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::recv::feed;

/// Most plaintext a session may hold unread after a receive: what one
/// receive of at most [`RECEIVE_MAX`] bytes can decrypt, plus rustls' own
/// limit on received plaintext.
pub const PLAINTEXT_BOUND: usize = RECEIVE_MAX + 16 * 1024;

/// Largest receive [`Session::receive`] hands to rustls at once (a pooled
/// receive buffer of the socket is no larger).
pub const RECEIVE_MAX: usize = 64 * 1024;

/// A rustls session fed like a [`TlsStream`](super::TlsStream)'s.
#[derive(Debug)]
pub struct Session {
    conn: Connection,
    /// Ciphertext received and not yet taken by rustls.
    pending: Vec<u8>,
    failed: bool,
    eof: bool,
    /// Our `close_notify` was queued.
    closed: bool,
    /// Bytes rustls queued to send (collected, not kept).
    pub sent: usize,
}

impl Session {
    /// A server session on `config`.
    pub fn server(config: Arc<ServerConfig>) -> Session {
        let conn = ServerConnection::new(config).expect("a server session starts");
        Session::new(conn.into())
    }

    /// A client session on `config` for `name`; its ClientHello is queued.
    pub fn client(config: Arc<ClientConfig>, name: &str) -> Session {
        let name = ServerName::try_from(name.to_owned()).expect("a valid server name");
        let conn = ClientConnection::new(config, name).expect("a client session starts");
        let mut s = Session::new(conn.into());
        s.send();
        s
    }

    fn new(conn: Connection) -> Session {
        Session {
            conn,
            pending: Vec::new(),
            failed: false,
            eof: false,
            closed: false,
            sent: 0,
        }
    }

    /// Whether the session has failed (every later call fails).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Collects what rustls queued to send, as the stream's sends do.
    fn send(&mut self) {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        self.sent += out.len();
    }

    /// Receives `data` (empty: the peer closed): feeds what the stream
    /// would, reading (and counting) the plaintext whenever some is
    /// buffered, as a reader of the stream would before it receives more.
    /// Returns the plaintext bytes read; asserts the plaintext bound.
    pub fn receive(&mut self, data: &[u8]) -> usize {
        if self.failed || self.eof {
            return 0;
        }
        self.pending.extend_from_slice(data);
        let mut read = 0;
        let closing = data.is_empty();
        loop {
            read += self.read_plaintext();
            let take = self.pending.len().min(RECEIVE_MAX);
            if take == 0 && !closing {
                return read;
            }
            let fed = match feed(&mut self.conn, &self.pending[..take], self.closed) {
                Ok(fed) => fed,
                Err(_) => {
                    self.failed = true;
                    return read;
                }
            };
            self.pending.drain(..fed.consumed);
            let unread = *fed.processed.as_ref().unwrap_or(&0);
            assert!(
                unread <= PLAINTEXT_BOUND,
                "{unread} bytes of plaintext buffered after one receive"
            );
            self.send();
            if fed.processed.is_err() {
                self.failed = true;
                return read;
            }
            if fed.eof {
                self.eof = true;
                return read + self.read_plaintext();
            }
            if fed.consumed == 0 && unread == 0 {
                // rustls wants no more now (as the stream: wait for a read).
                return read;
            }
        }
    }

    fn read_plaintext(&mut self) -> usize {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) | Err(_) => return n,
                Ok(k) => n += k,
            }
        }
    }

    /// Writes plaintext (as the stream's writes: once the handshake is
    /// done, never after a failure or a close) and collects the records;
    /// returns the bytes accepted.
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed || self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = self.conn.writer().write(data)?;
        self.send();
        Ok(n)
    }

    /// Runs a fuzz input through the session: a sequence of operations,
    /// each a tag byte then (for receives) a 2-byte little-endian length
    /// and that many bytes (or what is left): 0..=0xEF receive, 0xF0..=0xF7
    /// write 100 bytes of plaintext, 0xF8..=0xFB close, 0xFC..=0xFF the
    /// peer closes; then the peer closes. Asserts the plaintext bound.
    pub fn run(&mut self, mut data: &[u8]) {
        while let Some((&tag, rest)) = data.split_first() {
            data = rest;
            match tag {
                0..=0xEF => {
                    let len = match data {
                        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
                        _ => data.len(),
                    };
                    data = data.get(2..).unwrap_or(&[]);
                    let (chunk, rest) = data.split_at(len.min(data.len()));
                    data = rest;
                    self.receive(chunk);
                }
                0xF0..=0xF7 => {
                    let _ = self.write(&[tag; 100]);
                }
                0xF8..=0xFB => self.close(),
                _ => {
                    self.receive(&[]);
                }
            }
        }
        self.receive(&[]);
    }

    /// Queues `close_notify` and collects it (as the stream's shutdown:
    /// once, and not after a failure).
    pub fn close(&mut self) {
        if self.closed || self.failed {
            return;
        }
        self.closed = true;
        self.conn.send_close_notify();
        self.send();
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::tls::{TlsClientConfig, TlsServerConfig};

    /// A fresh certificate's server and client configurations (also used
    /// by `fuzzing_offload`'s tests).
    pub(in crate::tls) fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
        let server = TlsServerConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())
            .unwrap()
            .alpn(["h2", "http/1.1"])
            .build()
            .unwrap();
        let client = TlsClientConfig::new()
            .root_pem(cert_pem.as_bytes())
            .unwrap()
            .alpn(["http/1.1"])
            .build()
            .unwrap();
        (server, client)
    }

    // The fuzz targets' first findings: our close, then a bad record
    // header (rustls' debug assertion that no fatal alert follows its
    // close_notify fired while processing it).
    #[test]
    fn tls_server_finding_close_then_a_bad_record() {
        let input = include_bytes!(
            "../../fuzz/regressions/tls_server/crash-ecc9f61e45365d7ef04116a410934f1b1ecd8da6"
        );
        let mut s = Session::server(configs().0);
        s.run(input);
        assert!(!s.failed(), "nothing after our close is processed");
    }

    #[test]
    fn tls_client_finding_close_then_a_bad_record() {
        let input = include_bytes!(
            "../../fuzz/regressions/tls_client/crash-89f58957aa4f19dc6e801bfe991dcc841672c33e"
        );
        let mut s = Session::client(configs().1, "localhost");
        s.run(input);
        assert!(!s.failed(), "nothing after our close is processed");
    }

    #[test]
    fn a_bad_record_without_a_close_fails_the_session_once() {
        let mut s = Session::server(configs().0);
        s.run(&[0x00, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0]);
        assert!(s.failed());
        assert!(s.sent > 0, "the alert is sent");
        assert!(s.write(b"x").is_err());
    }
}
