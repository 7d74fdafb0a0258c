//! [`Json<T>`]: a typed JSON value.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::JsonError;

/// A value carried as JSON. `seastar-http` accepts it as a request
/// extractor (`application/json` bodies; a malformed one gets a 400 naming
/// the serde error and its position) and returns it as a response.
///
/// ```
/// use seastar_json::Json;
///
/// let Json(v) = Json::<Vec<u32>>::from_slice(b"[1,2,3]").unwrap();
/// assert_eq!(v, [1, 2, 3]);
/// assert_eq!(&Json(v).to_bytes().unwrap()[..], b"[1,2,3]");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> Json<T> {
    /// Parses `bytes` as one JSON document of type `T` (trailing
    /// whitespace allowed, trailing data not).
    ///
    /// ```
    /// let err = seastar_json::Json::<u8>::from_slice(b"1 2").unwrap_err();
    /// assert_eq!(err.to_string(), "trailing characters at line 1 column 3");
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Self, JsonError> {
        Ok(Json(serde_json::from_slice(bytes)?))
    }
}

impl<T: Serialize> Json<T> {
    /// The compact JSON encoding.
    ///
    /// ```
    /// let b = seastar_json::Json(("a", 1)).to_bytes().unwrap();
    /// assert_eq!(&b[..], br#"["a",1]"#);
    /// ```
    pub fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        let mut out = Vec::with_capacity(128);
        serde_json::to_writer(&mut out, &self.0)?;
        Ok(Bytes::from(out))
    }
}

impl<T> Json<T> {
    /// The value.
    ///
    /// ```
    /// assert_eq!(seastar_json::Json(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(v: T) -> Self {
        Json(v)
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct User {
        id: u32,
        name: String,
    }

    #[test]
    fn parse_errors_name_the_serde_message_and_position() {
        let e = Json::<User>::from_slice(b"{\n  \"id\": 1,\n  \"name\": 5\n}").unwrap_err();
        assert!(e.is_data());
        assert_eq!((e.line(), e.column()), (3, 11));
        assert_eq!(
            e.to_string(),
            "invalid type: integer `5`, expected a string at line 3 column 11"
        );
        let e = Json::<User>::from_slice(br#"{"id": 1}"#).unwrap_err();
        assert_eq!(e.to_string(), "missing field `name` at line 1 column 9");
        let e = Json::<User>::from_slice(b"{\"id\" 1}").unwrap_err();
        assert!(e.is_syntax());
        assert_eq!(e.to_string(), "expected `:` at line 1 column 7");
    }

    #[test]
    fn round_trips_unicode_and_escapes() {
        let v = "é \"quoted\" \u{1F600}\n".to_string();
        let b = Json(&v).to_bytes().unwrap();
        let Json(back) = Json::<String>::from_slice(&b).unwrap();
        assert_eq!(back, v);
        assert_eq!(
            Json::<User>::from_slice(b" {\"id\":2,\"name\":\"a\"} \n")
                .unwrap()
                .0,
            User {
                id: 2,
                name: "a".into()
            }
        );
    }
}
