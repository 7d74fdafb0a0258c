//! [`Out`]: a connection's reply bytes, small ones copied, large values
//! shared with the store.
//!
//! Reply lines and small values are appended to one buffer, as encoders
//! always did (`Out` dereferences to its [`BytesMut`], so every
//! [`encode`](super::encode) function writes into it). A value block of
//! [`BY_REF_MIN`] bytes or more is not copied: the buffer so far is sealed
//! into a segment and the item's own [`Bytes`] (a reference count bump)
//! follows it. A reply naming one large item N times thus holds N small
//! headers and N references, and goes to the socket as iovecs.
//!
//! ```
//! use bytes::Bytes;
//! use memcached::protocol::Out;
//! let big = Bytes::from(vec![b'x'; 4096]);
//! let mut out = Out::new();
//! out.extend_from_slice(b"VALUE k 0 4096\r\n");
//! out.put_shared(&big);
//! out.extend_from_slice(b"\r\nEND\r\n");
//! assert_eq!(out.len(), 16 + 4096 + 7);
//! let chunks = out.take_chunks();
//! assert_eq!(chunks.len(), 3);
//! assert_eq!(chunks[1].as_ptr(), big.as_ptr(), "shared, not copied");
//! assert!(out.is_empty());
//! ```

use std::ops::{Deref, DerefMut};

use bytes::{BufMut, Bytes, BytesMut};

use super::encode;
use crate::store::ValueBlock;

/// Values at least this long are referenced rather than copied (below it
/// a copy costs less than an iovec and a reference count).
pub const BY_REF_MIN: usize = 2048;

/// Reply bytes in order: sealed segments, then the open buffer (see the
/// module doc).
#[derive(Debug, Default)]
pub struct Out {
    sealed: Vec<Bytes>,
    sealed_len: usize,
    buf: BytesMut,
}

impl Out {
    /// An empty output.
    pub fn new() -> Self {
        Out::default()
    }

    /// An empty output whose buffer has room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Out {
            sealed: Vec::new(),
            sealed_len: 0,
            buf: BytesMut::with_capacity(n),
        }
    }

    /// Total bytes, shared ones included.
    #[inline]
    pub fn len(&self) -> usize {
        self.sealed_len + self.buf.len()
    }

    /// True when there is nothing to send.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when everything is in the open buffer (nothing shared): the
    /// connection sends it with one plain write.
    #[inline]
    pub fn is_flat(&self) -> bool {
        self.sealed.is_empty()
    }

    /// Drops every byte; the open buffer keeps its capacity.
    pub fn clear(&mut self) {
        self.sealed.clear();
        self.sealed_len = 0;
        self.buf.clear();
    }

    /// The open buffer (every byte when [`is_flat`](Self::is_flat)).
    pub fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    fn seal(&mut self) {
        if !self.buf.is_empty() {
            let b = self.buf.split().freeze();
            self.sealed_len += b.len();
            self.sealed.push(b);
        }
    }

    /// Appends `b`: by reference when it is at least [`BY_REF_MIN`] long,
    /// copied otherwise.
    pub fn put_shared(&mut self, b: &Bytes) {
        if b.len() < BY_REF_MIN {
            self.buf.extend_from_slice(b);
        } else {
            self.seal();
            self.sealed_len += b.len();
            self.sealed.push(b.clone());
        }
    }

    /// Appends a stored item's `VALUE` block, with ` <cas>` on its line
    /// when `cas` is given: the bytes of [`encode::value`], the data by
    /// reference when large.
    pub fn put_block(&mut self, b: &ValueBlock<'_>, cas: Option<u64>) {
        if b.bytes.len() < BY_REF_MIN {
            encode::stored_value(&mut self.buf, b.bytes, b.line_end, cas);
            return;
        }
        match cas {
            None => self.put_shared(b.bytes),
            Some(cas) => {
                self.buf.extend_from_slice(&b.bytes[..b.line_end]);
                self.buf.put_u8(b' ');
                encode::put_u64(&mut self.buf, cas);
                self.put_shared(&b.bytes.slice(b.line_end..));
            }
        }
    }

    /// Appends bytes `start..end` of `src` (shared parts stay shared).
    pub fn extend_from_range(&mut self, src: &Out, start: usize, end: usize) {
        if start >= end {
            return;
        }
        let mut at = 0;
        for seg in &src.sealed {
            let (s, e) = (at, at + seg.len());
            at = e;
            if e <= start {
                continue;
            }
            if s >= end {
                return;
            }
            let (a, b) = (start.max(s) - s, end.min(e) - s);
            if b - a >= BY_REF_MIN {
                self.put_shared(&seg.slice(a..b));
            } else {
                self.buf.extend_from_slice(&seg[a..b]);
            }
        }
        let (a, b) = (
            start.max(at) - at,
            end.min(at + src.buf.len()).saturating_sub(at),
        );
        if a < b {
            self.buf.extend_from_slice(&src.buf[a..b]);
        }
    }

    /// Takes every byte out as chunks in order (the open buffer last),
    /// leaving this empty.
    pub fn take_chunks(&mut self) -> Vec<Bytes> {
        self.seal();
        self.sealed_len = 0;
        std::mem::take(&mut self.sealed)
    }

    /// Every byte, copied into one vector (tests, UDP framing).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for s in &self.sealed {
            v.extend_from_slice(s);
        }
        v.extend_from_slice(&self.buf);
        v
    }

    /// Cuts the output back to its first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len() {
            return;
        }
        if len >= self.sealed_len {
            self.buf.truncate(len - self.sealed_len);
            return;
        }
        self.buf.clear();
        let mut at = 0;
        let mut keep = 0;
        for seg in &mut self.sealed {
            if at + seg.len() >= len {
                seg.truncate(len - at);
                keep += 1;
                break;
            }
            at += seg.len();
            keep += 1;
        }
        self.sealed.truncate(keep);
        self.sealed_len = len;
    }
}

/// The open buffer: encoders append to it.
impl Deref for Out {
    type Target = BytesMut;
    fn deref(&self) -> &BytesMut {
        &self.buf
    }
}

/// The open buffer: encoders append to it.
impl DerefMut for Out {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(b: u8, n: usize) -> Bytes {
        Bytes::from(vec![b; n])
    }

    /// The bytes of an output built of copied and shared parts, and of
    /// every sub-range of it copied into another, are the concatenation.
    #[test]
    fn ranges_keep_order_and_content() {
        let (a, b) = (big(b'a', BY_REF_MIN), big(b'b', BY_REF_MIN + 5));
        let mut o = Out::new();
        o.extend_from_slice(b"head");
        o.put_shared(&a);
        o.extend_from_slice(b"mid");
        o.put_shared(&b);
        o.put_shared(&Bytes::from_static(b"small"));
        o.extend_from_slice(b"tail");
        let flat = o.to_vec();
        assert_eq!(flat.len(), o.len());
        assert!(!o.is_flat());
        for (s, e) in [
            (0, flat.len()),
            (0, 4),
            (2, 9),
            (4, 4 + BY_REF_MIN),
            (3, flat.len() - 1),
            (10, 10 + BY_REF_MIN + 3),
            (flat.len() - 6, flat.len()),
        ] {
            let mut c = Out::new();
            c.extend_from_slice(b"x");
            c.extend_from_range(&o, s, e);
            assert_eq!(c.to_vec()[1..], flat[s..e], "{s}..{e}");
            for cut in [0, 1, 3, c.len() / 2, c.len()] {
                let mut t = Out::new();
                t.extend_from_range(&c, 0, c.len());
                let whole = t.to_vec();
                t.truncate(cut);
                assert_eq!(t.len(), cut);
                assert_eq!(t.to_vec(), whole[..cut]);
            }
        }
        let chunks = o.take_chunks();
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        assert_eq!(joined, flat);
        assert_eq!(chunks[1].as_ptr(), a.as_ptr());
        assert!(o.is_empty() && o.is_flat());
    }

    /// A large block goes out by reference, with or without its CAS, and
    /// reads exactly as `encode::value`.
    #[test]
    fn blocks_match_the_encoder_and_share_large_values() {
        for n in [1, BY_REF_MIN, 10 * BY_REF_MIN] {
            let value = vec![b'v'; n];
            let (block, data_at) = encode::value_block(b"key", 9, &value);
            let bytes = Bytes::from(block);
            let vb = ValueBlock {
                bytes: &bytes,
                line_end: data_at - 2,
                cas: 7,
            };
            for cas in [None, Some(7)] {
                let mut want = BytesMut::new();
                encode::value(&mut want, b"key", 9, &value, cas);
                let mut o = Out::new();
                o.put_block(&vb, cas);
                assert_eq!(o.to_vec(), want);
                assert_eq!(o.is_flat(), bytes.len() < BY_REF_MIN);
            }
        }
    }
}
