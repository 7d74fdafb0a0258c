//! [`JsonWriter`]: streams one large JSON array or object into an HTTP body.
//!
//! The writer serializes values into a buffer; each time the buffer passes
//! the chunk size (16 KiB by default) it becomes one [`Bytes`] frame of the
//! [`JsonBody`] it was created with. At most four frames wait in the body:
//! past that the writer's calls wait until the connection has taken them,
//! so a slow client slows the producer instead of growing memory. If the
//! body is dropped (the client went away) the next flush fails with
//! [`WriteError::Closed`]; if the writer is dropped before
//! [`finish`](JsonWriter::finish), the body ends with an error, so the
//! client sees a broken response rather than a truncated document that
//! looks complete.
//!
//! Commas, colons and nesting are the writer's job; calls that would not
//! form one well-formed document fail with [`WriteError::Misuse`].
//! Everything is shard-local (`Rc`, no atomics): produce on the shard that
//! serves the response.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use serde::Serialize;

use crate::WriteError;
use crate::error::Misuse;

/// Default size of one body frame.
pub const DEFAULT_CHUNK: usize = 16 * 1024;
/// Frames that may wait in the body before the writer waits.
const MAX_QUEUED: usize = 4;

#[derive(Default)]
struct Shared {
    queue: VecDeque<Bytes>,
    finished: bool,
    writer_gone: bool,
    body_gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

#[derive(Debug, Clone, Copy)]
enum Open {
    Array { first: bool },
    Object { first: bool, key_pending: bool },
}

/// Streams a JSON document into a [`JsonBody`], chunk by chunk.
///
/// ```
/// use http_body_util::BodyExt;
/// use seastar_json::JsonWriter;
///
/// seastar_core::block_on(async {
///     let (mut w, body) = JsonWriter::new();
///     let producer = seastar_core::spawn_local(async move {
///         w.begin_object().await?;
///         w.field("name", &"rows").await?;
///         w.key("rows")?;
///         w.begin_array().await?;
///         for i in 0..3 {
///             w.element(&i).await?;
///         }
///         w.end().await?; // the array
///         w.end().await?; // the object
///         w.finish().await
///     });
///     let text = body.collect().await.unwrap().to_bytes();
///     assert_eq!(&text[..], br#"{"name":"rows","rows":[0,1,2]}"#);
///     producer.await.unwrap().unwrap();
/// });
/// ```
pub struct JsonWriter {
    shared: Rc<RefCell<Shared>>,
    buf: Vec<u8>,
    stack: Vec<Open>,
    wrote_top: bool,
    chunk: usize,
    finished: bool,
}

impl fmt::Debug for JsonWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonWriter")
            .field("buffered", &self.buf.len())
            .field("depth", &self.stack.len())
            .finish()
    }
}

impl JsonWriter {
    /// A writer and the body it feeds, with 16 KiB frames.
    ///
    /// ```
    /// let (_writer, body) = seastar_json::JsonWriter::new();
    /// # drop(body);
    /// ```
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (JsonWriter, JsonBody) {
        Self::with_chunk_size(DEFAULT_CHUNK)
    }

    /// A writer whose body frames are about `chunk` bytes (at least 1).
    ///
    /// ```
    /// let (_writer, _body) = seastar_json::JsonWriter::with_chunk_size(64 * 1024);
    /// ```
    pub fn with_chunk_size(chunk: usize) -> (JsonWriter, JsonBody) {
        let shared = Rc::new(RefCell::new(Shared::default()));
        let chunk = chunk.max(1);
        let w = JsonWriter {
            shared: shared.clone(),
            buf: Vec::with_capacity(chunk + chunk / 4),
            stack: Vec::new(),
            wrote_top: false,
            chunk,
            finished: false,
        };
        (w, JsonBody { shared })
    }

    /// Opens an array (as the document, an array element or a field's value).
    pub async fn begin_array(&mut self) -> Result<(), WriteError> {
        self.value_prefix()?;
        self.buf.push(b'[');
        self.stack.push(Open::Array { first: true });
        self.maybe_flush().await
    }

    /// Opens an object (as the document, an array element or a field's value).
    pub async fn begin_object(&mut self) -> Result<(), WriteError> {
        self.value_prefix()?;
        self.buf.push(b'{');
        self.stack.push(Open::Object {
            first: true,
            key_pending: false,
        });
        self.maybe_flush().await
    }

    /// Writes one value: an element of the open array, the value of the
    /// key just written with [`key`](Self::key), or the whole document.
    pub async fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        self.value_prefix()?;
        let mark = self.buf.len();
        if let Err(e) = serde_json::to_writer(&mut self.buf, value) {
            self.buf.truncate(mark);
            return Err(e.into());
        }
        self.maybe_flush().await
    }

    /// Writes the key of the next member of the open object; follow it
    /// with one value ([`element`](Self::element), [`begin_array`](Self::begin_array)
    /// or [`begin_object`](Self::begin_object)).
    pub fn key(&mut self, key: &str) -> Result<(), WriteError> {
        match self.stack.last_mut() {
            Some(Open::Object { first, key_pending }) if !*key_pending => {
                if !*first {
                    self.buf.push(b',');
                }
                *first = false;
                *key_pending = true;
            }
            _ => return Err(WriteError::Misuse(Misuse::FieldOutsideObject)),
        }
        serde_json::to_writer(&mut self.buf, key)?;
        self.buf.push(b':');
        Ok(())
    }

    /// Writes one member `"key": value` of the open object.
    pub async fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), WriteError> {
        self.key(key)?;
        self.element(value).await
    }

    /// Closes the innermost open array or object.
    pub async fn end(&mut self) -> Result<(), WriteError> {
        match self.stack.pop() {
            Some(Open::Array { .. }) => self.buf.push(b']'),
            Some(Open::Object { key_pending, .. }) => {
                if key_pending {
                    return Err(WriteError::Misuse(Misuse::Unfinished));
                }
                self.buf.push(b'}')
            }
            None => return Err(WriteError::Misuse(Misuse::NothingOpen)),
        }
        self.maybe_flush().await
    }

    /// Sends what is buffered and ends the body; fails if an array or
    /// object is still open.
    pub async fn finish(mut self) -> Result<(), WriteError> {
        if !self.stack.is_empty() {
            return Err(WriteError::Misuse(Misuse::Unfinished));
        }
        self.flush().await?;
        self.finished = true;
        let mut s = self.shared.borrow_mut();
        s.finished = true;
        if let Some(w) = s.reader.take() {
            w.wake();
        }
        Ok(())
    }

    fn value_prefix(&mut self) -> Result<(), WriteError> {
        match self.stack.last_mut() {
            None => {
                if self.wrote_top {
                    return Err(WriteError::Misuse(Misuse::SecondValue));
                }
                self.wrote_top = true;
            }
            Some(Open::Array { first }) => {
                if !*first {
                    self.buf.push(b',');
                }
                *first = false;
            }
            Some(Open::Object { key_pending, .. }) => {
                if !*key_pending {
                    return Err(WriteError::Misuse(Misuse::ElementInObject));
                }
                *key_pending = false;
            }
        }
        Ok(())
    }

    async fn maybe_flush(&mut self) -> Result<(), WriteError> {
        if self.buf.len() >= self.chunk {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Hands the buffered bytes to the body, waiting while it is full.
    async fn flush(&mut self) -> Result<(), WriteError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        poll_fn(|cx| {
            let mut s = self.shared.borrow_mut();
            if s.body_gone {
                return Poll::Ready(Err(WriteError::Closed));
            }
            if s.queue.len() >= MAX_QUEUED {
                s.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        let frame = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk + self.chunk / 4),
        ));
        let mut s = self.shared.borrow_mut();
        s.queue.push_back(frame);
        if let Some(w) = s.reader.take() {
            w.wake();
        }
        Ok(())
    }
}

impl Drop for JsonWriter {
    fn drop(&mut self) {
        if !self.finished {
            let mut s = self.shared.borrow_mut();
            s.writer_gone = true;
            if let Some(w) = s.reader.take() {
                w.wake();
            }
        }
    }
}

/// The body a [`JsonWriter`] feeds: an [`http_body::Body`] of [`Bytes`]
/// frames. It ends when the writer calls [`finish`](JsonWriter::finish)
/// and fails with [`Aborted`] if the writer is dropped before that.
pub struct JsonBody {
    shared: Rc<RefCell<Shared>>,
}

impl fmt::Debug for JsonBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonBody")
            .field("queued", &self.shared.borrow().queue.len())
            .finish()
    }
}

/// The [`JsonBody`]'s error: its writer was dropped before `finish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JSON writer was dropped before finish()")]
pub struct Aborted;

impl Body for JsonBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        let mut s = self.shared.borrow_mut();
        if let Some(b) = s.queue.pop_front() {
            if let Some(w) = s.writer.take() {
                w.wake();
            }
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        if s.finished {
            return Poll::Ready(None);
        }
        if s.writer_gone {
            return Poll::Ready(Some(Err(Aborted)));
        }
        s.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let s = self.shared.borrow();
        s.finished && s.queue.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for JsonBody {
    fn drop(&mut self) {
        let mut s = self.shared.borrow_mut();
        s.body_gone = true;
        s.queue.clear();
        if let Some(w) = s.writer.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[seastar_core::test]
    async fn large_array_arrives_in_bounded_chunks_and_parses() {
        let (mut w, mut body) = JsonWriter::with_chunk_size(1024);
        let producer = seastar_core::spawn_local(async move {
            w.begin_array().await?;
            for i in 0..10_000u32 {
                w.element(&(i, "row")).await?;
            }
            w.end().await?;
            w.finish().await
        });
        let mut all = Vec::new();
        let mut frames = 0;
        while let Some(f) = body.frame().await {
            let data = f.unwrap().into_data().unwrap();
            // A frame is one chunk plus at most one value past it.
            assert!(data.len() < 1024 + 64, "frame of {}", data.len());
            all.extend_from_slice(&data);
            frames += 1;
        }
        producer.await.unwrap().unwrap();
        assert!(frames > 100);
        let v: Vec<(u32, String)> = serde_json::from_slice(&all).unwrap();
        assert_eq!(v.len(), 10_000);
        assert_eq!(v[9_999], (9_999, "row".to_string()));
    }

    #[seastar_core::test]
    async fn writer_waits_for_a_slow_body() {
        let (mut w, mut body) = JsonWriter::with_chunk_size(10);
        let written = Rc::new(std::cell::Cell::new(0));
        let count = written.clone();
        let producer = seastar_core::spawn_local(async move {
            w.begin_array().await?;
            for i in 0..100 {
                w.element(&"0123456789").await?;
                count.set(i + 1);
            }
            w.end().await?;
            w.finish().await
        });
        for _ in 0..10 {
            seastar_core::yield_now().await;
        }
        // Four frames queued, the writer blocked on the fifth.
        assert_eq!(written.get(), 4);
        let mut n = 0;
        while let Some(f) = body.frame().await {
            n += f.unwrap().into_data().unwrap().len();
        }
        producer.await.unwrap().unwrap();
        assert_eq!(n, 2 + 100 * 12 + 99);
    }

    #[seastar_core::test]
    async fn dropping_the_writer_early_fails_the_body() {
        let (mut w, body) = JsonWriter::new();
        w.begin_array().await.unwrap();
        w.element(&1).await.unwrap();
        drop(w);
        assert_eq!(body.collect().await.unwrap_err(), Aborted);
    }

    #[seastar_core::test]
    async fn dropped_body_stops_the_writer() {
        let (mut w, body) = JsonWriter::with_chunk_size(8);
        drop(body);
        w.begin_array().await.unwrap();
        let err = w.element(&"long enough").await.unwrap_err();
        assert!(matches!(err, WriteError::Closed));
    }

    #[seastar_core::test]
    async fn misplaced_calls_are_refused() {
        let (mut w, _body) = JsonWriter::new();
        assert!(matches!(
            w.end().await,
            Err(WriteError::Misuse(Misuse::NothingOpen))
        ));
        assert!(matches!(
            w.key("k"),
            Err(WriteError::Misuse(Misuse::FieldOutsideObject))
        ));
        w.begin_object().await.unwrap();
        assert!(matches!(
            w.element(&1).await,
            Err(WriteError::Misuse(Misuse::ElementInObject))
        ));
        w.key("k").unwrap();
        assert!(matches!(
            w.key("again"),
            Err(WriteError::Misuse(Misuse::FieldOutsideObject))
        ));
        w.element(&[1, 2]).await.unwrap();
        w.end().await.unwrap();
        assert!(matches!(
            w.element(&1).await,
            Err(WriteError::Misuse(Misuse::SecondValue))
        ));
        w.finish().await.unwrap();

        let (mut w, _body) = JsonWriter::new();
        w.begin_array().await.unwrap();
        assert!(matches!(
            w.finish().await,
            Err(WriteError::Misuse(Misuse::Unfinished))
        ));
    }

    #[seastar_core::test]
    async fn nested_documents_are_well_formed() {
        let (mut w, body) = JsonWriter::new();
        seastar_core::spawn_local(async move {
            w.begin_object().await.unwrap();
            w.key("a").unwrap();
            w.begin_array().await.unwrap();
            w.begin_object().await.unwrap();
            w.field("x", &1).await.unwrap();
            w.field("y", "two").await.unwrap();
            w.end().await.unwrap();
            w.element(&serde_json::Value::Null).await.unwrap();
            w.end().await.unwrap();
            w.key("b\"q").unwrap();
            w.begin_object().await.unwrap();
            w.end().await.unwrap();
            w.end().await.unwrap();
            w.finish().await.unwrap();
        })
        .detach();
        let b = body.collect().await.unwrap().to_bytes();
        assert_eq!(&b[..], br#"{"a":[{"x":1,"y":"two"},null],"b\"q":{}}"#);
    }
}
