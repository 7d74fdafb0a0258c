//! Over the wire: tower services mounted on routes (readiness honoured,
//! errors as 500), JSON bodies in and out (415, 400 naming the position),
//! a `JsonWriter` streaming a large array, and redirects.

mod support;

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use seastar_http::json::{Json, JsonWriter};
use seastar_http::{
    Body, BoxError, Client, Redirect, Request, RequestExt, Router, Server, from_service,
    routing::{any, get, post},
};
use support::{Running, exchange, run};

/// Not ready on its first `poll_ready` (it wakes itself), then answers with
/// the number of readiness polls it saw.
#[derive(Clone)]
struct Reluctant {
    polls: Rc<Cell<u32>>,
}

impl tower_service::Service<Request> for Reluctant {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.polls.set(self.polls.get() + 1);
        if self.polls.get() % 2 == 1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let polls = self.polls.get();
        Box::pin(async move {
            let text = format!(
                "{} {} after {polls} polls\n",
                req.method(),
                req.uri().path()
            );
            Ok(http::Response::new(Body::from(text)))
        })
    }
}

#[derive(serde::Deserialize, serde::Serialize)]
struct User {
    name: String,
    age: u32,
}

fn app() -> Router {
    let failing = tower::service_fn(|_req: Request| async {
        Err::<http::Response<Body>, BoxError>("the backend is down".into())
    });
    Router::new()
        .route(
            "/tower/{*rest}",
            any(from_service(Reluctant {
                polls: Rc::new(Cell::new(0)),
            })),
        )
        .route("/failing", get(from_service(failing)))
        .route(
            "/users",
            post(|r: Request| async move {
                let user: User = match r.json().await {
                    Ok(u) => u,
                    Err(rejection) => return Err(rejection),
                };
                Ok((
                    http::StatusCode::CREATED,
                    Json(User {
                        name: user.name.to_uppercase(),
                        age: user.age + 1,
                    }),
                ))
            }),
        )
        .route(
            "/rows",
            get(|_r: Request| async {
                let (mut w, body) = JsonWriter::with_chunk_size(1024);
                seastar_core::spawn_local(async move {
                    w.begin_array().await?;
                    for i in 0..10_000u32 {
                        w.element(&i).await?;
                    }
                    w.end().await?;
                    w.finish().await
                })
                .detach();
                body
            }),
        )
        .route(
            "/old",
            get(|_r: Request| async { Redirect::permanent("/new") }),
        )
}

#[test]
fn a_tower_service_on_a_route_is_polled_ready_before_each_call() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let r = exchange(s.addr, b"DELETE /tower/a/b HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "DELETE /tower/a/b after 2 polls\n")
        );
        // Each request goes to a clone: the count is shared, readiness again.
        let r = exchange(s.addr, b"GET /tower/c HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r.text(), "GET /tower/c after 4 polls\n");
        let r = exchange(s.addr, b"GET /failing HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "the backend is down\n")
        );
        s.stop().await;
    });
}

fn post_users(content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn json_bodies_in_and_out_with_clear_rejections() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let r = exchange(
            s.addr,
            &post_users("application/json", r#"{"name":"ada","age":36}"#),
        )
        .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.text(), r#"{"name":"ADA","age":37}"#);

        let r = exchange(s.addr, &post_users("application/json", r#"{"name":"#)).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (
                400,
                "invalid JSON: EOF while parsing a value at line 1 column 8\n"
            )
        );
        let r = exchange(
            s.addr,
            &post_users("application/json", r#"{"name":"ada","age":-1}"#),
        )
        .await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (
                400,
                "invalid JSON: invalid value: integer `-1`, expected u32 at line 1 column 22\n"
            )
        );

        let r = exchange(s.addr, &post_users("text/plain", "{}")).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (
                415,
                "expected request with `Content-Type: application/json`\n"
            )
        );
        s.stop().await;
    });
}

#[test]
fn a_json_writer_streams_a_large_array_chunked() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let resp = Client::new().get(&s.url("/rows")).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["transfer-encoding"], "chunked");
        let mut body = resp.into_body();
        let mut frames = 0;
        let mut all = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                frames += 1;
                all.extend_from_slice(&data);
            }
        }
        let rows: Vec<u32> = serde_json::from_slice(&all).unwrap();
        assert_eq!(rows, (0..10_000).collect::<Vec<_>>());
        assert!(frames > 10, "streamed in {frames} frames");
        s.stop().await;
    });
}

#[test]
fn a_redirect_names_its_target() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let r = exchange(s.addr, b"GET /old HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r.status, 308);
        assert_eq!(r.header("location"), Some("/new"));
        s.stop().await;
    });
}
