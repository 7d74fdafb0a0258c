//! [`Router`]: method + path patterns to handlers.
//!
//! Patterns are `/`-separated segments: literal text, `{name}` (one
//! non-empty segment) or, last, `{*name}` (the rest of the path, possibly
//! empty, slashes included). Matching walks a segment tree and prefers a
//! literal over a parameter over a catch-all at each level, backtracking
//! when a more specific branch fails deeper down, so `/users/me` and
//! `/users/{id}` coexist. Parameter values are percent-decoded and put in
//! the request's extensions as [`PathParams`]; an escape that does not
//! decode to UTF-8 gets 400. A path no pattern matches gets the fallback
//! (404 by default); a matched path whose method has no handler gets 405
//! with `Allow` (see [`MethodRouter`]).

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use http::StatusCode;

use crate::handler::HandlerFuture;
use crate::request::PathParams;
use crate::routing::MethodRouter;
use crate::util::percent_decode;
use crate::{Handler, Request};

#[derive(Default)]
struct Node {
    statics: Vec<(Box<str>, Node)>,
    param: Option<(Arc<str>, Box<Node>)>,
    catch_all: Option<(Arc<str>, usize)>,
    endpoint: Option<usize>,
}

enum Seg<'a> {
    Static(&'a str),
    Param(&'a str),
    CatchAll(&'a str),
}

fn parse(pattern: &str) -> Vec<Seg<'_>> {
    let Some(rest) = pattern.strip_prefix('/') else {
        panic!("route pattern {pattern:?} must start with `/`");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(
            |(i, p)| match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if name.starts_with('*') => {
                    assert!(
                        i == last,
                        "catch-all {p} must be the last segment of {pattern:?}"
                    );
                    assert!(name.len() > 1, "catch-all in {pattern:?} needs a name");
                    Seg::CatchAll(&name[1..])
                }
                Some(name) => {
                    assert!(!name.is_empty(), "parameter in {pattern:?} needs a name");
                    Seg::Param(name)
                }
                None => {
                    assert!(
                        !p.contains(['{', '}']),
                        "segment {p:?} of {pattern:?} mixes text and braces"
                    );
                    Seg::Static(p)
                }
            },
        )
        .collect()
}

/// `(name, raw value)` pairs captured while matching.
type Captures<'p> = Vec<(Arc<str>, &'p str)>;

impl Node {
    /// The endpoint slot for `segs`, created (as `next`) if new.
    fn insert(&mut self, segs: &[Seg<'_>], next: usize) -> usize {
        let Some((first, rest)) = segs.split_first() else {
            return *self.endpoint.get_or_insert(next);
        };
        match first {
            Seg::Static(s) => {
                let i = match self.statics.iter().position(|(k, _)| &**k == *s) {
                    Some(i) => i,
                    None => {
                        self.statics.push(((*s).into(), Node::default()));
                        self.statics.len() - 1
                    }
                };
                self.statics[i].1.insert(rest, next)
            }
            Seg::Param(name) => {
                let (have, child) = self
                    .param
                    .get_or_insert_with(|| ((*name).into(), Box::default()));
                assert!(
                    &**have == *name,
                    "parameter {{{name}}} conflicts with {{{have}}} at the same place"
                );
                child.insert(rest, next)
            }
            Seg::CatchAll(name) => {
                let (have, slot) = self.catch_all.get_or_insert_with(|| ((*name).into(), next));
                assert!(
                    &**have == *name,
                    "catch-all {{*{name}}} conflicts with {{*{have}}} at the same place"
                );
                *slot
            }
        }
    }

    /// Matches `rest` (the path after a `/`; `None` once consumed).
    fn find<'p>(&self, rest: Option<&'p str>, caps: &mut Captures<'p>) -> Option<usize> {
        let Some(s) = rest else {
            return self.endpoint;
        };
        // A byte scan: segments are short, and `split_once` sets up a
        // general searcher (a measurable part of routing `/`).
        let (first, next) = match s.bytes().position(|b| b == b'/') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        for (k, child) in &self.statics {
            if &**k == first {
                if let Some(e) = child.find(next, caps) {
                    return Some(e);
                }
            }
        }
        if let Some((name, child)) = &self.param {
            if !first.is_empty() {
                caps.push((name.clone(), first));
                if let Some(e) = child.find(next, caps) {
                    return Some(e);
                }
                caps.pop();
            }
        }
        if let Some((name, e)) = &self.catch_all {
            caps.push((name.clone(), s));
            return Some(*e);
        }
        None
    }
}

/// Routes requests by path pattern and method; a [`Handler`] itself, so
/// routers nest and servers serve one.
///
/// ```
/// use seastar_http::{Request, RequestExt, Router, routing::{get, post}};
///
/// let router = Router::new()
///     .route("/", get(|_r: Request| async { "hello\n" }))
///     .route("/users/{id}", get(|r: Request| async move {
///         format!("user {}\n", r.param("id").unwrap())
///     }))
///     .route("/files/{*path}", get(|r: Request| async move {
///         format!("file {}\n", r.param("path").unwrap())
///     }))
///     .route("/echo", post(|r: Request| async move { r.into_body() }));
/// # let _ = router;
/// ```
pub struct Router {
    root: Node,
    endpoints: Vec<MethodRouter>,
    fallback: Option<Rc<dyn Handler>>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("endpoints", &self.endpoints.len())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl Router {
    /// A router with no routes (everything is 404).
    pub fn new() -> Router {
        Router {
            root: Node::default(),
            endpoints: Vec::new(),
            fallback: None,
        }
    }

    /// Routes `pattern` to `methods`; a second call with the same pattern
    /// adds methods to it.
    ///
    /// # Panics
    ///
    /// On a malformed pattern, a parameter name that conflicts with another
    /// route's at the same place, or a method routed twice.
    pub fn route(mut self, pattern: &str, methods: MethodRouter) -> Router {
        let segs = parse(pattern);
        let slot = self.root.insert(&segs, self.endpoints.len());
        if slot == self.endpoints.len() {
            self.endpoints.push(methods);
        } else {
            let old = std::mem::take(&mut self.endpoints[slot]);
            self.endpoints[slot] = old.merge(methods);
        }
        self
    }

    /// Answers requests no pattern matches (instead of 404).
    pub fn fallback(mut self, handler: impl Handler) -> Router {
        self.fallback = Some(Rc::new(handler));
        self
    }

    /// Decodes the captured parameters: `Err` with the response when one
    /// does not decode.
    fn decode(caps: Captures<'_>) -> Result<PathParams, Box<crate::Response>> {
        let mut params = PathParams::default();
        for (name, raw) in caps {
            match percent_decode(raw, false) {
                Some(v) => params.push(name, v),
                None => {
                    return Err(Box::new(crate::response::error(
                        StatusCode::BAD_REQUEST,
                        format!("path parameter `{name}` is not valid percent-encoded UTF-8"),
                    )));
                }
            }
        }
        Ok(params)
    }
}

impl Handler for Router {
    fn call(&self, mut req: Request) -> HandlerFuture {
        let mut caps = Vec::new();
        let found = req
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|rest| self.root.find(Some(rest), &mut caps));
        let Some(e) = found else {
            return match &self.fallback {
                Some(h) => h.call(req),
                None => Box::pin(std::future::ready(crate::response::error(
                    StatusCode::NOT_FOUND,
                    "not found",
                ))),
            };
        };
        // No parameters (most routes): nothing to decode, insert or drop.
        if !caps.is_empty() {
            match Router::decode(caps) {
                Ok(params) => {
                    req.extensions_mut().insert(params);
                }
                Err(resp) => return Box::pin(std::future::ready(*resp)),
            }
        }
        self.endpoints[e].dispatch(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RequestExt;
    use crate::routing::{any, get, post};
    use http::Method;

    fn router() -> Router {
        let echo_params = |r: Request| async move {
            let p = r.params();
            let mut v: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
            v.insert(0, r.method().to_string());
            v.join(" ")
        };
        Router::new()
            .route("/", get(echo_params))
            .route("/users", get(echo_params).post(echo_params))
            .route("/users/me", get(echo_params))
            .route("/users/{id}", get(echo_params).delete(echo_params))
            .route("/users/{id}/posts/{post}", get(echo_params))
            .route("/static/{*path}", get(echo_params))
            .route("/a/{x}/c", get(echo_params))
            .route("/a/b/d", get(echo_params))
            .route("/any", any(echo_params))
            .route("/users/{id}/edit", post(echo_params))
    }

    fn call(r: &Router, method: Method, path: &str) -> (u16, String, Option<String>) {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .body(crate::Body::empty())
            .unwrap();
        let resp = futures::executor::block_on(r.call(req));
        let allow = resp
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = resp.status().as_u16();
        let body = futures::executor::block_on(resp.into_body().to_bytes()).unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), allow)
    }

    #[test]
    fn literals_beat_parameters_and_parameters_are_decoded() {
        let r = router();
        assert_eq!(call(&r, Method::GET, "/").1, "GET");
        assert_eq!(call(&r, Method::GET, "/users/me").1, "GET");
        assert_eq!(call(&r, Method::GET, "/users/42").1, "GET id=42");
        assert_eq!(call(&r, Method::GET, "/users/a%20b").1, "GET id=a b");
        assert_eq!(
            call(&r, Method::GET, "/users/7/posts/x").1,
            "GET id=7 post=x"
        );
        // Backtracking: `/a/b/c` fails under the literal `b`, then matches `{x}`.
        assert_eq!(call(&r, Method::GET, "/a/b/c").1, "GET x=b");
        assert_eq!(call(&r, Method::GET, "/a/b/d").1, "GET");
    }

    #[test]
    fn catch_all_takes_the_rest_including_slashes() {
        let r = router();
        assert_eq!(
            call(&r, Method::GET, "/static/css/site.css").1,
            "GET path=css/site.css"
        );
        assert_eq!(call(&r, Method::GET, "/static/").1, "GET path=");
        assert_eq!(call(&r, Method::GET, "/static").0, 404);
    }

    #[test]
    fn unknown_paths_get_404_and_wrong_methods_405_with_allow() {
        let r = router();
        assert_eq!(call(&r, Method::GET, "/nope").0, 404);
        assert_eq!(call(&r, Method::GET, "/users/").0, 404, "empty parameter");
        assert_eq!(call(&r, Method::GET, "/users/1/posts").0, 404);
        let (status, body, allow) = call(&r, Method::PUT, "/users/1");
        assert_eq!(status, 405);
        assert_eq!(body, "method PUT not allowed\n");
        assert_eq!(allow.unwrap(), "GET, DELETE, HEAD, OPTIONS");
        let (status, _, allow) = call(&r, Method::OPTIONS, "/users");
        assert_eq!(status, 204);
        assert_eq!(allow.unwrap(), "GET, POST, HEAD, OPTIONS");
        assert_eq!(call(&r, Method::HEAD, "/users/1").1, "HEAD id=1");
        assert_eq!(call(&r, Method::PATCH, "/any").1, "PATCH");
    }

    #[test]
    fn bad_escapes_in_parameters_get_400() {
        let r = router();
        assert_eq!(call(&r, Method::GET, "/users/%FF").0, 400);
        assert_eq!(call(&r, Method::GET, "/users/%zz").0, 400);
    }

    #[test]
    fn fallback_answers_unmatched_paths() {
        let r = router().fallback(|_r: Request| async { (StatusCode::IM_A_TEAPOT, "tea") });
        assert_eq!(call(&r, Method::GET, "/nope").0, 418);
    }

    #[test]
    fn nested_router_is_a_handler() {
        let inner = Router::new().route(
            "/in/{x}",
            get(|r: Request| async move { format!("inner {}", r.param("x").unwrap()) }),
        );
        let outer = Router::new().route("/in/{*rest}", any(inner));
        assert_eq!(call(&outer, Method::GET, "/in/5").1, "inner 5");
    }

    #[test]
    #[should_panic(expected = "conflicts")]
    fn conflicting_parameter_names_panic() {
        let h = |_r: Request| async { "" };
        let _ = Router::new()
            .route("/u/{id}", get(h))
            .route("/u/{name}/x", get(h));
    }

    #[test]
    #[should_panic(expected = "already set")]
    fn a_method_routed_twice_panics() {
        let h = |_r: Request| async { "" };
        let _ = Router::new().route("/u", get(h)).route("/u", get(h));
    }
}
