//! [`StaticFiles`]: serves a directory tree, through `seastar-io`.
//!
//! The file path is the route's catch-all parameter (`/static/{*path}`)
//! or, with none, the whole request path; it is percent-decoded and must
//! not climb out of the root: a `..` segment, a backslash or a NUL gets
//! 400, never a file. A directory is served by its `index.html`; asked
//! for without a trailing slash it is redirected (308) to the slashed
//! path, so relative links in the index resolve.
//!
//! Responses carry `Content-Type` by extension, `Last-Modified`, a strong
//! `ETag` (inode, size, modification time), `Accept-Ranges: bytes`, and
//! `Cache-Control` if configured. `If-None-Match` / `If-Modified-Since`
//! give 304; a single `Range` gives 206 with `Content-Range` (416 when it
//! starts past the end), honoured only if `If-Range` (when sent) still
//! names the current version; several ranges get the whole file (200), as
//! RFC 9110 allows. The body streams in 64 KiB reads at offsets of a
//! [`seastar_io::File`] (io_uring reads, or the blocking pool on epoll),
//! with an exact `Content-Length`.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body::{Frame, SizeHint};
use seastar_io::File;

use crate::handler::HandlerFuture;
use crate::response::error;
use crate::util::percent_decode;
use crate::{Body, Handler, IntoResponse, Redirect, Request, RequestExt, Response};

const CHUNK: usize = 64 * 1024;

/// A handler serving files under a root directory; see the [module docs](self).
///
/// ```
/// use seastar_http::{Router, StaticFiles, routing::get};
///
/// let _router = Router::new()
///     .route("/static/{*path}", get(StaticFiles::new("./public")));
/// ```
#[derive(Clone)]
pub struct StaticFiles {
    inner: Rc<Config>,
}

struct Config {
    root: PathBuf,
    index: Option<String>,
    cache_control: Option<HeaderValue>,
}

impl fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFiles")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl StaticFiles {
    /// Serves files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> StaticFiles {
        StaticFiles {
            inner: Rc::new(Config {
                root: root.into(),
                index: Some("index.html".into()),
                cache_control: None,
            }),
        }
    }

    /// The file that serves a directory (`index.html`; `None`: directories are 404).
    pub fn index_file(self, name: Option<&str>) -> StaticFiles {
        self.map(|c| c.index = name.map(str::to_owned))
    }

    /// A `Cache-Control` value for every file response (e.g. `max-age=3600`).
    ///
    /// # Panics
    ///
    /// If `value` is not a valid header value.
    pub fn cache_control(self, value: &str) -> StaticFiles {
        let v = HeaderValue::from_str(value).expect("valid Cache-Control value");
        self.map(|c| c.cache_control = Some(v))
    }

    fn map(self, f: impl FnOnce(&mut Config)) -> StaticFiles {
        let mut c = Rc::try_unwrap(self.inner).unwrap_or_else(|rc| Config {
            root: rc.root.clone(),
            index: rc.index.clone(),
            cache_control: rc.cache_control.clone(),
        });
        f(&mut c);
        StaticFiles { inner: Rc::new(c) }
    }
}

impl Handler for StaticFiles {
    fn call(&self, req: Request) -> HandlerFuture {
        let config = self.inner.clone();
        Box::pin(async move { serve(&config, req).await })
    }
}

/// The relative path asked for, checked: `Err` is the 400 response.
fn relative_path(req: &Request) -> Result<String, Box<Response>> {
    let raw = match req.params().iter().last() {
        Some((_, v)) => v.to_owned(),
        None => percent_decode(req.uri().path(), false).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "path is not valid percent-encoded UTF-8",
            )
        })?,
    };
    let mut clean = Vec::new();
    for seg in raw.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "`..` is not allowed in paths",
                )));
            }
            s if s.contains(['\\', '\0']) => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "invalid character in path",
                )));
            }
            s => clean.push(s),
        }
    }
    Ok(clean.join("/"))
}

async fn serve(config: &Config, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let rel = match relative_path(&req) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let mut path = config.root.join(&rel);
    let mut name = rel.clone();
    let (file, meta) = match open(&path).await {
        Ok(v) => v,
        Err(e) => return io_error(&e),
    };
    let (file, meta) = if meta.is_dir() {
        let _ = file.close().await;
        let Some(index) = &config.index else {
            return error(StatusCode::NOT_FOUND, "not found");
        };
        if !req.uri().path().ends_with('/') {
            let mut to = format!("{}/", req.uri().path());
            if let Some(q) = req.uri().query() {
                to = format!("{to}?{q}");
            }
            return Redirect::permanent(&to).into_response();
        }
        path.push(index);
        name = index.clone();
        match open(&path).await {
            Ok((f, m)) if m.is_file() => (f, m),
            Ok((f, _)) => {
                let _ = f.close().await;
                return error(StatusCode::NOT_FOUND, "not found");
            }
            Err(e) => return io_error(&e),
        }
    } else if meta.is_file() {
        (file, meta)
    } else {
        let _ = file.close().await;
        return error(StatusCode::NOT_FOUND, "not found");
    };

    let len = meta.len();
    let modified = meta.modified();
    let mtime = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    let etag = format!(
        "\"{:x}-{:x}-{:x}.{:x}\"",
        meta.ino(),
        len,
        mtime.as_secs(),
        mtime.subsec_nanos()
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex etag"),
    );
    headers.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_str(&httpdate::fmt_http_date(modified)).expect("http date"),
    );
    if let Some(cc) = &config.cache_control {
        headers.insert(header::CACHE_CONTROL, cc.clone());
    }

    if not_modified(req.headers(), &etag, modified) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        *r.headers_mut() = headers;
        return r;
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::mime::for_path(&name)),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    let range = match req.headers().get(header::RANGE) {
        Some(r) if if_range_holds(req.headers(), &etag, modified) => parse_range(r, len),
        _ => RangeSpec::Whole,
    };
    let (status, start, end) = match range {
        RangeSpec::Whole => (StatusCode::OK, 0, len),
        RangeSpec::Part(a, b) => {
            let cr = format!("bytes {a}-{}/{len}", b - 1);
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&cr).expect("ascii"),
            );
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        RangeSpec::Unsatisfiable => {
            let _ = file.close().await;
            let mut r = error(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            let cr = format!("bytes */{len}");
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&cr).expect("ascii"),
            );
            return r;
        }
    };
    let body = if req.method() == Method::HEAD || start == end {
        // hyper keeps the Content-Length of a HEAD answer; send no bytes.
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
        Body::empty()
    } else {
        Body::new(FileBody {
            file: Some(file),
            pos: start,
            end,
            reading: None,
        })
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

async fn open(path: &std::path::Path) -> io::Result<(File, seastar_io::fs::Metadata)> {
    let f = File::open(path).await?;
    match f.stat().await {
        Ok(m) => Ok((f, m)),
        Err(e) => {
            let _ = f.close().await;
            Err(e)
        }
    }
}

fn io_error(e: &io::Error) -> Response {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
            error(StatusCode::NOT_FOUND, "not found")
        }
        io::ErrorKind::PermissionDenied => error(StatusCode::FORBIDDEN, "forbidden"),
        _ => {
            tracing::warn!(error = %e, "static file");
            error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file")
        }
    }
}

fn etag_listed(list: &HeaderValue, etag: &str) -> bool {
    let Ok(list) = list.to_str() else {
        return false;
    };
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

fn not_modified(h: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = h.get(header::IF_NONE_MATCH) {
        return etag_listed(inm, etag);
    }
    h.get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| secs(modified) <= secs(since))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn if_range_holds(h: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(v) = h.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if v.starts_with('"') {
        return v == etag;
    }
    httpdate::parse_http_date(v).is_ok_and(|d| secs(d) == secs(modified))
}

#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    Whole,
    /// `[start, end)`.
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(v: &HeaderValue, len: u64) -> RangeSpec {
    let Some(spec) = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().strip_prefix("bytes="))
    else {
        return RangeSpec::Whole;
    };
    if spec.contains(',') {
        return RangeSpec::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), _) if a >= len => RangeSpec::Unsatisfiable,
        (Ok(a), Ok(b)) if b >= a => RangeSpec::Part(a, b.saturating_add(1).min(len)),
        (Ok(a), Err(_)) if b.is_empty() => RangeSpec::Part(a, len),
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Part(len.saturating_sub(n), len)
            }
        }
        _ => RangeSpec::Whole,
    }
}

type ReadFuture = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;

/// `[pos, end)` of a file, read 64 KiB at a time.
struct FileBody {
    file: Option<File>,
    pos: u64,
    end: u64,
    reading: Option<ReadFuture>,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.pos >= this.end {
            this.file = None;
            return Poll::Ready(None);
        }
        if this.reading.is_none() {
            let Some(file) = this.file.clone() else {
                return Poll::Ready(None);
            };
            let want = ((this.end - this.pos) as usize).min(CHUNK);
            let pos = this.pos;
            this.reading = Some(Box::pin(async move {
                file.read_at(pos, Vec::with_capacity(want)).await
            }));
        }
        let (res, mut buf) = ready!(this.reading.as_mut().expect("set above").as_mut().poll(cx));
        this.reading = None;
        let n = match res {
            Ok(0) => {
                this.file = None;
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being served",
                ))));
            }
            Ok(n) => n,
            Err(e) => return Poll::Ready(Some(Err(e))),
        };
        buf.truncate(n);
        this.pos += n as u64;
        if this.pos >= this.end {
            this.file = None;
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end - self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn ranges_parse_per_rfc_9110() {
        assert_eq!(parse_range(&hv("bytes=0-9"), 100), RangeSpec::Part(0, 10));
        assert_eq!(parse_range(&hv("bytes=90-"), 100), RangeSpec::Part(90, 100));
        assert_eq!(parse_range(&hv("bytes=-10"), 100), RangeSpec::Part(90, 100));
        assert_eq!(parse_range(&hv("bytes=-200"), 100), RangeSpec::Part(0, 100));
        assert_eq!(
            parse_range(&hv("bytes=50-500"), 100),
            RangeSpec::Part(50, 100)
        );
        assert_eq!(
            parse_range(&hv("bytes=100-"), 100),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(parse_range(&hv("bytes=-0"), 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(&hv("bytes=5-2"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("bytes=0-1,5-6"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("items=0-1"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(&hv("bytes=x-1"), 100), RangeSpec::Whole);
    }

    #[test]
    fn traversal_attempts_are_refused() {
        let req = |p: &str| http::Request::builder().uri(p).body(Body::empty()).unwrap();
        assert_eq!(relative_path(&req("/a/./b//c.txt")).unwrap(), "a/b/c.txt");
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/a%5c..%5cb",
            "/a%00b",
        ] {
            let r = relative_path(&req(bad)).unwrap_err();
            assert_eq!(r.status(), 400, "{bad}");
        }
    }

    #[test]
    fn etags_match_lists_weak_forms_and_star() {
        assert!(etag_listed(&hv("\"x\", \"abc\""), "\"abc\""));
        assert!(etag_listed(&hv("W/\"abc\""), "\"abc\""));
        assert!(etag_listed(&hv("*"), "\"abc\""));
        assert!(!etag_listed(&hv("\"abd\""), "\"abc\""));
    }
}
