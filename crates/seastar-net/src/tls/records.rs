//! [`Records`]: a server session's TLS 1.3 records after the handshake,
//! sealed and opened here with the keys rustls negotiated, instead of
//! through rustls' buffered connection (the split kTLS offload uses:
//! rustls runs the handshake, the record layer runs elsewhere).
//!
//! Why: rustls' buffered connection copies every received record into its
//! own buffer, decrypts it there, copies the plaintext into a newly
//! allocated chunk for the reader, and queues every sealed record as
//! another allocation that `write_tls` copies out again. Here a record is
//! decrypted where it was assembled and read from there, and a sealed
//! record is written into the (pooled) buffer handed to the send. Sealing
//! and opening call ring's AEAD directly (nonce: the IV xor the sequence
//! number; additional data: the record header; RFC 8446 5.2-5.4), which
//! rustls' own record layer wraps with an allocation per record. The
//! tests check every record both ways against a rustls client. Callgrind,
//! httpd `--smp 1` HTTPS keep-alive `GET /` (wrk -t1 -c64): 14,334 ->
//! 12,242 instructions per request through rustls' encrypter and
//! decrypter, then 320 fewer in the stream's read and write with ring.
//!
//! What it does not do, so the stream moves a session here only when
//! none of it can matter (see `TlsStream`): TLS 1.2, the client side, and
//! post-handshake handshake messages. A peer's `KeyUpdate` (TLS 1.3
//! section 4.6.3) ends the session with an `unexpected_message` alert:
//! rustls hands out the traffic keys, not the secrets the next keys derive
//! from. Browsers and the common clients never send one unprompted. A
//! session that would need one of its own (AES-GCM's confidentiality
//! limit, 2^24 records sent) fails its next write instead, where rustls
//! would update its keys. Servers that must accept `KeyUpdate` turn this
//! off ([`TlsServerConfig::record_offload`](super::TlsServerConfig::record_offload)).
//!
//! The rules kept from RFC 8446 section 5: every record is
//! `application_data` on the outside, at most 2^14 + 256 bytes of
//! ciphertext; the inner type is found by the decrypter (padding
//! stripped); sequence numbers count records per direction from the ones
//! rustls reached; a `close_notify` alert ends the peer's data (what
//! follows is dropped), any other alert or inner type is fatal. Pure: no
//! I/O, so it is fuzzed and unit-tested without sockets.

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use rustls::crypto::cipher::{AeadKey, Iv, OutboundChunks};
use rustls::pki_types::CertificateDer;
use rustls::{
    AlertDescription, ConnectionTrafficSecrets, ContentType, Error, PeerMisbehaved,
    SupportedCipherSuite,
};

/// Most plaintext in one record (RFC 8446 5.1).
pub(crate) const MAX_PLAIN: usize = 1 << 14;
/// Header of a record: type, legacy version, length.
const HEADER: usize = 5;
/// Most ciphertext in one record (RFC 8446 5.2).
const MAX_CIPHER: usize = MAX_PLAIN + 256;
/// The AEAD tag of every TLS 1.3 suite.
const TAG: usize = 16;

/// One direction's key: the record nonce is its IV xor the record's
/// sequence number (RFC 8446 5.3), the additional data the record header.
struct Key {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
}

impl Key {
    fn new(secrets: ConnectionTrafficSecrets, seq: u64) -> Result<Key, Error> {
        let (alg, key, iv) = key_iv(secrets)?;
        let key = UnboundKey::new(alg, key.as_ref())
            .map_err(|_| Error::General("bad traffic key".into()))?;
        Ok(Key {
            key: LessSafeKey::new(key),
            iv: iv
                .as_ref()
                .try_into()
                .map_err(|_| Error::General("bad traffic IV".into()))?,
            seq,
        })
    }

    /// The next record's nonce (and the sequence number moves on).
    fn next_nonce(&mut self) -> Nonce {
        let mut n = self.iv;
        for (b, s) in n[NONCE_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        self.seq += 1;
        Nonce::assume_unique_for_key(n)
    }
}

/// The length of the record starting `data` (header included), once its
/// header is there.
pub(crate) fn record_len(data: &[u8]) -> Option<usize> {
    (data.len() >= HEADER).then(|| HEADER + usize::from(u16::from_be_bytes([data[3], data[4]])))
}

/// Follows the record boundaries in bytes fed to rustls, so that the
/// stream knows when rustls holds no partial record (only then may the
/// session move to [`Records`]).
#[derive(Debug, Default)]
pub(crate) struct Boundary {
    /// Bytes left of the record being fed.
    left: usize,
    /// A record header was split between two feeds: not followed further.
    lost: bool,
}

impl Boundary {
    /// Accounts for `data`, fed to rustls after what came before.
    pub(crate) fn fed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost {
            if self.left == 0 {
                match record_len(data) {
                    Some(n) => self.left = n,
                    None => self.lost = true,
                }
                continue;
            }
            let n = self.left.min(data.len());
            self.left -= n;
            data = &data[n..];
        }
    }

    /// Everything fed so far ends on a record boundary.
    pub(crate) fn at_boundary(&self) -> bool {
        self.left == 0 && !self.lost
    }
}

/// What a server session keeps from rustls once it moves to [`Records`].
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) alpn: Option<Vec<u8>>,
    pub(crate) server_name: Option<String>,
    pub(crate) peer_certificates: Option<Vec<CertificateDer<'static>>>,
    pub(crate) resumed: bool,
    pub(crate) suite: SupportedCipherSuite,
}

/// One session's TLS 1.3 records, sealed and opened outside rustls (see
/// the module docs).
pub(crate) struct Records {
    tx: Key,
    rx: Key,
    /// Records this session may seal (the suite's confidentiality limit).
    tx_limit: u64,
    /// The record last opened, decrypted in place: its plaintext not yet
    /// read is `rec[start..end]`.
    rec: Vec<u8>,
    start: usize,
    end: usize,
    /// Received bytes of the next records, when one spans receives.
    carry: Vec<u8>,
    /// The peer's `close_notify` was opened: nothing after it is.
    peer_closed: bool,
    pub(crate) facts: Facts,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("tx_seq", &self.tx.seq)
            .field("rx_seq", &self.rx.seq)
            .field("plaintext", &(self.end - self.start))
            .field("carry", &self.carry.len())
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

/// The ring algorithm, key and IV of a TLS 1.3 suite's traffic secrets.
fn key_iv(
    s: ConnectionTrafficSecrets,
) -> Result<(&'static ring::aead::Algorithm, AeadKey, Iv), Error> {
    match s {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => Ok((&ring::aead::AES_128_GCM, key, iv)),
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => Ok((&ring::aead::AES_256_GCM, key, iv)),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            Ok((&ring::aead::CHACHA20_POLY1305, key, iv))
        }
        _ => Err(Error::General(
            "no record offload for this cipher suite".into(),
        )),
    }
}

/// What [`Records::take`] did with received bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Bytes taken (all of them, or one whole record).
    pub(crate) consumed: usize,
    /// A whole record is ready for [`Records::open`].
    pub(crate) record: bool,
}

impl Records {
    /// Takes over a server session whose handshake is done, whose
    /// configuration allows secret extraction, and in which rustls holds
    /// nothing: no plaintext to read, no record to send, no partial
    /// record received (the caller checks). TLS 1.3 only.
    pub(crate) fn from_server(conn: rustls::ServerConnection) -> Result<Records, Error> {
        let Some(SupportedCipherSuite::Tls13(suite13)) = conn.negotiated_cipher_suite() else {
            return Err(Error::General("record offload is TLS 1.3 only".into()));
        };
        let facts = Facts {
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name: conn.server_name().map(str::to_owned),
            peer_certificates: conn.peer_certificates().map(<[_]>::to_vec),
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            suite: SupportedCipherSuite::Tls13(suite13),
        };
        let secrets = conn.dangerous_extract_secrets()?;
        Ok(Records {
            tx: Key::new(secrets.tx.1, secrets.tx.0)?,
            rx: Key::new(secrets.rx.1, secrets.rx.0)?,
            tx_limit: suite13.common.confidentiality_limit,
            rec: Vec::new(),
            start: 0,
            end: 0,
            carry: Vec::new(),
            peer_closed: false,
            facts,
        })
    }

    /// The plaintext opened and not yet read.
    pub(crate) fn plaintext(&self) -> &[u8] {
        &self.rec[self.start..self.end]
    }

    /// Marks `n` bytes of [`plaintext`](Self::plaintext) as read.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Bytes kept for records not yet whole (bounded by one record of the
    /// largest size a header can declare plus one receive).
    pub(crate) fn carry_len(&self) -> usize {
        self.carry.len()
    }

    /// The peer's `close_notify` was opened.
    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Takes received bytes toward the next record: a whole record at the
    /// start of `data` alone (copied once, to be opened in place), else
    /// all of it, kept until its record is complete.
    pub(crate) fn take(&mut self, data: &[u8]) -> Taken {
        if self.carry.is_empty()
            && let Some(n) = record_len(data)
            && data.len() >= n
        {
            self.rec.clear();
            self.rec.extend_from_slice(&data[..n]);
            return Taken {
                consumed: n,
                record: true,
            };
        }
        self.carry.extend_from_slice(data);
        Taken {
            consumed: data.len(),
            record: self.next_from_carry(),
        }
    }

    /// Moves the next record, if whole, from the kept bytes to be opened.
    pub(crate) fn next_from_carry(&mut self) -> bool {
        match record_len(&self.carry) {
            Some(n) if self.carry.len() >= n => {
                self.rec.clear();
                self.rec.extend_from_slice(&self.carry[..n]);
                self.carry.drain(..n);
                true
            }
            _ => false,
        }
    }

    /// Opens the record [`take`](Self::take) or
    /// [`next_from_carry`](Self::next_from_carry) made ready: application data
    /// becomes the [`plaintext`](Self::plaintext) (possibly empty), a
    /// `close_notify` sets [`peer_closed`](Self::peer_closed). The error
    /// ends the session: send [`alert_for`] it, then close.
    pub(crate) fn open(&mut self) -> Result<(), Error> {
        self.start = 0;
        self.end = 0;
        if self.peer_closed {
            return Ok(()); // nothing after close_notify is processed
        }
        if self.rec.len() > HEADER + MAX_CIPHER {
            return Err(Error::PeerSentOversizedRecord);
        }
        if self.rec[0] != u8::from(ContentType::ApplicationData) {
            return Err(Error::InappropriateMessage {
                expect_types: vec![ContentType::ApplicationData],
                got_type: ContentType::from(self.rec[0]),
            });
        }
        let (header, body) = self.rec.split_at_mut(HEADER);
        let mut aad = [0; HEADER];
        aad.copy_from_slice(header);
        let nonce = self.rx.next_nonce();
        let inner = self
            .rx
            .key
            .open_in_place(nonce, Aad::from(aad), body)
            .map_err(|_| Error::DecryptError)?;
        // The inner type is the last byte that is not padding (5.4).
        let Some(last) = inner.iter().rposition(|&b| b != 0) else {
            return Err(Error::PeerMisbehaved(
                PeerMisbehaved::IllegalTlsInnerPlaintext,
            ));
        };
        let typ = ContentType::from(inner[last]);
        let payload = &inner[..last];
        match typ {
            ContentType::ApplicationData if payload.len() <= MAX_PLAIN => {
                self.start = HEADER;
                self.end = HEADER + payload.len();
                Ok(())
            }
            ContentType::ApplicationData => Err(Error::PeerSentOversizedRecord),
            ContentType::Alert => match payload {
                [_, d] if *d == u8::from(AlertDescription::CloseNotify) => {
                    self.peer_closed = true;
                    self.carry = Vec::new();
                    Ok(())
                }
                [_, d] => Err(Error::AlertReceived(AlertDescription::from(*d))),
                _ => Err(Error::InvalidMessage(
                    rustls::InvalidMessage::MessageTooShort,
                )),
            },
            ContentType::Handshake => Err(Error::General(
                "a post-handshake message (e.g. KeyUpdate) with record offload on".into(),
            )),
            typ => Err(Error::InappropriateMessage {
                expect_types: vec![ContentType::ApplicationData, ContentType::Alert],
                got_type: typ,
            }),
        }
    }

    /// Seals `payload` as application data records of at most 2^14 bytes
    /// each, appended to `out`.
    pub(crate) fn seal(
        &mut self,
        payload: OutboundChunks<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut rest = payload;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(MAX_PLAIN);
            self.seal_one(ContentType::ApplicationData, now, out)?;
            rest = later;
        }
        Ok(())
    }

    /// Seals an alert (`close_notify` is a warning, the rest fatal).
    pub(crate) fn seal_alert(
        &mut self,
        desc: AlertDescription,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let level = if desc == AlertDescription::CloseNotify {
            1
        } else {
            2
        };
        let body = [level, u8::from(desc)];
        self.seal_one(ContentType::Alert, (&body[..]).into(), out)
    }

    fn seal_one(
        &mut self,
        typ: ContentType,
        payload: OutboundChunks<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.tx.seq >= self.tx_limit {
            return Err(Error::EncryptError);
        }
        // The inner plaintext: the payload, its type, no padding.
        let len = payload.len() + 1 + TAG;
        let header = [
            u8::from(ContentType::ApplicationData),
            3,
            3,
            (len >> 8) as u8,
            len as u8,
        ];
        out.reserve(HEADER + len);
        out.extend_from_slice(&header);
        let body = out.len();
        payload.copy_to_vec(out);
        out.push(u8::from(typ));
        let nonce = self.tx.next_nonce();
        let tag = self
            .tx
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[body..])
            .map_err(|_| Error::EncryptError)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

/// The alert that reports `e` to the peer.
pub(crate) fn alert_for(e: &Error) -> AlertDescription {
    match e {
        Error::DecryptError => AlertDescription::BadRecordMac,
        Error::PeerSentOversizedRecord => AlertDescription::RecordOverflow,
        Error::InvalidMessage(_) => AlertDescription::DecodeError,
        _ => AlertDescription::UnexpectedMessage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_follows_records_split_anywhere() {
        let mut rec = vec![23, 3, 3, 0, 4, 1, 2, 3, 4];
        rec.extend_from_slice(&[23, 3, 3, 0, 1, 9]);
        for cut in 0..=rec.len() {
            let mut b = Boundary::default();
            b.fed(&rec[..cut]);
            let whole = cut == 0 || cut == 9 || cut == rec.len();
            // A header split between feeds is not followed: no boundary after.
            let split_header = (1..5).contains(&cut) || (10..14).contains(&cut);
            assert_eq!(b.at_boundary(), whole, "cut {cut}");
            b.fed(&rec[cut..]);
            assert_eq!(b.at_boundary(), !split_header, "cut {cut}");
        }
    }

    /// A client and a server session after an in-memory TLS 1.3 handshake,
    /// the server's records moved to [`Records`].
    fn pair() -> (rustls::ClientConnection, Records) {
        use std::sync::Arc;
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = ck.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
        let provider = super::super::crypto_provider();
        let mut sc = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        sc.enable_secret_extraction = true;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let cc = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(cc), name).unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(sc)).unwrap();
        for _ in 0..10 {
            let mut b = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut b).unwrap();
            }
            server.read_tls(&mut &b[..]).unwrap();
            server.process_new_packets().unwrap();
            let mut b = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut b).unwrap();
            }
            client.read_tls(&mut &b[..]).unwrap();
            client.process_new_packets().unwrap();
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        (client, Records::from_server(server).unwrap())
    }

    /// What the client sends after `f` acted on it.
    fn client_bytes(
        c: &mut rustls::ClientConnection,
        f: impl FnOnce(&mut rustls::ClientConnection),
    ) -> Vec<u8> {
        f(c);
        let mut b = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut b).unwrap();
        }
        b
    }

    /// Feeds `data` in the pieces `cuts` makes; the plaintext opened.
    fn read_all(r: &mut Records, data: &[u8], cuts: &[usize]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut last = 0;
        for &end in cuts.iter().chain([&data.len()]) {
            let mut piece = &data[last..end];
            last = end;
            loop {
                let t = r.take(piece);
                piece = &piece[t.consumed..];
                let mut record = t.record;
                while record {
                    r.open()?;
                    out.extend_from_slice(r.plaintext());
                    let n = r.plaintext().len();
                    r.consume(n);
                    record = r.next_from_carry();
                }
                if piece.is_empty() {
                    break;
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn records_split_at_any_byte_open_to_the_same_plaintext() {
        let (mut client, mut server) = pair();
        let mut data = Vec::new();
        for msg in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"", b"second"] {
            data.extend(client_bytes(&mut client, |c| {
                std::io::Write::write_all(&mut c.writer(), msg).unwrap()
            }));
        }
        assert_eq!(
            read_all(&mut server, &data, &[]).unwrap(),
            b"GET / HTTP/1.1\r\n\r\nsecond"
        );
        for cut in 1..data.len() {
            let (mut client, mut server) = pair();
            let data = client_bytes(&mut client, |c| {
                std::io::Write::write_all(&mut c.writer(), b"one").unwrap();
                std::io::Write::write_all(&mut c.writer(), b"two").unwrap();
            });
            let cut = cut.min(data.len() - 1);
            assert_eq!(
                read_all(&mut server, &data, &[cut]).unwrap(),
                b"onetwo",
                "cut {cut}"
            );
        }
    }

    #[test]
    fn sealed_records_read_back_in_order_at_most_16_kib_each() {
        let (mut client, mut server) = pair();
        let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        server
            .seal(OutboundChunks::new(&[b"head ", b"body"]), &mut wire)
            .unwrap();
        server.seal((&big[..]).into(), &mut wire).unwrap();
        let mut rest = &wire[..];
        let mut records = 0;
        while let Some(n) = record_len(rest) {
            assert!(n <= HEADER + MAX_CIPHER);
            rest = &rest[n..];
            records += 1;
        }
        assert_eq!((records, rest.len()), (4, 0), "1 + 3 records");
        let mut got = Vec::new();
        let mut rd = &wire[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client.process_new_packets().unwrap();
            // WouldBlock at the end of what is decrypted.
            std::io::Read::read_to_end(&mut client.reader(), &mut got).unwrap_err();
        }
        let mut want = b"head body".to_vec();
        want.extend_from_slice(&big);
        assert!(got == want, "{} bytes back of {}", got.len(), want.len());
        // Our close_notify ends the client's reading cleanly.
        let mut alert = Vec::new();
        server
            .seal_alert(AlertDescription::CloseNotify, &mut alert)
            .unwrap();
        client.read_tls(&mut &alert[..]).unwrap();
        assert!(client.process_new_packets().unwrap().peer_has_closed());
    }

    #[test]
    fn a_forged_byte_fails_with_bad_record_mac() {
        let (mut client, mut server) = pair();
        let mut data = client_bytes(&mut client, |c| {
            std::io::Write::write_all(&mut c.writer(), b"ping").unwrap()
        });
        let last = data.len() - 1;
        data[last] ^= 1;
        let e = read_all(&mut server, &data, &[]).unwrap_err();
        assert_eq!(e, Error::DecryptError);
        assert_eq!(alert_for(&e), AlertDescription::BadRecordMac);
    }

    #[test]
    fn close_notify_ends_the_peer_data_and_a_key_update_is_refused() {
        let (mut client, mut server) = pair();
        let mut data = client_bytes(&mut client, |c| {
            std::io::Write::write_all(&mut c.writer(), b"last").unwrap();
            c.send_close_notify();
        });
        assert_eq!(read_all(&mut server, &data, &[]).unwrap(), b"last");
        assert!(server.peer_closed());
        data.truncate(0);

        let (mut client, mut server) = pair();
        let data = client_bytes(&mut client, |c| c.refresh_traffic_keys().unwrap());
        let e = read_all(&mut server, &data, &[]).unwrap_err();
        assert_eq!(alert_for(&e), AlertDescription::UnexpectedMessage, "{e:?}");
    }

    #[test]
    fn a_record_past_the_size_limit_is_refused() {
        let (_, mut server) = pair();
        let mut rec = vec![23, 3, 3, 0x48, 0x01];
        rec.resize(5 + 0x4801, 0);
        let e = read_all(&mut server, &rec, &[]).unwrap_err();
        assert_eq!(e, Error::PeerSentOversizedRecord);
        assert_eq!(alert_for(&e), AlertDescription::RecordOverflow);
    }

    #[test]
    fn garbage_in_any_pieces_fails_without_panicking() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let (_, mut server) = pair();
            let len = (next() % 40_000) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(h) = data.get_mut(..5) {
                // Mostly well-framed application data, with random lengths.
                if next() % 2 == 0 {
                    h[..3].copy_from_slice(&[23, 3, 3]);
                }
            }
            let cuts: Vec<usize> = (0..(next() % 8))
                .map(|_| (next() as usize) % (len + 1))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            // Garbage never opens (a forged tag), and nothing panics.
            assert!(read_all(&mut server, &data, &cuts).map_or(true, |p| p.is_empty()));
        }
    }

    #[test]
    fn record_len_needs_the_whole_header() {
        assert_eq!(record_len(&[23, 3, 3, 0]), None);
        assert_eq!(record_len(&[23, 3, 3, 1, 2]), Some(5 + 258));
    }
}
