//! [`RpcServer`]: verbs, handlers, and the connection loop that serves them.
//!
//! One server per shard (start it with [`Sharded`](seastar_core::smp::Sharded)
//! and [`RpcServer::listen`] on each shard, which binds the shard's own
//! `SO_REUSEPORT` listener). Each connection: the negotiation, a reader
//! that dispatches frames, one task per call, and a writer that batches
//! responses. Calls in flight per connection are bounded
//! ([`ServerOptions::max_concurrent_calls`]), and so are the request bytes
//! they hold ([`ServerOptions::max_in_flight_bytes`]): at either bound the
//! reader stops reading, so a client that sends faster than handlers finish
//! is held back by TCP.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{Either, LocalBoxFuture, select};
use seastar_core::promise::{Promise, promise};
use seastar_core::smp::StopHook;
use seastar_core::sync::{AbortSource, Semaphore};
use seastar_core::{spawn_local, timer};
use seastar_net::stream::InputStream;
use seastar_net::{Connections, ListenOptions, TcpListener, TcpStream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::conn::{Core, READ_SIZE, ReadError, read_negotiation};
use crate::error::RpcError;
use crate::frame::{
    DEFAULT_MAX_FRAME, Features, FrameError, Header, Kind, Negotiation, Status, flags,
};
use crate::stream::{Sink, Source, StreamState};

/// Server settings.
///
/// ```
/// use std::time::Duration;
/// let opts = seastar_rpc::ServerOptions::default()
///     .max_frame(1 << 20)
///     .negotiation_timeout(Duration::from_secs(2));
/// assert_eq!(opts.max_frame, 1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request payload accepted; a larger frame gets a
    /// `FrameTooLarge` response and the connection is closed.
    pub max_frame: u32,
    /// Features offered at negotiation (the connection uses those the client also offers).
    pub features: Features,
    /// Calls served at once per connection before the reader pauses.
    pub max_concurrent_calls: usize,
    /// Request payload bytes held by the calls in flight on a connection
    /// before the reader pauses (a single larger request still runs, alone).
    pub max_in_flight_bytes: usize,
    /// How long a new connection may take to send its negotiation frame.
    pub negotiation_timeout: Duration,
    /// Items a client may send ahead on a stream (the receive window).
    pub stream_window: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_frame: DEFAULT_MAX_FRAME,
            features: Features::supported(),
            max_concurrent_calls: 1024,
            max_in_flight_bytes: 64 << 20,
            negotiation_timeout: Duration::from_secs(10),
            stream_window: 16,
        }
    }
}

impl ServerOptions {
    /// Sets [`max_frame`](Self::max_frame).
    pub fn max_frame(mut self, bytes: u32) -> Self {
        self.max_frame = bytes;
        self
    }
    /// Sets [`features`](Self::features).
    pub fn features(mut self, f: Features) -> Self {
        self.features = f;
        self
    }
    /// Sets [`max_concurrent_calls`](Self::max_concurrent_calls).
    pub fn max_concurrent_calls(mut self, n: usize) -> Self {
        self.max_concurrent_calls = n.max(1);
        self
    }
    /// Sets [`max_in_flight_bytes`](Self::max_in_flight_bytes).
    pub fn max_in_flight_bytes(mut self, bytes: usize) -> Self {
        self.max_in_flight_bytes = bytes.max(1);
        self
    }
    /// Sets [`negotiation_timeout`](Self::negotiation_timeout).
    pub fn negotiation_timeout(mut self, d: Duration) -> Self {
        self.negotiation_timeout = d;
        self
    }
    /// Sets [`stream_window`](Self::stream_window).
    pub fn stream_window(mut self, items: u32) -> Self {
        self.stream_window = items.max(1);
        self
    }
}

/// What a handler produced, ready for the wire.
struct Reply {
    status: Status,
    payload: Vec<u8>,
}

impl Reply {
    fn error(status: Status, msg: impl Display) -> Reply {
        Reply {
            status,
            payload: msg.to_string().into_bytes(),
        }
    }
}

type UnaryFn = dyn Fn(Bytes) -> LocalBoxFuture<'static, Reply>;
type StreamFn = dyn Fn(Bytes, Rc<Core>, Rc<StreamState>) -> LocalBoxFuture<'static, Reply>;

#[derive(Clone)]
enum Handler {
    Unary(Rc<UnaryFn>),
    Stream(Rc<StreamFn>),
}

struct Inner {
    opts: ServerOptions,
    handlers: RefCell<HashMap<u32, Handler>>,
    conns: Rc<Connections>,
    stop: AbortSource,
    accepting: Cell<usize>,
}

/// A native RPC server on one shard.
///
/// ```
/// use seastar_rpc::{RpcClient, RpcServer, ServerOptions};
///
/// seastar_core::block_on(async {
///     let server = RpcServer::new(ServerOptions::default());
///     server.register(1, |name: String| async move { Ok::<_, String>(format!("Hello {name}!")) });
///     let addr = server.listen("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
///     let client = RpcClient::connect(addr).await.unwrap();
///     let reply: String = client.call::<_, _, String>(1, &"rpc".to_string()).await.unwrap();
///     assert_eq!(reply, "Hello rpc!");
///     drop(client);
///     server.stop().await;
/// });
/// ```
#[derive(Clone)]
pub struct RpcServer {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for RpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcServer")
            .field("verbs", &self.inner.handlers.borrow().len())
            .field("connections", &self.inner.conns.len())
            .finish()
    }
}

impl RpcServer {
    /// A server with no verbs yet.
    pub fn new(opts: ServerOptions) -> RpcServer {
        RpcServer {
            inner: Rc::new(Inner {
                opts,
                handlers: RefCell::default(),
                conns: Rc::default(),
                stop: AbortSource::new(),
                accepting: Cell::new(0),
            }),
        }
    }

    /// Serves `verb` with `handler`: the argument is deserialized into
    /// `Req`, `Ok` is serialized back, and `Err(e)` reaches the client as
    /// [`CallError::Handler(e)`](crate::CallError::Handler). A call that is
    /// cancelled or runs past its timeout has its future dropped.
    /// Registering a verb again replaces its handler.
    pub fn register<Req, Resp, E, F, Fut>(&self, verb: u32, handler: F)
    where
        Req: DeserializeOwned + 'static,
        Resp: Serialize + 'static,
        E: Serialize + 'static,
        F: Fn(Req) -> Fut + 'static,
        Fut: Future<Output = Result<Resp, E>> + 'static,
    {
        let f = move |payload: Bytes| -> LocalBoxFuture<'static, Reply> {
            let req: Req = match codec::decode(&payload) {
                Ok(r) => r,
                Err(e) => {
                    return std::future::ready(Reply::error(Status::BadRequest, e)).boxed_local();
                }
            };
            let fut = handler(req);
            async move {
                let (status, body) = match fut.await {
                    Ok(resp) => (Status::Ok, codec::encode(&resp)),
                    Err(e) => (Status::Handler, codec::encode(&e)),
                };
                match body {
                    Ok(payload) => Reply { status, payload },
                    Err(e) => Reply::error(Status::Internal, e),
                }
            }
            .boxed_local()
        };
        self.inner
            .handlers
            .borrow_mut()
            .insert(verb, Handler::Unary(Rc::new(f)));
    }

    /// Serves streaming `verb`: the handler gets the opening argument, a
    /// [`Source`] of the client's items and a [`Sink`] to the client. When
    /// it returns, the stream ends with its status (`Err(e)` reaches the
    /// client's source as [`RpcError::Server`] with `e`'s text).
    pub fn register_stream<Req, In, Out, E, F, Fut>(&self, verb: u32, handler: F)
    where
        Req: DeserializeOwned + 'static,
        In: DeserializeOwned + 'static,
        Out: Serialize + 'static,
        E: Display + 'static,
        F: Fn(Req, Source<In>, Sink<Out>) -> Fut + 'static,
        Fut: Future<Output = Result<(), E>> + 'static,
    {
        let f = move |payload: Bytes,
                      core: Rc<Core>,
                      state: Rc<StreamState>|
              -> LocalBoxFuture<'static, Reply> {
            let req: Req = match codec::decode(&payload) {
                Ok(r) => r,
                Err(e) => {
                    return std::future::ready(Reply::error(Status::BadRequest, e)).boxed_local();
                }
            };
            let source = Source::open(core.clone(), state.clone());
            let sink = Sink::new(core, state);
            let fut = handler(req, source, sink);
            async move {
                match fut.await {
                    Ok(()) => Reply {
                        status: Status::Ok,
                        payload: Vec::new(),
                    },
                    Err(e) => Reply::error(Status::Handler, e),
                }
            }
            .boxed_local()
        };
        self.inner
            .handlers
            .borrow_mut()
            .insert(verb, Handler::Stream(Rc::new(f)));
    }

    /// Binds `addr` on this shard and serves connections in the
    /// background until [`stop`](Self::stop); returns the bound address.
    pub async fn listen(
        &self,
        addr: SocketAddr,
        opts: ListenOptions,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr, opts).await?;
        let local = listener.local_addr()?;
        let server = self.clone();
        spawn_local(async move { server.serve(listener).await }).detach();
        Ok(local)
    }

    /// Accepts and serves connections from `listener` until
    /// [`stop`](Self::stop) or an accept error.
    pub async fn serve(&self, listener: TcpListener) {
        let inner = &self.inner;
        if inner.stop.abort_requested() {
            return;
        }
        inner.accepting.set(inner.accepting.get() + 1);
        loop {
            let accept = std::pin::pin!(listener.accept());
            match select(accept, inner.stop.aborted()).await {
                Either::Left((Ok((conn, _peer)), _)) => {
                    let _ = conn.set_nodelay(true);
                    self.spawn_connection(conn);
                }
                Either::Left((Err(e), _)) => {
                    tracing::error!(error = %e, "rpc: accept failed; no longer accepting");
                    break;
                }
                Either::Right(_) => break,
            }
        }
        inner.accepting.set(inner.accepting.get() - 1);
    }

    /// Serves one accepted connection in the background (tracked for [`stop`](Self::stop)).
    pub fn spawn_connection(&self, conn: TcpStream) {
        let conn = Rc::new(conn);
        let id = self.inner.conns.insert(conn.clone());
        let inner = self.inner.clone();
        spawn_local(async move {
            if let Err(e) = serve_connection(&inner, conn).await {
                tracing::debug!(error = %e, "rpc: connection ended with an error");
            }
            inner.conns.remove(id);
        })
        .detach();
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.inner.conns.len()
    }

    /// Stops accepting, ends every connection after the calls in flight
    /// have answered, and waits for them.
    pub async fn stop(&self) {
        self.inner.stop.request_abort();
        self.inner.conns.shutdown_all();
        self.inner.conns.wait_idle().await;
    }
}

impl StopHook for RpcServer {
    async fn stop(self: Rc<Self>) {
        RpcServer::stop(&self).await
    }
}

/// Serves one connection to its end.
async fn serve_connection(inner: &Rc<Inner>, sock: Rc<TcpStream>) -> Result<(), RpcError> {
    let opts = &inner.opts;
    let mut input = InputStream::with_read_size(sock.clone(), READ_SIZE);
    let peer = match timer::timeout(opts.negotiation_timeout, read_negotiation(&mut input)).await {
        Ok(r) => r?,
        Err(_) => return Err(RpcError::Timeout),
    };
    let features = peer.features & opts.features;
    let ours = Negotiation {
        features,
        max_frame: opts.max_frame,
    };
    let (r, _) = sock.write_all(ours.encode().to_vec()).await;
    r?;
    let core = Rc::new(Core::new(
        features,
        opts.max_frame,
        peer.max_frame,
        opts.stream_window,
    ));
    let writer = spawn_local(core.outbox.clone().run_writer(sock.clone()));
    let calls: Rc<RefCell<HashMap<u64, Promise<()>>>> = Rc::default();
    let limit = Rc::new(Semaphore::new(opts.max_concurrent_calls));
    let memory = Rc::new(Semaphore::new(opts.max_in_flight_bytes));
    let result = loop {
        let frame = match core.read_frame(&mut input).await {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(ReadError::Header(bad)) => {
                if bad.kind == Kind::Request as u8 {
                    if let FrameError::TooLarge { .. } = bad.error {
                        core.send_status(
                            Kind::Response,
                            bad.id,
                            Status::FrameTooLarge,
                            &bad.error.to_string(),
                        );
                    }
                }
                break Err(RpcError::Protocol(bad.error));
            }
            Err(e) => break Err(e.into()),
        };
        let h = frame.header;
        match h.kind {
            Kind::Request => {
                let handler = inner.handlers.borrow().get(&h.verb).cloned();
                let stream = h.flags & flags::STREAM != 0;
                let handler = match (handler, stream) {
                    (Some(Handler::Unary(f)), false) => Either::Left(f),
                    (Some(Handler::Stream(f)), true) if features.contains(Features::STREAMING) => {
                        Either::Right(f)
                    }
                    _ => {
                        let kind = if stream {
                            Kind::StreamEnd
                        } else {
                            Kind::Response
                        };
                        core.send_status(
                            kind,
                            h.id,
                            Status::UnknownVerb,
                            &format!("unknown verb {}", h.verb),
                        );
                        continue;
                    }
                };
                let Ok(permit) = limit.acquire(1).await else {
                    break Ok(());
                };
                let bytes = frame.payload.len().clamp(1, opts.max_in_flight_bytes);
                let Ok(held) = memory.acquire(bytes).await else {
                    break Ok(());
                };
                let (cancel_tx, cancel_rx) = promise::<()>();
                calls.borrow_mut().insert(h.id, cancel_tx);
                let deadline = h
                    .timeout
                    .filter(|_| features.contains(Features::TIMEOUTS))
                    .map(|t| timer::now() + t);
                // The stream is registered before the next frame is read:
                // the client's credit for it follows the request at once.
                let (work, state) = match handler {
                    Either::Left(f) => (f(frame.payload), None),
                    Either::Right(f) => {
                        let state = StreamState::new(h.id, false);
                        core.streams.borrow_mut().insert(h.id, state.clone());
                        (f(frame.payload, core.clone(), state.clone()), Some(state))
                    }
                };
                let (core, calls) = (core.clone(), calls.clone());
                spawn_local(async move {
                    let _permit = (permit, held);
                    let expiry = async move {
                        match deadline {
                            Some(d) => timer::sleep_until(d).await,
                            None => std::future::pending().await,
                        }
                    };
                    let expiry = std::pin::pin!(expiry);
                    let stop = select(cancel_rx, expiry);
                    let reply = match select(work, stop).await {
                        Either::Left((reply, _)) => Some(reply),
                        // Cancelled by the client, or the connection is ending with an error.
                        Either::Right((Either::Left(_), _)) => None,
                        Either::Right((Either::Right(_), _)) => {
                            Some(Reply::error(Status::Timeout, "deadline exceeded"))
                        }
                    };
                    calls.borrow_mut().remove(&h.id);
                    let Some(reply) = reply else {
                        if let Some(state) = state {
                            // Tell the client's sink to stop too.
                            core.streams.borrow_mut().remove(&h.id);
                            if !state.local_end_sent() {
                                core.send_status(
                                    Kind::StreamEnd,
                                    h.id,
                                    Status::Cancelled,
                                    "cancelled",
                                );
                            }
                        }
                        return;
                    };
                    match state {
                        None => {
                            let mut rh = Header::new(Kind::Response, h.id);
                            rh.status = reply.status as u16;
                            if let Err(e) = core.send(rh, &reply.payload) {
                                core.send_status(
                                    Kind::Response,
                                    h.id,
                                    Status::Internal,
                                    &format!("response not sent: {e}"),
                                );
                            }
                        }
                        Some(state) => {
                            core.streams.borrow_mut().remove(&h.id);
                            if !state.local_end_sent() {
                                let mut eh = Header::new(Kind::StreamEnd, h.id);
                                eh.status = reply.status as u16;
                                let _ = core.send(eh, &reply.payload);
                            }
                        }
                    }
                })
                .detach();
            }
            Kind::Cancel => {
                let cancel = calls.borrow_mut().remove(&h.id);
                if let Some(c) = cancel {
                    c.set_value(());
                }
                if let Err(e) = core.on_stream_frame(frame) {
                    break Err(e);
                }
            }
            Kind::StreamData | Kind::StreamEnd | Kind::StreamCredit => {
                if let Err(e) = core.on_stream_frame(frame) {
                    break Err(e);
                }
            }
            Kind::Response => {
                break Err(FrameError::Violation("a client sent a response frame".into()).into());
            }
        }
    };
    if result.is_err() {
        // Nobody will read the answers: cancel the calls in flight.
        for (_, c) in calls.take() {
            c.set_value(());
        }
    }
    // Let the calls in flight answer (or observe their cancellation).
    let _ = limit.acquire(opts.max_concurrent_calls).await;
    core.fail_streams("connection closed");
    core.outbox.close();
    let _ = writer.await;
    let _ = sock.shutdown(std::net::Shutdown::Both);
    result
}
