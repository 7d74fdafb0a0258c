//! Shared test helpers: a server on port 0 in a one-shard runtime, and a
//! raw HTTP/1.1 client over seastar-net for byte-exact exchanges.

#![allow(dead_code, missing_debug_implementations)]

use std::net::SocketAddr;
use std::time::Duration;

use seastar_core::sync::AbortSource;
use seastar_core::{JoinHandle, Runtime};
use seastar_http::{ServeStats, Server};
use seastar_net::{ListenOptions, TcpListener, TcpStream};

/// Runs `f` on a fresh one-shard runtime (manual clock if asked).
pub fn run<F: std::future::Future<Output = ()> + 'static>(manual_clock: bool, f: F) {
    let mut b = Runtime::builder().shards(1).handle_signals(false);
    if manual_clock {
        b = b.manual_clock();
    }
    b.build().unwrap().run(f);
}

/// A server running on this shard.
pub struct Running {
    pub addr: SocketAddr,
    pub stop: AbortSource,
    pub task: JoinHandle<ServeStats>,
}

impl Running {
    pub async fn start(server: Server) -> Running {
        let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let stop = AbortSource::new();
        let task = seastar_core::spawn_local(server.serve(l, stop.aborted()));
        Running { addr, stop, task }
    }

    pub async fn stop(self) -> ServeStats {
        self.stop.request_abort();
        self.task.await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// A raw connection that keeps unread bytes between calls.
pub struct Raw {
    pub conn: TcpStream,
    buf: Vec<u8>,
    pub eof: bool,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            conn: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            eof: false,
        }
    }

    pub async fn send(&self, bytes: &[u8]) {
        self.conn.write_all(bytes.to_vec()).await.0.unwrap();
    }

    /// Reads more; false at end of stream (or a reset).
    async fn fill(&mut self) -> bool {
        let (n, b) = self.conn.read(Vec::with_capacity(64 * 1024)).await;
        match n {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                true
            }
        }
    }

    /// Reads exactly `n` bytes (panics at end of stream).
    pub async fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "closed before {n} bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads until the peer closes; true if it did with nothing unread.
    pub async fn closed(&mut self) -> bool {
        while self.fill().await {}
        self.buf.is_empty()
    }

    /// Reads one response (`head_only` for answers to HEAD).
    pub async fn response(&mut self, head_only: bool) -> Option<Resp> {
        loop {
            if let Some((resp, used)) = parse(&self.buf, head_only) {
                self.buf.drain(..used);
                return Some(resp);
            }
            if !self.fill().await {
                return None;
            }
        }
    }
}

fn parse(buf: &[u8], head_only: bool) -> Option<(Resp, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let status = r.code.unwrap();
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    if head_only || status < 200 || status == 204 || status == 304 {
        return Some((
            Resp {
                status,
                headers,
                body: Vec::new(),
            },
            head,
        ));
    }
    if let Some(len) = find("content-length") {
        let len: usize = len.parse().unwrap();
        if buf.len() < head + len {
            return None;
        }
        let body = buf[head..head + len].to_vec();
        return Some((
            Resp {
                status,
                headers,
                body,
            },
            head + len,
        ));
    }
    assert_eq!(find("transfer-encoding").as_deref(), Some("chunked"));
    let mut pos = head;
    let mut body = Vec::new();
    loop {
        let line_end = buf[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
        let size =
            usize::from_str_radix(std::str::from_utf8(&buf[pos..line_end]).unwrap().trim(), 16)
                .unwrap();
        let start = line_end + 2;
        if buf.len() < start + size + 2 {
            return None;
        }
        if size == 0 {
            return Some((
                Resp {
                    status,
                    headers,
                    body,
                },
                start + 2,
            ));
        }
        body.extend_from_slice(&buf[start..start + size]);
        pos = start + size + 2;
    }
}

/// One request on a fresh connection.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut c = Raw::connect(addr).await;
    c.send(request).await;
    c.response(request.starts_with(b"HEAD"))
        .await
        .expect("a response")
}

/// Waits a little of real time (lets the server's tasks run).
pub async fn settle() {
    for _ in 0..20 {
        seastar_core::yield_now().await;
    }
}

pub const SECOND: Duration = Duration::from_secs(1);

/// A one-shot "it happened" signal a handler can fire (repeat fires are ignored).
pub fn signal() -> (Fire, seastar_core::promise::Future<()>) {
    let (tx, rx) = seastar_core::promise::promise();
    (
        Fire(std::rc::Rc::new(std::cell::RefCell::new(Some(tx)))),
        rx,
    )
}

/// The firing side of [`signal`].
#[derive(Clone)]
pub struct Fire(std::rc::Rc<std::cell::RefCell<Option<seastar_core::promise::Promise<()>>>>);

impl Fire {
    pub fn fire(&self) {
        if let Some(tx) = self.0.borrow_mut().take() {
            tx.set_value(());
        }
    }
}
