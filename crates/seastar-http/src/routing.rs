//! [`MethodRouter`]: which handler answers which method on one path, and
//! the functions that start one ([`get`], [`post`], ... [`any`]).
//!
//! HEAD is answered by the GET handler when none is set for HEAD (hyper
//! sends the headers and drops the body). A method with no handler gets
//! 405 with an `Allow` header listing the ones there are; OPTIONS with no
//! handler gets 204 and the same `Allow`.

use std::fmt;
use std::rc::Rc;

use http::header::{ALLOW, HeaderValue};
use http::{Method, StatusCode};

use crate::handler::HandlerFuture;
use crate::{Handler, IntoResponse, Request, Response};

/// Handlers of one path by method.
///
/// ```
/// use seastar_http::{Request, Router, routing::get};
///
/// let _r = Router::new().route(
///     "/items/{id}",
///     get(|_r: Request| async { "show" }).delete(|_r: Request| async { "gone" }),
/// );
/// ```
#[derive(Clone, Default)]
pub struct MethodRouter {
    methods: Vec<(Method, Rc<dyn Handler>)>,
    any: Option<Rc<dyn Handler>>,
}

impl fmt::Debug for MethodRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.methods.iter().map(|(m, _)| m.as_str()).collect();
        f.debug_struct("MethodRouter")
            .field("methods", &names)
            .field("any", &self.any.is_some())
            .finish()
    }
}

macro_rules! method_fns {
    ($($name:ident $chain:ident $method:ident;)*) => {
        $(
            #[doc = concat!("A [`MethodRouter`] answering ", stringify!($method), " with `handler`.")]
            pub fn $name(handler: impl Handler) -> MethodRouter {
                MethodRouter::default().on(Method::$method, handler)
            }
        )*

        impl MethodRouter {
            $(
                #[doc = concat!("Also answers ", stringify!($method), " with `handler`.")]
                pub fn $chain(self, handler: impl Handler) -> MethodRouter {
                    self.on(Method::$method, handler)
                }
            )*
        }
    };
}

method_fns! {
    get get GET;
    post post POST;
    put put PUT;
    delete delete DELETE;
    patch patch PATCH;
    head head HEAD;
    options options OPTIONS;
}

/// A [`MethodRouter`] answering every method with `handler` (a mounted
/// tower service, a proxy).
pub fn any(handler: impl Handler) -> MethodRouter {
    MethodRouter {
        methods: Vec::new(),
        any: Some(Rc::new(handler)),
    }
}

/// A [`MethodRouter`] answering `method` (any method, extension methods too).
///
/// ```
/// let _m = seastar_http::routing::on(http::Method::from_bytes(b"PURGE").unwrap(), |_r: seastar_http::Request| async { "purged" });
/// ```
pub fn on(method: Method, handler: impl Handler) -> MethodRouter {
    MethodRouter::default().on(method, handler)
}

impl MethodRouter {
    /// Also answers `method` with `handler`.
    ///
    /// # Panics
    ///
    /// If `method` already has a handler.
    pub fn on(mut self, method: Method, handler: impl Handler) -> MethodRouter {
        assert!(
            !self.methods.iter().any(|(m, _)| *m == method),
            "a handler for {method} is already set"
        );
        self.methods.push((method, Rc::new(handler)));
        self
    }

    /// Adds `other`'s handlers to these.
    ///
    /// # Panics
    ///
    /// If both answer the same method, or both have an `any` handler.
    pub(crate) fn merge(mut self, other: MethodRouter) -> MethodRouter {
        for (m, h) in other.methods {
            assert!(
                !self.methods.iter().any(|(x, _)| *x == m),
                "a handler for {m} is already set on this path"
            );
            self.methods.push((m, h));
        }
        if let Some(h) = other.any {
            assert!(
                self.any.is_none(),
                "an `any` handler is already set on this path"
            );
            self.any = Some(h);
        }
        self
    }

    #[inline]
    fn find(&self, method: &Method) -> Option<&Rc<dyn Handler>> {
        let exact = |want: &Method| self.methods.iter().find(|(m, _)| m == want).map(|e| &e.1);
        exact(method)
            .or_else(|| {
                (*method == Method::HEAD)
                    .then(|| exact(&Method::GET))
                    .flatten()
            })
            .or(self.any.as_ref())
    }

    /// The `Allow` header: the methods with handlers, HEAD with GET.
    fn allow(&self) -> HeaderValue {
        let mut names: Vec<&str> = self.methods.iter().map(|(m, _)| m.as_str()).collect();
        if names.contains(&"GET") && !names.contains(&"HEAD") {
            names.push("HEAD");
        }
        if !names.contains(&"OPTIONS") {
            names.push("OPTIONS");
        }
        HeaderValue::from_str(&names.join(", ")).expect("method names are header-safe")
    }

    /// [`Handler::call`], inlined into the [`Router`](crate::Router)'s own
    /// call: one dynamic call and one move of the request fewer per
    /// request (callgrind on the hello route: about 180 instructions).
    #[inline(always)]
    pub(crate) fn dispatch(&self, req: Request) -> HandlerFuture {
        match self.find(req.method()) {
            Some(h) => h.call(req),
            None => Box::pin(std::future::ready(self.no_handler(req.method()))),
        }
    }

    /// 204 for OPTIONS, else 405; both with `Allow`.
    #[cold]
    #[inline(never)]
    fn no_handler(&self, method: &Method) -> Response {
        let mut r = if *method == Method::OPTIONS {
            StatusCode::NO_CONTENT.into_response()
        } else {
            crate::response::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} not allowed"),
            )
        };
        r.headers_mut().insert(ALLOW, self.allow());
        r
    }
}

impl Handler for MethodRouter {
    fn call(&self, req: Request) -> HandlerFuture {
        self.dispatch(req)
    }
}
