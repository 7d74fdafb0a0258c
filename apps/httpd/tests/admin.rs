//! httpd with `--admin-port`: the admin API behind its token, the exposure
//! warning, and the dashboard loaded in headless Chromium against the
//! live 2-shard server under a little load, its charts checked to fill in
//! with live data; the screenshot is kept in `target/tmp/`.
//!
//! Chromium is Debian's `chromium` package; without it the dashboard test
//! says so loudly and passes (set `ADMIN_REQUIRE_CHROMIUM=1` to fail).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "dashboard-test-token";

/// A running httpd, killed when dropped.
struct Httpd {
    child: Child,
    app: SocketAddr,
    admin: SocketAddr,
    stderr: Arc<std::sync::Mutex<String>>,
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token_file(name: &str) -> PathBuf {
    let p =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.token", std::process::id()));
    std::fs::write(&p, format!("  {TOKEN}\n")).unwrap();
    p
}

fn start(extra: &[&str]) -> Httpd {
    let mut child = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args([
            "--port",
            "0",
            "--smp",
            "2",
            "--admin-port",
            "0",
            "--shutdown-timeout",
            "2",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start httpd");
    let stderr = Arc::new(std::sync::Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    let app = loop {
        let line = out.next().expect("a listening line").unwrap();
        if let Some(rest) = line.strip_prefix("httpd: admin API and dashboard at http://") {
            admin = Some(rest.trim_end_matches('/').parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("httpd: listening on http://") {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    // Drain the rest so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in out {});
    Httpd {
        child,
        app,
        admin: admin.expect("the admin line comes before the listening line"),
        stderr,
    }
}

impl Httpd {
    /// SIGTERM; the exit status and how long the stop took.
    fn stop(mut self) -> (std::process::ExitStatus, Duration) {
        let t = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        (status, t.elapsed())
    }
}

/// `GET path` with an optional bearer token: status and body.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, body.to_owned())
}

/// Keep-alive GETs of `/` until `stop`; counts the answers.
fn load(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut s = BufReader::new(TcpStream::connect(addr).unwrap());
        s.get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            s.get_mut()
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut line = String::new();
            let mut len = 0;
            loop {
                line.clear();
                s.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            s.read_exact(&mut body).unwrap();
            assert_eq!(body, b"Hello, world!\n");
            done.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

#[test]
fn admin_api_requires_the_token_and_stops_with_the_app() {
    let tf = token_file("api");
    let h = start(&["--admin-token-file", tf.to_str().unwrap()]);
    assert_eq!(get(h.admin, "/api/v1/runtime", None).0, 401);
    assert_eq!(get(h.admin, "/api/v1/runtime", Some("wrong")).0, 401);
    let (status, body) = get(h.admin, "/api/v1/runtime", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["app"].as_str(), v["shards"].as_u64()),
        (Some("httpd"), Some(2))
    );
    assert_eq!(v["options"]["smp"], "2");
    assert_eq!(v["options"]["shutdown-timeout"], "2");
    // The page holds no data: it is served without the token.
    let (status, page) = get(h.admin, "/", None);
    assert_eq!(status, 200);
    assert!(page.contains("<canvas id=\"busy\""));
    // Loopback: no warning.
    assert!(
        !h.stderr
            .lock()
            .unwrap()
            .contains("reachable from other hosts")
    );
    let (status, took) = h.stop();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    let _ = std::fs::remove_file(tf);
}

#[test]
fn a_bad_token_file_or_a_wide_address_is_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args([
            "--port",
            "0",
            "--smp",
            "1",
            "--admin-port",
            "0",
            "--admin-token-file",
            "/nonexistent/token",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the admin token file /nonexistent/token"),
        "{err}"
    );

    let h = start(&["--admin-address", "0.0.0.0"]);
    assert!(h.admin.ip().is_unspecified(), "{}", h.admin);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h
        .stderr
        .lock()
        .unwrap()
        .contains("reachable from other hosts")
    {
        assert!(
            Instant::now() < deadline,
            "no warning: {}",
            h.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(h.stderr.lock().unwrap().contains("no token is required"));
    let (status, _) = h.stop();
    assert!(status.success());
}

fn chromium() -> Option<PathBuf> {
    let from_env = std::env::var_os("CHROMIUM").map(PathBuf::from);
    let known = [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ];
    from_env
        .into_iter()
        .chain(known.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `what` (`--dump-dom` or
/// `--screenshot=PATH`), killed after 60 s; its stdout.
fn run_chromium(bin: &Path, url: &str, what: &str, profile: &Path) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1300",
            // Virtual time stands still while the page's fetches are out,
            // so 6 s of it are six polls of the live server.
            "--virtual-time-budget=6000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(what)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// The value of attribute `name` in the first tag `<tag ...>` whose text
/// contains `marker`.
fn attr(dom: &str, marker: &str, name: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let start = dom[..=at].rfind('<')?;
    let end = start + dom[start..].find('>')?;
    let tag = &dom[start..end];
    let key = format!("{name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(tag[i..i + tag[i..].find('"')?].to_owned())
}

fn num(dom: &str, marker: &str, name: &str) -> f64 {
    attr(dom, marker, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{marker} {name} missing in the page"))
}

#[test]
fn dashboard_fills_in_with_live_data_in_headless_chromium() {
    let Some(bin) = chromium() else {
        let msg = "SKIPPED: chromium not found (apt-get install -y chromium); the dashboard was not checked in a browser";
        eprintln!("\n*** {msg} ***\n");
        assert!(
            std::env::var_os("ADMIN_REQUIRE_CHROMIUM").is_none(),
            "{msg}"
        );
        return;
    };
    let tf = token_file("dashboard");
    let h = start(&["--admin-token-file", tf.to_str().unwrap()]);
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let loaders: Vec<_> = (0..2)
        .map(|_| load(h.app, stop.clone(), done.clone()))
        .collect();
    // Two samples at least before the page opens.
    std::thread::sleep(Duration::from_millis(1500));
    let url = format!("http://{}/#token={TOKEN}", h.admin);
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let profile = tmp.join(format!("admin-chromium-{}", std::process::id()));
    let dom = run_chromium(&bin, &url, "--dump-dom", &profile);
    let shot = tmp.join("admin-dashboard.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &bin,
        &url,
        &format!("--screenshot={}", shot.display()),
        &profile,
    );
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().unwrap();
    }
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_file(&tf);

    assert!(dom.contains("<canvas id=\"busy\""), "no page: {dom:.400}");
    // The page polled the API (with the token from its URL) and drew
    // every shard's history.
    assert!(num(&dom, "<body", "data-polls") >= 2.0, "{dom:.2000}");
    assert_eq!(num(&dom, "<body", "data-shards"), 2.0);
    assert!(
        num(&dom, "id=\"busy\"", "data-samples") >= 2.0,
        "one cell per shard and second at least"
    );
    assert!(num(&dom, "id=\"rps\"", "data-samples") >= 1.0);
    assert!(num(&dom, "id=\"lat\"", "data-samples") >= 1.0);
    assert_eq!(num(&dom, "id=\"conns\"", "data-samples"), 2.0);
    assert_eq!(num(&dom, "id=\"ioq\"", "data-samples"), 2.0);
    // Live data: the load shows as requests per second, and the newest
    // sample shown was at most 2 s old when the server answered.
    assert!(
        num(&dom, "<body", "data-requests-per-second") > 0.0,
        "{dom:.2000}"
    );
    assert!(num(&dom, "<body", "data-sample-age-ms") <= 2000.0);
    assert!(
        attr(&dom, "id=\"error\"", "hidden").is_some(),
        "the page shows an error"
    );
    assert!(done.load(Ordering::Relaxed) > 0);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[1..4], b"PNG");
    eprintln!("dashboard screenshot: {}", shot.display());
    let (status, _) = h.stop();
    assert!(status.success());
}
