//! The peer of apps/httpd in the `http` bench suite: hyper 1.x on a tokio
//! current_thread runtime, one task per connection, the same hello handler
//! (`Hello, world!\n`, `text/plain; charset=utf-8`) and the same hyper
//! settings as seastar-http's server (keep-alive, `TCP_NODELAY`, 30 s
//! header read timeout, 64 KiB header buffer, and responses to pipelined
//! requests written together via `pipeline_flush`). `--flush-each`
//! leaves `pipeline_flush` at hyper's default instead (a write per
//! response; no response lost when a connection closes with requests
//! unread, the guarantee seastar-http keeps).

use std::convert::Infallible;
use std::time::Duration;

use clap::Parser;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

/// hyper hello server on tokio's current_thread runtime.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    listen: bench_peers::Listen,
    /// Flush after every response (hyper's default) instead of once per
    /// batch of pipelined requests.
    #[arg(long)]
    flush_each: bool,
}

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"Hello, world!\n")));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let pipeline_flush = !args.flush_each;
    bench_peers::serve_local(args.listen, move |stream| async move {
        let _ = stream.set_nodelay(true);
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .keep_alive(true)
            .max_buf_size(64 * 1024)
            .pipeline_flush(pipeline_flush)
            .serve_connection(TokioIo::new(stream), service_fn(hello))
            .await;
    })
}
