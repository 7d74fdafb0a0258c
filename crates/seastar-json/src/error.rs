//! Errors: a parse error fit for a client, and the writer's errors.

use std::fmt;

/// Why a JSON document did not parse into the wanted type: serde's message
/// (which names the position) plus the line and column on their own.
///
/// ```
/// let err = seastar_json::Json::<Vec<u8>>::from_slice(b"[1, 2,").unwrap_err();
/// assert!(err.is_eof());
/// assert_eq!(err.to_string(), "EOF while parsing a value at line 1 column 6");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct JsonError {
    #[from]
    source: serde_json::Error,
}

impl JsonError {
    /// 1-based line of the error (0 if it has no position).
    pub fn line(&self) -> usize {
        self.source.line()
    }

    /// 1-based column of the error (0 if it has no position).
    pub fn column(&self) -> usize {
        self.source.column()
    }

    /// Whether the document was well-formed but had the wrong shape
    /// (a missing field, a string where a number was wanted).
    ///
    /// ```
    /// let err = seastar_json::Json::<u32>::from_slice(b"\"x\"").unwrap_err();
    /// assert!(err.is_data());
    /// ```
    pub fn is_data(&self) -> bool {
        self.source.is_data()
    }

    /// Whether the document is not JSON at all.
    ///
    /// ```
    /// assert!(seastar_json::Json::<u32>::from_slice(b"x").unwrap_err().is_syntax());
    /// ```
    pub fn is_syntax(&self) -> bool {
        self.source.is_syntax()
    }

    /// Whether the document ended early.
    ///
    /// ```
    /// assert!(seastar_json::Json::<u32>::from_slice(b"").unwrap_err().is_eof());
    /// ```
    pub fn is_eof(&self) -> bool {
        self.source.is_eof()
    }

    /// The serde error.
    pub fn inner(&self) -> &serde_json::Error {
        &self.source
    }
}

/// Why a [`JsonWriter`](crate::JsonWriter) call failed.
///
/// ```
/// use seastar_json::{JsonWriter, WriteError};
///
/// seastar_core::block_on(async {
///     let (mut w, body) = JsonWriter::new();
///     drop(body); // the client went away
///     w.begin_array().await.unwrap();
///     w.element(&"x".repeat(100_000)).await.unwrap_err();
/// });
/// ```
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The body was dropped (the client went away): stop producing.
    #[error("the JSON body was dropped")]
    Closed,
    /// A value could not be serialized.
    #[error("cannot serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The calls do not form a document: `end` with nothing open, a
    /// `field` in an array, an `element` in an object, `finish` with
    /// containers still open, or a second top-level value.
    #[error("misplaced JSON writer call: {0}")]
    Misuse(Misuse),
}

/// Which call was out of place; see [`WriteError::Misuse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misuse {
    /// `end` with no open array or object.
    NothingOpen,
    /// `field` inside an array or at the top level.
    FieldOutsideObject,
    /// `element` inside an object.
    ElementInObject,
    /// `finish` with an array or object still open.
    Unfinished,
    /// A second top-level value.
    SecondValue,
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Misuse::NothingOpen => "end() with no open array or object",
            Misuse::FieldOutsideObject => "field() outside an object",
            Misuse::ElementInObject => "element() inside an object",
            Misuse::Unfinished => "finish() with an array or object still open",
            Misuse::SecondValue => "a second top-level value",
        })
    }
}
