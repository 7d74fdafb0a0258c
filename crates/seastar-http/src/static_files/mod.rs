//! [`StaticFiles`]: serves a directory tree, through `seastar-io`.
//!
//! The file path is the route's catch-all parameter (`/static/{*path}`)
//! or, with none, the whole request path; it is percent-decoded and must
//! not climb out of the root: a `..` segment, a backslash or a NUL gets
//! 400, never a file. A directory is served by its `index.html`; asked
//! for without a trailing slash it is redirected (308) to the slashed
//! path, so relative links in the index resolve; the redirect always
//! starts with a single `/` (`//sub` goes to `/sub/`, never to the
//! protocol-relative `//sub/`, which a browser reads as host `sub`).
//!
//! Symbolic links: like nginx (`disable_symlinks off`, its default), links
//! are followed wherever they point, so a link inside the root may serve a
//! file outside it; the root's owner decides what links it holds. With
//! [`StaticFiles::follow_symlinks_outside_root`]`(false)` a path whose
//! resolved location is outside the (resolved) root gets 403. The check
//! resolves the path before opening it, so a link swapped in between the
//! two is not caught: it guards against links left in the tree, not
//! against a hostile writer racing the server.
//!
//! Responses carry `Content-Type` by extension, `Last-Modified`, a strong
//! `ETag` (inode, size, modification time), `Accept-Ranges: bytes`, and
//! `Cache-Control` if configured. A modification time before 1970 is sent
//! as `Last-Modified: Thu, 01 Jan 1970 00:00:00 GMT` (HTTP dates cannot
//! say earlier). `If-None-Match` / `If-Modified-Since`
//! give 304; a single `Range` gives 206 with `Content-Range` (416 when it
//! starts past the end), honoured only if `If-Range` (when sent) still
//! names the current version; several ranges get the whole file (200), as
//! RFC 9110 allows. An empty file has no byte to send a part of: a suffix
//! range (`bytes=-5`) gets the whole, empty, file with 200 (RFC 9110
//! 14.1.1: a representation shorter than the suffix is used entire), and
//! `bytes=0-` gets 416. The body streams in 64 KiB reads at offsets of a
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

#[doc(hidden)]
pub mod invariants;
mod range;

use range::{RangeSpec, parse_range};

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
    follow_outside: bool,
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
                follow_outside: true,
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

    /// Whether a symbolic link may lead out of the root (yes by default,
    /// as nginx; see the [module docs](self)). `false` answers 403 for a
    /// path that resolves outside the root.
    pub fn follow_symlinks_outside_root(self, on: bool) -> StaticFiles {
        self.map(|c| c.follow_outside = on)
    }

    fn map(self, f: impl FnOnce(&mut Config)) -> StaticFiles {
        let mut c = Rc::try_unwrap(self.inner).unwrap_or_else(|rc| Config {
            root: rc.root.clone(),
            index: rc.index.clone(),
            cache_control: rc.cache_control.clone(),
            follow_outside: rc.follow_outside,
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
    if !config.follow_outside {
        if let Err(r) = inside_root(&config.root, &path).await {
            return *r;
        }
    }
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
            let mut to = format!("{}/", single_leading_slash(req.uri().path()));
            if let Some(q) = req.uri().query() {
                to = format!("{to}?{q}");
            }
            return Redirect::permanent(&to).into_response();
        }
        path.push(index);
        name = index.clone();
        if !config.follow_outside {
            if let Err(r) = inside_root(&config.root, &path).await {
                return *r;
            }
        }
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
    let (modified, etag) = version(meta.ino(), len, meta.modified());
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

/// The `Last-Modified` time (clamped to 1970: HTTP dates start there)
/// and the strong ETag (inode, size, true modification time, sign and all).
fn version(ino: u64, len: u64, mtime: SystemTime) -> (SystemTime, String) {
    let (sign, since) = match mtime.duration_since(UNIX_EPOCH) {
        Ok(d) => ("", d),
        Err(e) => ("-", e.duration()),
    };
    let etag = format!(
        "\"{ino:x}-{len:x}-{sign}{:x}.{:x}\"",
        since.as_secs(),
        since.subsec_nanos()
    );
    (mtime.max(UNIX_EPOCH), etag)
}

/// `path` with its leading slashes made one, so that a redirect to it is
/// never protocol-relative (`//host/...`).
fn single_leading_slash(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

/// `Ok` if `path`, with every link resolved, is under `root` resolved;
/// else the 403 (or 404 for a path that does not exist).
async fn inside_root(root: &std::path::Path, path: &std::path::Path) -> Result<(), Box<Response>> {
    let (root, path) = (root.to_owned(), path.to_owned());
    let resolved = seastar_core::io::spawn_blocking(move || {
        let root = std::fs::canonicalize(root)?;
        let path = std::fs::canonicalize(path)?;
        Ok::<_, io::Error>(path.starts_with(root))
    })
    .await;
    match resolved {
        Ok(true) => Ok(()),
        Ok(false) => Err(Box::new(error(StatusCode::FORBIDDEN, "forbidden"))),
        Err(e) => Err(Box::new(io_error(&e))),
    }
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
    fn pre_1970_times_give_the_epoch_and_a_distinct_etag() {
        let before = UNIX_EPOCH - std::time::Duration::from_secs(315_619_200);
        let (m, etag) = version(7, 0, before);
        assert_eq!(m, UNIX_EPOCH);
        assert_eq!(httpdate::fmt_http_date(m), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(etag, "\"7-0--12cff780.0\"");
        let (_, after) = version(
            7,
            0,
            UNIX_EPOCH + std::time::Duration::from_secs(315_619_200),
        );
        assert_ne!(etag, after);
    }

    #[test]
    fn directory_redirects_are_never_protocol_relative() {
        assert_eq!(single_leading_slash("//sub"), "/sub");
        assert_eq!(single_leading_slash("///evil.com/x"), "/evil.com/x");
        assert_eq!(single_leading_slash("/a//b"), "/a//b");
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
