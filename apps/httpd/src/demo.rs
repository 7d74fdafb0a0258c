//! The built-in demo site, served when no `--root` is given.

use seastar_http::json::JsonWriter;
use seastar_http::routing::get;
use seastar_http::{IntoResponse, Json, Redirect, Request, RequestExt, Response, Router};

const INDEX: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>seastar-rs httpd</title><link rel="stylesheet" href="/style.css"></head>
<body>
<h1>seastar-rs httpd</h1>
<p>A thread-per-core HTTP server: one shard per core, hyper on each shard's reactor, no locks between shards.</p>
<ul>
<li><a href="/">/</a>: the hello route</li>
<li><a href="/api/shard">/api/shard</a>: which shard answered (JSON)</li>
<li><a href="/api/numbers?n=1000">/api/numbers?n=1000</a>: a JSON array streamed in chunks</li>
<li><code>curl --data-binary @file http://HOST/echo</code>: the body streamed back</li>
</ul>
<p>Start with <code>--root DIR</code> to serve a directory instead of this page.</p>
</body>
</html>
"#;

const STYLE: &str = "body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }\ncode { background: #eee; padding: 0 .2em; }\n";

#[derive(serde::Serialize)]
struct ShardInfo {
    shard: usize,
    shards: usize,
    backend: String,
}

fn with_type(body: &'static str, ty: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ty),
    );
    r
}

/// Adds the demo pages to `r`.
pub fn routes(r: Router) -> Router {
    r.route(
        "/index.html",
        get(|_r: Request| async { with_type(INDEX, "text/html; charset=utf-8") }),
    )
    .route(
        "/style.css",
        get(|_r: Request| async { with_type(STYLE, "text/css; charset=utf-8") }),
    )
    .route("/demo", get(Redirect::to("/index.html")))
    .route(
        "/api/shard",
        get(|_r: Request| async {
            Json(ShardInfo {
                shard: seastar_core::shard_id(),
                shards: seastar_core::shard_count(),
                backend: seastar_core::runtime::backend().to_string(),
            })
        }),
    )
    .route("/api/numbers", get(numbers))
}

/// `[0, 1, ... n-1]` as a streamed JSON array (`n` at most 10 million).
async fn numbers(req: Request) -> Response {
    let n: u64 = match req.query().get("n").map(str::parse) {
        None => 100,
        Some(Ok(n)) if n <= 10_000_000 => n,
        _ => {
            return seastar_http::response::error(
                http::StatusCode::BAD_REQUEST,
                "n must be a number up to 10000000",
            );
        }
    };
    let (mut w, body) = JsonWriter::new();
    seastar_core::spawn_local(async move {
        let produce = async {
            w.begin_array().await?;
            for i in 0..n {
                w.element(&i).await?;
            }
            w.end().await?;
            w.finish().await
        };
        if let Err(e) = produce.await {
            tracing::debug!(error = %e, "numbers stream ended early");
        }
    })
    .detach();
    body.into_response()
}
