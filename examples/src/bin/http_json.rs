//! Chapter 9: an HTTP service with JSON.
use http_body_util::BodyExt;
use seastar_core::{Runtime, spawn_local, sync::AbortSource};
use seastar_http::{
    Client, Json, Request, RequestExt, Router, Server,
    routing::{get, post},
};
use seastar_net::{ListenOptions, TcpListener};

#[derive(serde::Deserialize, serde::Serialize)]
struct Greeting {
    name: String,
}

fn main() {
    let router = Router::new()
        .route(
            "/hello/{name}",
            get(
                |r: Request| async move { format!("Hello, {}!\n", r.param("name").unwrap_or("?")) },
            ),
        )
        .route(
            "/greet",
            post(|r: Request| async move {
                r.json::<Greeting>().await.map(|g| {
                    Json(Greeting {
                        name: g.name.to_uppercase(),
                    })
                })
            }),
        );
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async move {
            let listener =
                TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
                    .await
                    .unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = AbortSource::new();
            let server = spawn_local(Server::new(router).serve(listener, stop.aborted()));

            let client = Client::new();
            let resp = client
                .get(&format!("http://{addr}/hello/seastar"))
                .await
                .unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            print!("GET /hello/seastar: {}", String::from_utf8_lossy(&body));

            let req = http::Request::post(format!("http://{addr}/greet"))
                .header("content-type", "application/json")
                .body(r#"{"name":"ada"}"#.into())
                .unwrap();
            let resp = client.request(req).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            println!("POST /greet: {status} {}", String::from_utf8_lossy(&body));

            stop.request_abort(); // graceful stop: finish in-flight requests, then return
            server.await.unwrap();
        });
}
