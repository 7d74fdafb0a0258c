//! Prometheus endpoint (feature `prometheus`): every shard's metrics in the
//! text exposition format 0.0.4.
//!
//! [`handler`] gathers the metrics of every shard by message passing
//! ([`seastar_core::metrics::gather`]: each shard reads only its own
//! registry) and renders them with a `shard` label
//! ([`seastar_core::metrics::prometheus::render`]). Mount it on any router,
//! usually at `/metrics` ([`route`]); a scrape costs one round trip to each
//! shard, the rendering runs on the shard that took the request.
//!
//! ```
//! use seastar_http::{Router, prometheus};
//!
//! let router = prometheus::route(Router::new());
//! # let _ = router;
//! ```

use http::{HeaderValue, StatusCode, header};
use seastar_core::metrics::prometheus::{CONTENT_TYPE, text};

use crate::routing::get;
use crate::{IntoResponse, Request, Response, Router};

/// Answers with every shard's metrics (`500` if a shard could not be
/// reached, e.g. while stopping).
pub async fn handler(_req: Request) -> Response {
    match text().await {
        Ok(body) => {
            let mut r = body.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "prometheus: could not gather metrics");
            crate::response::error(StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable")
        }
    }
}

/// `router` with [`handler`] at `GET /metrics`.
pub fn route(router: Router) -> Router {
    router.route("/metrics", get(handler))
}
