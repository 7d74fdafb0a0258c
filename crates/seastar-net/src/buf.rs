//! [`Slice`]: a window into an owned buffer, so that a partial write can be
//! resumed without copying the rest of the buffer.

use seastar_core::io::IoBuf;

/// The bytes `begin..end` of an owned buffer, itself an owned buffer.
///
/// Used by `write_all` to retry the unwritten tail of a buffer after a
/// short write; [`into_inner`](Slice::into_inner) gives the buffer back.
///
/// ```
/// use seastar_core::io::IoBuf;
/// use seastar_net::buf::Slice;
///
/// let s = Slice::new(b"hello world".to_vec(), 6..11);
/// assert_eq!(s.bytes_init(), 5);
/// assert_eq!(s.into_inner(), b"hello world");
/// ```
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B: IoBuf> Slice<B> {
    /// The window `range` of `buf`'s initialised bytes.
    ///
    /// # Panics
    ///
    /// If the range is out of order or past the initialised bytes.
    pub fn new(buf: B, range: std::ops::Range<usize>) -> Slice<B> {
        assert!(
            range.start <= range.end && range.end <= buf.bytes_init(),
            "slice {range:?} out of bounds of a {}-byte buffer",
            buf.bytes_init()
        );
        Slice {
            buf,
            begin: range.start,
            end: range.end,
        }
    }

    /// Offset of the window's start in the buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// The whole buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

// SAFETY: `begin <= end <= buf.bytes_init()` (checked in `new`, and the
// fields are private and never changed), so the window lies inside `buf`'s
// initialised bytes, which by `B: IoBuf` stay put and unchanged while `buf`
// lives, moves included.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr().wrapping_add(self.begin)
    }

    fn bytes_init(&self) -> usize {
        self.end - self.begin
    }
}
