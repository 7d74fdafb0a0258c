//! JSON through [`seastar_json`]: [`Json<T>`](Json) as a request body
//! ([`RequestExt::json`](crate::RequestExt::json), [`from_request`]) and as
//! a response, and a [`JsonBody`] (from a [`JsonWriter`])
//! as a streamed response.

use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use seastar_json::{Json, JsonBody, JsonError, JsonWriter};

use crate::body::BodyError;
use crate::response::error;
use crate::{Body, IntoResponse, Request, Response};

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Why a request body was not accepted as JSON; a response in itself.
#[derive(Debug, thiserror::Error)]
pub enum JsonRejection {
    /// No `application/json` (or `+json`) content type: 415.
    #[error("expected request with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// The body could not be read (413 when too large, else 400).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body is not JSON of the wanted shape: 400 naming the serde
    /// error and its line and column.
    #[error("invalid JSON: {0}")]
    Parse(#[from] JsonError),
}

impl IntoResponse for JsonRejection {
    fn into_response(self) -> Response {
        match self {
            JsonRejection::UnsupportedMediaType => {
                error(StatusCode::UNSUPPORTED_MEDIA_TYPE, self.to_string())
            }
            JsonRejection::Body(e) => e.into_response(),
            JsonRejection::Parse(_) => error(StatusCode::BAD_REQUEST, self.to_string()),
        }
    }
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        let mut r = error(self.status(), self.to_string());
        if matches!(self, BodyError::Timeout(_) | BodyError::Hyper(_)) {
            // The rest of the body cannot be trusted or is not coming.
            r.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        r
    }
}

fn is_json(req: &Request) -> bool {
    let Some(ct) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].starts_with("application/")
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Reads `req`'s body as JSON of type `T`.
///
/// ```
/// use seastar_http::json::{Json, from_request};
///
/// #[derive(serde::Deserialize, Debug)]
/// struct New { name: String }
///
/// let req = http::Request::builder()
///     .header("content-type", "application/json")
///     .body(seastar_http::Body::from(r#"{"name": 1}"#))
///     .unwrap();
/// let err = futures::executor::block_on(from_request::<New>(req)).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid JSON: invalid type: integer `1`, expected a string at line 1 column 10"
/// );
/// ```
pub async fn from_request<T: DeserializeOwned>(req: Request) -> Result<Json<T>, JsonRejection> {
    if !is_json(&req) {
        return Err(JsonRejection::UnsupportedMediaType);
    }
    let bytes = req.into_body().to_bytes().await?;
    Ok(Json::from_slice(&bytes)?)
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match self.to_bytes() {
            Ok(b) => {
                let mut r = Response::new(Body::from(b));
                r.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON);
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "response does not serialize");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot serialize: {e}"),
                )
            }
        }
    }
}

impl IntoResponse for JsonBody {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::new(self));
        r.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ct: Option<&str>, body: &'static str) -> Request {
        let mut b = http::Request::builder();
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::from(body)).unwrap()
    }

    fn status_and_body(r: Response) -> (u16, String) {
        let s = r.status().as_u16();
        let b = futures::executor::block_on(r.into_body().to_bytes()).unwrap();
        (s, String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn content_type_must_be_json() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
        ] {
            assert!(is_json(&req(Some(ct), "")), "{ct}");
        }
        for ct in [
            None,
            Some("text/plain"),
            Some("application/jsonx"),
            Some("+json"),
        ] {
            assert!(!is_json(&req(ct, "")), "{ct:?}");
        }
        let r = futures::executor::block_on(from_request::<u8>(req(None, "1"))).unwrap_err();
        assert_eq!(status_and_body(r.into_response()).0, 415);
    }

    #[test]
    fn malformed_json_gets_400_with_position() {
        let r = futures::executor::block_on(from_request::<Vec<u8>>(req(
            Some("application/json"),
            "[1, 2,",
        )))
        .unwrap_err();
        assert_eq!(
            status_and_body(r.into_response()),
            (
                400,
                "invalid JSON: EOF while parsing a value at line 1 column 6\n".into()
            )
        );
    }

    #[test]
    fn json_responses_have_the_json_content_type() {
        let r = Json(serde_json::json!({"a": [1, 2]})).into_response();
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(status_and_body(r), (200, r#"{"a":[1,2]}"#.into()));
    }
}
