//! The Prometheus endpoint over a real socket, metrics from two shards.
#![cfg(feature = "prometheus")]

use http_body_util::BodyExt;
use seastar_core::metrics::facade::counter;
use seastar_core::metrics::prometheus::parse;
use seastar_core::sync::AbortSource;
use seastar_core::{Runtime, shard_id, smp, spawn_local};
use seastar_http::{Client, Router, Server, prometheus};
use seastar_net::{ListenOptions, TcpListener};

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn metrics_endpoint_serves_every_shard_once() {
    // A port for shard 0 alone (a fixed port binds only the calling shard).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, ctype, body) = Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .pin(false)
        .build()
        .unwrap()
        .run(async move {
            smp::invoke_on_all(|| async {
                counter!("t_scraped_total", "kind" => "test").increment(shard_id() as u64 + 10);
            })
            .await
            .unwrap();
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            let listener = TcpListener::bind(addr, ListenOptions::default())
                .await
                .unwrap();
            let stop = AbortSource::new();
            let server = spawn_local(
                Server::new(prometheus::route(Router::new())).serve(listener, stop.aborted()),
            );
            let client = Client::new();
            let resp = client
                .get(&format!("http://127.0.0.1:{port}/metrics"))
                .await
                .unwrap();
            let status = resp.status();
            let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            // A second scrape sees the first request in the HTTP metrics.
            let again = client
                .get(&format!("http://127.0.0.1:{port}/metrics"))
                .await
                .unwrap();
            let again = again.into_body().collect().await.unwrap().to_bytes();
            assert!(
                String::from_utf8_lossy(&again).contains("seastar_http_requests_total{shard=\"0\""),
                "http request metrics exported"
            );
            stop.request_abort();
            let _ = server.await;
            (status, ctype, String::from_utf8(body.to_vec()).unwrap())
        });
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    let fams = parse(&body).unwrap();
    let f = &fams["t_scraped_total"];
    assert_eq!(f.kind.as_deref(), Some("counter"));
    let mut shards: Vec<(String, f64)> = f
        .samples
        .iter()
        .map(|s| (label(&s.labels, "shard").unwrap().to_owned(), s.value))
        .collect();
    shards.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(shards, vec![("0".into(), 10.0), ("1".into(), 11.0)]);
    assert!(
        f.samples
            .iter()
            .all(|s| label(&s.labels, "kind") == Some("test"))
    );
    let tasks = &fams["seastar_reactor_tasks_run_total"];
    assert_eq!(tasks.samples.len(), 2, "built-ins from both shards");
}
