//! The admin API on a 2-shard runtime over a real socket: every endpoint's
//! answer asserted field by field and validated against the OpenAPI
//! description it serves; the token, read-only methods, unknown paths.
//! Run on both backends (`SEASTAR_REACTOR_BACKEND=io_uring|epoll`).
#![cfg(feature = "admin")]

#[path = "admin_schema.rs"]
mod schema;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use http::{Method, StatusCode, header};
use http_body_util::BodyExt;
use seastar_core::task::{SchedulingGroup, spawn_local_in};
use seastar_core::{Runtime, promise, shard_id, smp, spawn_local};
use seastar_http::admin::{Admin, AdminServer, register_listener};
use seastar_http::routing::get;
use seastar_http::{Body, Client, Request, Router, Server};
use seastar_net::{ListenOptions, TcpListener, TcpStream};
use serde_json::Value;

const TOKEN: &str = "t0ken-for-tests";
const REQUESTS: u64 = 40;

thread_local! {
    static KEEP: RefCell<Vec<Rc<TcpListener>>> = const { RefCell::new(Vec::new()) };
}

/// `GET url` with an optional bearer token: status, content type, body.
async fn fetch(
    client: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
) -> (StatusCode, String, Vec<u8>) {
    let mut b = http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = client
        .request(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ctype, body)
}

/// Everything the test reads, taken inside the runtime.
struct Answers {
    docs: Value,
    api: Vec<(String, Value)>,
    unauthorized: Vec<(StatusCode, String)>,
    wrong_token: StatusCode,
    post: StatusCode,
    unknown: StatusCode,
    dashboard: (StatusCode, String, String),
}

/// The stall detector's threshold in this test.
const STALL_THRESHOLD: Duration = Duration::from_millis(100);

/// What shard 1 is caught doing: spinning, without yielding, for `d`.
#[inline(never)]
fn admin_test_stalls_the_shard(d: Duration) -> u64 {
    let t = std::time::Instant::now();
    let mut n = 0u64;
    while t.elapsed() < d {
        n = std::hint::black_box(n.wrapping_add(1));
    }
    n
}

fn answers() -> Answers {
    Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .pin(false)
        .blocked_reactor_notify(STALL_THRESHOLD)
        .build()
        .unwrap()
        .run(async {
            // Traffic for the app's own server: REQUESTS requests.
            let (bound, on_bound) = promise::promise();
            let app = spawn_local(seastar_http::serve_sharded(
                "127.0.0.1:0".parse().unwrap(),
                ListenOptions::default(),
                || Server::new(Router::new().route("/", get(|_r: Request| async { "hi\n" }))),
                move |a| bound.set_value(a),
            ));
            let app_addr = on_bound.await.unwrap();
            // A named listener on shard 0 with one connection accepted.
            let l = Rc::new(
                TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
                    .await
                    .unwrap(),
            );
            let weak = Rc::downgrade(&l);
            register_listener("test-listener", move || weak.upgrade().map(|l| l.stats()));
            let _peer = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let (_conn, _) = l.accept().await.unwrap();
            KEEP.with(|k| k.borrow_mut().push(l));
            // A scheduling group with work on every shard; an I/O class
            // with one request dispatched on shard 0.
            smp::invoke_on_all(|| async {
                let bg = SchedulingGroup::new(&format!("admin-bg-{}", shard_id()), 200).unwrap();
                spawn_local_in(bg, async { seastar_core::yield_now().await })
                    .await
                    .unwrap();
            })
            .await
            .unwrap();
            // One stall on shard 1, a few times the threshold.
            smp::submit_to(1, || async {
                admin_test_stalls_the_shard(STALL_THRESHOLD * 5);
            })
            .await
            .unwrap();
            let class = seastar_io::IoClass::new("admin-test", 250);
            drop(seastar_io::sched::admit(&class, seastar_io::sched::Dir::Write, 512).await);

            let admin = Admin::new("admin-test-app", "9.9.9")
                .option("port", app_addr.port())
                .network_stack("posix")
                .token(Some(TOKEN.into()))
                .io_class(class)
                .shard_view(|| vec![("answer".to_owned(), 42.0 + shard_id() as f64)]);
            let server = AdminServer::start("127.0.0.1:0".parse().unwrap(), admin)
                .await
                .unwrap();
            let base = format!("http://{}", server.addr());
            let client = Client::new();
            for _ in 0..REQUESTS {
                let r = client.get(&format!("http://{app_addr}/")).await.unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.into_body().collect().await.unwrap();
            }
            // Three samples a second apart (the sampler takes one at start).
            seastar_core::timer::sleep(Duration::from_millis(2300)).await;

            let (status, ctype, body) = fetch(
                &client,
                Method::GET,
                &format!("{base}/api/v1/openapi.json"),
                Some(TOKEN),
            )
            .await;
            assert_eq!(
                (status, ctype.as_str()),
                (StatusCode::OK, "application/json")
            );
            let docs: Value = serde_json::from_slice(&body).unwrap();
            let mut api = Vec::new();
            let mut unauthorized = Vec::new();
            for path in seastar_http::admin::api::PATHS {
                let url = format!("{base}{path}");
                let (status, ctype, body) = fetch(&client, Method::GET, &url, Some(TOKEN)).await;
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "{path}: {}",
                    String::from_utf8_lossy(&body)
                );
                assert_eq!(ctype, "application/json", "{path}");
                api.push((path.to_string(), serde_json::from_slice(&body).unwrap()));
                let (status, _, body) = fetch(&client, Method::GET, &url, None).await;
                unauthorized.push((status, String::from_utf8_lossy(&body).into_owned()));
            }
            let runtime = format!("{base}/api/v1/runtime");
            let wrong_token = fetch(&client, Method::GET, &runtime, Some("nope")).await.0;
            let post = fetch(&client, Method::POST, &runtime, Some(TOKEN)).await.0;
            let unknown = fetch(
                &client,
                Method::GET,
                &format!("{base}/api/v1/nope"),
                Some(TOKEN),
            )
            .await
            .0;
            let (s, c, b) = fetch(&client, Method::GET, &format!("{base}/"), None).await;
            let dashboard = (s, c, String::from_utf8(b).unwrap());

            seastar_core::request_stop();
            server.stopped().await.unwrap();
            app.await.unwrap().unwrap();
            KEEP.with(|k| k.borrow_mut().clear());
            Answers {
                docs,
                api,
                unauthorized,
                wrong_token,
                post,
                unknown,
                dashboard,
            }
        })
}

fn answer<'a>(a: &'a Answers, path: &str) -> &'a Value {
    &a.api.iter().find(|(p, _)| p == path).unwrap().1
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

#[test]
fn admin_api_answers_match_the_runtime_and_the_openapi_description() {
    let a = answers();

    // Every answer conforms to the description it serves.
    for (path, v) in &a.api {
        let s =
            schema::response_schema(&a.docs, path).unwrap_or_else(|| panic!("{path} undocumented"));
        let errors = schema::validate(&a.docs, s, v);
        assert!(errors.is_empty(), "{path}: {errors:#?}");
    }

    // The token guards every /api path; the page itself is public.
    for (status, body) in &a.unauthorized {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_eq!(a.wrong_token, StatusCode::UNAUTHORIZED);
    assert_eq!(a.post, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.unknown, StatusCode::NOT_FOUND);
    let (status, ctype, html) = &a.dashboard;
    assert_eq!(
        (*status, ctype.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(html.contains("<canvas id=\"busy\""));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads nothing from elsewhere"
    );

    // /api/v1/runtime
    let r = answer(&a, "/api/v1/runtime");
    assert_eq!(r["app"], "admin-test-app");
    assert_eq!(r["app_version"], "9.9.9");
    assert_eq!(r["framework_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(u(&r["pid"]), u64::from(std::process::id()));
    assert_eq!(u(&r["shards"]), 2);
    let cpus = r["cpus"].as_array().unwrap();
    assert_eq!(
        cpus.iter().map(|c| u(&c["shard"])).collect::<Vec<_>>(),
        vec![0, 1]
    );
    for c in cpus {
        let allowed: Vec<u64> = c["allowed_cpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(u)
            .collect();
        assert!(allowed.contains(&u(&c["cpu"])), "{c}");
    }
    let backend = r["backend"].as_str().unwrap();
    match std::env::var("SEASTAR_REACTOR_BACKEND").as_deref() {
        Ok("epoll") => assert_eq!(backend, "epoll"),
        Ok("io_uring") => assert_eq!(backend, "io_uring"),
        _ => assert!(backend == "io_uring" || backend == "epoll"),
    }
    assert!(r["backend_summary"].as_str().unwrap().starts_with(backend));
    assert_eq!(r["network_stack"], "posix");
    assert!(
        r["options"]["port"]
            .as_str()
            .unwrap()
            .parse::<u16>()
            .unwrap()
            > 0
    );
    assert!(f(&r["uptime_seconds"]) >= 2.0, "{}", r["uptime_seconds"]);
    assert_eq!(f(&r["sample_period_seconds"]), 1.0);
    assert_eq!(r["busy_time_measured"], true);

    // /api/v1/shards
    let s = answer(&a, "/api/v1/shards");
    let shards = s["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let mut requests = 0;
    let now = u(&s["now_unix_ms"]);
    for (i, sh) in shards.iter().enumerate() {
        assert_eq!(u(&sh["shard"]), i as u64);
        // At least three samples a second apart: 1 s windows exist, and
        // the history holds a value per second between samples.
        assert!(u(&sh["samples"]) >= 3, "{sh}");
        for w in ["last_1s", "last_10s", "last_60s"] {
            let busy = f(&sh["busy"][w]);
            assert!((0.0..=1.0).contains(&busy), "{w}: {busy}");
            assert!(f(&sh["requests_per_second"][w]) >= 0.0);
        }
        let history = sh["history"]["busy"].as_array().unwrap().len();
        assert_eq!(history as u64, u(&sh["samples"]) - 1);
        assert_eq!(
            sh["history"]["requests_per_second"]
                .as_array()
                .unwrap()
                .len(),
            history
        );
        assert!(u(&sh["tasks_run"]) > 0);
        assert!(u(&sh["polls"]) > 0);
        assert!(f(&sh["busy_seconds"]) > 0.0);
        assert!(f(&sh["cpu_seconds"]) > 0.0);
        let sampled = u(&sh["sampled_at_unix_ms"]);
        assert!(
            sampled > 1_600_000_000_000 && sampled <= now,
            "{sampled} {now}"
        );
        // Cross-shard calls went both ways (gathers, the test's own).
        assert!(
            u(&sh["messages_in"]) > 0 && u(&sh["messages_out"]) > 0,
            "{sh}"
        );
        if i == 1 {
            // The stall on shard 1: counted, timed, and caught in the act.
            assert!(u(&sh["stalls"]) >= 1, "{sh}");
            let secs = f(&sh["last_stall_seconds"]);
            assert!(secs >= STALL_THRESHOLD.as_secs_f64(), "{secs}");
            let bt = sh["last_stall_backtrace"].as_str().unwrap_or_default();
            assert!(
                bt.contains("admin_test_stalls_the_shard"),
                "shard 1's backtrace does not name the stalled function:\n{bt}"
            );
        } else if u(&sh["stalls"]) == 0 {
            // (A loaded machine may stall shard 0 too; if not, nothing.)
            assert_eq!(sh["last_stall_backtrace"], Value::Null);
            assert_eq!(sh["last_stall_seconds"], Value::Null);
        }
        assert_eq!(f(&sh["app"]["answer"]), 42.0 + i as f64);
        requests += u(&sh["requests_total"]);
    }
    // The app's requests, none of the admin's own.
    assert_eq!(requests, REQUESTS);
    let total_latency: u64 = shards
        .iter()
        .map(|s| u(&s["latency_seconds"]["count"]))
        .sum();
    assert!(total_latency >= REQUESTS, "{total_latency}");

    // /api/v1/groups: main, and the group each shard made.
    let g = answer(&a, "/api/v1/groups");
    let groups = g["groups"].as_array().unwrap();
    let main = groups.iter().find(|g| g["name"] == "main").unwrap();
    assert_eq!((u(&main["id"]), u(&main["shares"])), (0, 1000));
    assert_eq!(main["shards"].as_array().unwrap().len(), 2);
    assert!(f(&main["runtime_seconds"]) > 0.0);
    for shard in 0..2u64 {
        let name = format!("admin-bg-{shard}");
        let bg = groups
            .iter()
            .find(|g| g["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name}: {g}"));
        assert_eq!(u(&bg["shares"]), 200);
        assert!(
            bg["shards"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| u(&s["shard"]) == shard)
        );
    }

    // /api/v1/connections
    let c = answer(&a, "/api/v1/connections");
    let per_shard = c["shards"].as_array().unwrap();
    assert_eq!(
        per_shard.iter().map(|s| u(&s["shard"])).collect::<Vec<_>>(),
        vec![0, 1]
    );
    let accepted: u64 = per_shard.iter().map(|s| u(&s["accepted"])).sum();
    assert!(
        accepted >= 2,
        "the app's, the test listener's and the admin's connections: {c}"
    );
    assert!(
        per_shard
            .iter()
            .map(|s| u(&s["bytes_received"]))
            .sum::<u64>()
            > 0
    );
    assert!(per_shard.iter().map(|s| u(&s["bytes_sent"])).sum::<u64>() > 0);
    let listeners = c["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1, "{c}");
    let l = &listeners[0];
    assert_eq!(l["name"], "test-listener");
    assert_eq!(
        (
            u(&l["shard"]),
            u(&l["accepted"]),
            u(&l["open"]),
            u(&l["backoffs"])
        ),
        (0, 1, 1, 0)
    );
    // Its one connection has been silent since it was accepted, before the
    // test's 2.3 s wait for samples (exact ages: `tests/admin_idle.rs`).
    let idle = f(&l["oldest_idle_seconds"]);
    assert!((2.0..60.0).contains(&idle), "{idle}");

    // /api/v1/io: the class, with its shares, on both shards; one
    // request dispatched on shard 0.
    let io = answer(&a, "/api/v1/io");
    assert_eq!(io["shards"].as_array().unwrap().len(), 2);
    for q in io["shards"].as_array().unwrap() {
        assert_eq!(u(&q["in_flight"]), 0);
        assert!(f(&q["capacity_seconds"]) > 0.0);
    }
    let classes = io["classes"].as_array().unwrap();
    let class = classes.iter().find(|c| c["name"] == "admin-test").unwrap();
    assert_eq!(u(&class["shares"]), 250);
    let cs = class["shards"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(
        (
            u(&cs[0]["shard"]),
            u(&cs[0]["dispatched"]),
            u(&cs[0]["queued"])
        ),
        (0, 1, 0)
    );
    assert_eq!((u(&cs[1]["shard"]), u(&cs[1]["dispatched"])), (1, 0));
    assert_eq!(u(&cs[0]["requests_write"]), 1);
    assert_eq!(u(&cs[0]["bytes_written"]), 512);
    // Its latency (admitted at once, dropped at once: microseconds, well
    // under the 100 ms bucket even in a debug build on a busy machine),
    // and none on shard 1.
    let lat = &cs[0]["latency_seconds"];
    assert_eq!(u(&lat["count"]), 1);
    let (p50, p90, p99) = (f(&lat["p50"]), f(&lat["p90"]), f(&lat["p99"]));
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= 0.1, "{lat}");
    assert_eq!(u(&cs[1]["latency_seconds"]["count"]), 0);
    assert!(cs[1]["latency_seconds"]["p99"].is_null());

    // /api/v1/metrics: each shard's registry, counters and histograms.
    let m = answer(&a, "/api/v1/metrics");
    let ms = m["shards"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    for (i, sh) in ms.iter().enumerate() {
        assert_eq!(u(&sh["shard"]), i as u64);
        let samples = sh["samples"].as_array().unwrap();
        let tasks = samples
            .iter()
            .find(|s| s["name"] == "seastar_reactor_tasks_run_total")
            .unwrap();
        assert_eq!(tasks["type"], "counter");
        assert!(f(&tasks["value"]) > 0.0);
        assert_eq!(tasks["histogram"], Value::Null);
    }
    let hist: u64 = ms
        .iter()
        .flat_map(|sh| sh["samples"].as_array().unwrap().iter())
        .filter(|s| s["name"] == "seastar_http_request_duration_seconds")
        .map(|s| {
            assert_eq!(s["type"], "histogram");
            let h = &s["histogram"];
            assert_eq!(
                h["buckets"].as_array().unwrap().len(),
                h["bounds"].as_array().unwrap().len() + 1
            );
            u(&h["count"])
        })
        .sum();
    assert!(hist >= REQUESTS);
    assert!(m["help"]["seastar_reactor_tasks_run_total"].is_string());

    // The description served is the one shipped.
    let served = answer(&a, "/api/v1/openapi.json");
    let shipped: Value = serde_json::from_str(seastar_http::admin::api::OPENAPI_JSON).unwrap();
    assert_eq!(served, &shipped);
}
