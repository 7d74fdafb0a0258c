//! The admin routes: the dashboard page, the OpenAPI description and the
//! read-only JSON endpoints, each `/api/*` one behind the bearer token
//! when one is set.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use http::{HeaderValue, StatusCode, header};
use seastar_core::shard_local::{self, SlotKey};
use seastar_core::smp::SubmitError;
use seastar_core::sync::Semaphore;
use serde_json::Value;

use super::config::Config;
use super::views;
use crate::routing::{MethodRouter, get};
use crate::{Handler, IntoResponse, Request, Response, Router};

/// The dashboard: one static page, its script and styles inline.
pub const DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// The OpenAPI 3 description of the API.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// The API's paths, as `/api/v1/openapi.json` lists them.
pub const PATHS: &[&str] = &[
    "/api/v1/runtime",
    "/api/v1/shards",
    "/api/v1/groups",
    "/api/v1/connections",
    "/api/v1/io",
    "/api/v1/metrics",
    "/api/v1/openapi.json",
];

/// API answers a shard gathers at once: each asks every shard (one
/// message per shard and request), so a client flooding the API may cost
/// the app's shards at most this many gathers in flight per admin shard;
/// further requests wait their turn (bounded by the admin server's
/// connection cap, one request at a time per connection).
pub const MAX_GATHERS_IN_FLIGHT: usize = 4;

/// The admin router for `cfg`, on the calling shard.
pub(crate) fn router(cfg: Arc<Config>) -> Router {
    let gathers = Semaphore::new(MAX_GATHERS_IN_FLIGHT);
    let cfg = &(cfg, gathers);
    Router::new()
        .route("/", get(dashboard))
        .route("/index.html", get(dashboard))
        .route(
            "/api/v1/openapi.json",
            api(cfg, |_| async { Ok(openapi()) }),
        )
        .route(
            "/api/v1/runtime",
            api(cfg, |c| async move { views::runtime(&c).await }),
        )
        .route(
            "/api/v1/shards",
            api(cfg, |c| async move { views::shards(&c).await }),
        )
        .route("/api/v1/groups", api(cfg, |_| views::groups()))
        .route("/api/v1/connections", api(cfg, |_| views::connections()))
        .route(
            "/api/v1/io",
            api(cfg, |c| async move { views::io(&c).await }),
        )
        .route("/api/v1/metrics", api(cfg, |_| views::metrics()))
}

/// [`router`], counting the requests it answered (whatever the answer:
/// 404 and 405 included) in the same step as the server records them.
pub(crate) fn service(cfg: Arc<Config>) -> impl Handler {
    let router = Rc::new(router(cfg));
    move |req: Request| {
        let answer = router.call(req);
        async move {
            let r = answer.await;
            count();
            r
        }
    }
}

/// Requests this shard's admin handlers answered: the sampler takes them
/// out of the app's request count (the admin server is a seastar-http
/// server too, and records into the same metrics, which are per runtime:
/// so is this count, in the shard's slots).
#[derive(Default)]
struct Served(Cell<u64>);

/// Admin requests the calling shard answered so far (in this runtime).
pub(crate) fn served() -> u64 {
    shard_local::get::<Served>(SlotKey::SINGLETON).map_or(0, |s| s.0.get())
}

fn count() {
    let s = shard_local::get_or_init(SlotKey::SINGLETON, Served::default);
    s.0.set(s.0.get() + 1);
}

fn openapi() -> Value {
    serde_json::from_str(OPENAPI_JSON).unwrap_or(Value::Null)
}

async fn dashboard(_req: Request) -> Response {
    with_headers(DASHBOARD_HTML.into_response(), "text/html; charset=utf-8")
}

/// A `GET` route answering `f`'s JSON, after the token check, with one
/// of the shard's [`MAX_GATHERS_IN_FLIGHT`] units.
fn api<F, Fut>((cfg, gathers): &(Arc<Config>, Semaphore), f: F) -> MethodRouter
where
    F: Fn(Arc<Config>) -> Fut + Clone + 'static,
    Fut: Future<Output = Result<Value, SubmitError>> + 'static,
{
    let (cfg, gathers) = (cfg.clone(), gathers.clone());
    get(move |req: Request| {
        let cfg = cfg.clone();
        let f = f.clone();
        let gathers = gathers.clone();
        async move {
            if !authorized(cfg.token.as_deref(), &req) {
                let mut r =
                    crate::response::error(StatusCode::UNAUTHORIZED, "a bearer token is required");
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
            let Ok(_units) = gathers.acquire(1).await else {
                return crate::response::error(StatusCode::SERVICE_UNAVAILABLE, "stopping");
            };
            match f(cfg).await {
                Ok(v) => {
                    let body = serde_json::to_vec(&v).unwrap_or_default();
                    with_headers(body.into_response(), "application/json")
                }
                Err(e) => {
                    tracing::warn!(shard = seastar_core::shard_id(), error = %e, "admin: a shard did not answer");
                    crate::response::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "a shard did not answer",
                    )
                }
            }
        }
    })
}

fn with_headers(mut r: Response, content_type: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether `req` may read the API: no token set, or
/// `Authorization: Bearer <token>` matches (compared in constant time).
pub(crate) fn authorized(token: Option<&str>, req: &Request) -> bool {
    let Some(token) = token else {
        return true;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    given.is_some_and(|g| same(g.as_bytes(), token.as_bytes()))
}

/// Constant-time equality (in the length of `b`).
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, y) in b.iter().enumerate() {
        diff |= a.get(i).copied().unwrap_or(!*y) ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri("/api/v1/runtime");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(crate::Body::empty()).unwrap()
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        assert!(authorized(None, &req(None)));
        assert!(authorized(Some("abc"), &req(Some("Bearer abc"))));
        assert!(!authorized(Some("abc"), &req(None)));
        assert!(!authorized(Some("abc"), &req(Some("Bearer ab"))));
        assert!(!authorized(Some("abc"), &req(Some("Bearer abcd"))));
        assert!(!authorized(Some("abc"), &req(Some("Basic abc"))));
        assert!(!authorized(Some("abc"), &req(Some("Bearer abd"))));
    }

    #[test]
    fn the_description_parses_and_lists_every_path() {
        let d: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert!(d["openapi"].as_str().unwrap().starts_with("3."));
        let paths = d["paths"].as_object().unwrap();
        let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
        listed.sort_unstable();
        let mut ours = PATHS.to_vec();
        ours.sort_unstable();
        assert_eq!(listed, ours);
    }
}
