//! The Prometheus endpoint over a real socket, metrics from two shards;
//! the request duration histogram under the manual clock.
#![cfg(feature = "prometheus")]

mod support;

use std::time::Duration;

use support::{Raw, Running, run};

use http_body_util::BodyExt;
use seastar_core::metrics::facade::counter;
use seastar_core::metrics::prometheus::parse;
use seastar_core::sync::AbortSource;
use seastar_core::timer::{self, ManualClock};
use seastar_core::{Runtime, shard_id, smp, spawn_local};
use seastar_http::routing::get;
use seastar_http::{Client, Request, Router, Server, prometheus};
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

/// `seastar_http_request_duration_seconds` on this shard: (count, sum).
fn duration_histogram() -> (u64, f64) {
    let snap = seastar_core::metrics::local_snapshot();
    let s = snap
        .samples
        .iter()
        .find(|s| s.name == seastar_http::metrics::REQUEST_DURATION)
        .expect("the duration histogram is recorded");
    match &s.value {
        seastar_core::metrics::Value::Histogram(h) => (h.count, h.sum),
        v => panic!("not a histogram: {v:?}"),
    }
}

#[test]
fn request_durations_are_measured_on_the_shard_clock() {
    run(true, async {
        let (fire, entered) = support::signal();
        let app = Router::new()
            .route("/", get(|_r: Request| async { "now" }))
            .route(
                "/slow",
                get(move |_r: Request| {
                    let fire = fire.clone();
                    async move {
                        fire.fire();
                        timer::sleep(Duration::from_millis(250)).await;
                        "late"
                    }
                }),
            );
        let s = Running::start(Server::new(app)).await;
        let mut c = Raw::connect(s.addr).await;
        c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
        entered.await.unwrap();
        ManualClock::advance(Duration::from_millis(250)).await;
        let r = c.response(false).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"late"[..]));
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(c.response(false).await.unwrap().body, b"now");
        // The wait counts whole; an answer within one loop iteration is 0.
        assert_eq!(duration_histogram(), (2, 0.25));
        s.stop().await;
    });
}
