//! [`Handler`]: what a route dispatches to. Async closures (which may be
//! `!Send`: a shard never moves its requests), any [`tower::Service`]
//! through [`from_service`] (an axum `Router`, a tonic service, a tower
//! stack), static files, redirects, and a [`Router`](crate::Router) itself.
//!
//! [`tower::Service`]: tower_service::Service

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use futures::FutureExt;
use http::StatusCode;

use crate::body::BoxError;
use crate::{Body, IntoResponse, Request, Response};

/// The future a [`Handler`] returns: boxed, `!Send` allowed.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response>>>;

/// Answers requests. Implemented for every `Fn(Request) -> impl Future<Output
/// = impl IntoResponse>` closure, so most handlers are plain async closures.
///
/// ```
/// use std::rc::Rc;
/// use std::cell::Cell;
/// use seastar_http::{Handler, Request};
///
/// // Shard-local state without locks: an Rc<Cell> captured by the closure.
/// let hits = Rc::new(Cell::new(0u64));
/// let h = move |_req: Request| {
///     let hits = hits.clone();
///     async move {
///         hits.set(hits.get() + 1);
///         format!("hit {}\n", hits.get())
///     }
/// };
/// let resp = futures::executor::block_on(h.call(Request::new(Default::default())));
/// assert_eq!(resp.status(), 200);
/// ```
pub trait Handler: 'static {
    /// Answers one request.
    fn call(&self, req: Request) -> HandlerFuture;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse + 'static,
{
    fn call(&self, req: Request) -> HandlerFuture {
        Box::pin(self(req).map(IntoResponse::into_response))
    }
}

impl Handler for Rc<dyn Handler> {
    fn call(&self, req: Request) -> HandlerFuture {
        (**self).call(req)
    }
}

/// A [`tower::Service`](tower_service::Service) as a [`Handler`]: each
/// request goes to a clone of the service (waiting for `poll_ready`), so an
/// axum `Router`, a tonic service or any tower stack can be mounted on a
/// route. A service error becomes a 500 naming it.
///
/// ```
/// use seastar_http::{Request, Router, from_service, routing::any};
///
/// let svc = tower::service_fn(|req: Request| async move {
///     Ok::<_, std::convert::Infallible>(http::Response::new(seastar_http::Body::from(
///         format!("tower saw {}", req.uri().path()),
///     )))
/// });
/// let _router = Router::new().route("/api/{*rest}", any(from_service(svc)));
/// ```
pub fn from_service<S, B>(service: S) -> ServiceHandler<S>
where
    S: tower_service::Service<Request, Response = http::Response<B>> + Clone + 'static,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    B: http_body::Body<Data = Bytes> + 'static,
    B::Error: Into<BoxError>,
{
    ServiceHandler { service }
}

/// A tower service mounted as a handler; see [`from_service`].
#[derive(Clone)]
pub struct ServiceHandler<S> {
    service: S,
}

impl<S> fmt::Debug for ServiceHandler<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceHandler")
    }
}

impl<S, B> Handler for ServiceHandler<S>
where
    S: tower_service::Service<Request, Response = http::Response<B>> + Clone + 'static,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    B: http_body::Body<Data = Bytes> + 'static,
    B::Error: Into<BoxError>,
{
    fn call(&self, req: Request) -> HandlerFuture {
        let mut svc = self.service.clone();
        Box::pin(async move {
            let served = async {
                std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
                svc.call(req).await
            };
            match served.await {
                Ok(resp) => resp.map(Body::new),
                Err(e) => {
                    let e: BoxError = e.into();
                    tracing::warn!(error = %e, "service failed");
                    crate::response::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                }
            }
        })
    }
}
