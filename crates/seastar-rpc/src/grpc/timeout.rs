//! The `grpc-timeout` request header, enforced on the shard's timers.
//!
//! tonic enforces it only in its transport server, which needs tokio; this
//! layer does the same on [`seastar_core::timer`]: a call still running
//! when its timeout passes has its handler future dropped and is answered
//! `DEADLINE_EXCEEDED`.

use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{Either, LocalBoxFuture, select};
use http::{Request, Response};
use seastar_core::timer;
use tower_service::Service;

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit (`H`
/// hours, `M` minutes, `S` seconds, `m` ms, `u` µs, `n` ns). `None` for a
/// malformed value (which the spec says to ignore).
///
/// ```
/// use std::time::Duration;
/// use seastar_rpc::grpc::parse_grpc_timeout;
/// assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
/// assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
/// assert_eq!(parse_grpc_timeout("123456789S"), None);
/// assert_eq!(parse_grpc_timeout("5x"), None);
/// ```
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A tower layer-like wrapper: races each call against its
/// `grpc-timeout` and answers `DEADLINE_EXCEEDED` when the timer wins.
///
/// ```
/// let routes = tonic::service::Routes::default();
/// let _svc = seastar_rpc::grpc::GrpcTimeout::new(routes);
/// ```
#[derive(Debug, Clone)]
pub struct GrpcTimeout<S> {
    inner: S,
}

impl<S> GrpcTimeout<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> GrpcTimeout<S> {
        GrpcTimeout { inner }
    }
}

impl<S, B, RB> Service<Request<B>> for GrpcTimeout<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: 'static,
    RB: Default + 'static,
    S::Error: 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = LocalBoxFuture<'static, Result<Response<RB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let t = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let fut = self.inner.call(req);
        match t {
            None => fut.boxed_local(),
            Some(t) => async move {
                let fut = std::pin::pin!(fut);
                match select(fut, timer::sleep(t)).await {
                    Either::Left((r, _)) => r,
                    Either::Right(_) => Ok(tonic::Status::deadline_exceeded(format!(
                        "deadline of {t:?} exceeded"
                    ))
                    .into_http()),
                }
            }
            .boxed_local(),
        }
    }
}
