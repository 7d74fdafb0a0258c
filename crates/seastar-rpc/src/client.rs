//! [`RpcClient`]: calls multiplexed on one connection, with timeouts,
//! cancellation on drop, streams, and reconnection.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{Either, select};
use seastar_core::promise::{Promise, promise};
use seastar_core::sync::Semaphore;
use seastar_core::{spawn_local, timer};
use seastar_net::TcpStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::conn::{Core, Reader, Transport};
use crate::error::{CallError, RpcError};
use crate::frame::{
    DEFAULT_MAX_FRAME, Features, FrameError, Header, Kind, Negotiation, Status, flags,
};
use crate::stream::{Sink, Source, StreamState};

/// Client settings.
///
/// ```
/// use std::time::Duration;
/// let opts = seastar_rpc::ClientOptions::default().timeout(Duration::from_secs(1));
/// assert_eq!(opts.timeout, Some(Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Largest response payload accepted.
    pub max_frame: u32,
    /// Features offered at negotiation.
    pub features: Features,
    /// Limit on connecting plus negotiating.
    pub connect_timeout: Duration,
    /// Items the server may send ahead on a stream.
    pub stream_window: u32,
    /// Timeout of [`RpcClient::call`] (none by default).
    pub timeout: Option<Duration>,
    /// Connect over TLS (feature `tls`; see [`crate::tls`]); `None`: plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ClientTls>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_frame: DEFAULT_MAX_FRAME,
            features: Features::supported(),
            connect_timeout: Duration::from_secs(10),
            stream_window: 16,
            timeout: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ClientOptions {
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
    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Sets [`stream_window`](Self::stream_window).
    pub fn stream_window(mut self, items: u32) -> Self {
        self.stream_window = items.max(1);
        self
    }
    /// Sets the default call [`timeout`](Self::timeout).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Sets [`tls`](Self::tls): sessions from `connector`, with a server
    /// whose certificate names `server_name` (sent as SNI).
    #[cfg(feature = "tls")]
    pub fn tls(
        mut self,
        connector: seastar_net::tls::TlsConnector,
        server_name: impl Into<String>,
    ) -> Self {
        self.tls = Some(crate::tls::ClientTls::new(connector, server_name));
        self
    }
}

/// One negotiated connection.
struct ClientConn {
    core: Rc<Core>,
    sock: Rc<Transport>,
    pending: RefCell<HashMap<u64, Promise<(Status, Bytes)>>>,
    next_id: Cell<u64>,
    broken: Cell<bool>,
    lost: RefCell<String>,
}

impl ClientConn {
    fn fail(&self, why: &str) {
        if self.broken.replace(true) {
            return;
        }
        *self.lost.borrow_mut() = why.to_string();
        self.core.outbox.close();
        self.core.fail_streams(why);
        // Dropping the promises fails the calls waiting on them.
        drop(self.pending.take());
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }

    fn lost(&self) -> RpcError {
        RpcError::ConnectionLost(self.lost.borrow().clone())
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1).max(1));
        id
    }
}

async fn read_loop(conn: Rc<ClientConn>, mut input: Reader) {
    let decoder = conn.core.decoder();
    let last_rx = Cell::new(timer::lowres_now());
    let why = loop {
        match input.read_frame(&decoder, &last_rx).await {
            Ok(Some(f)) => match f.header.kind {
                Kind::Response => {
                    let p = conn.pending.borrow_mut().remove(&f.header.id);
                    if let Some(p) = p {
                        p.set_value((Status::from_u16(f.header.status), f.payload));
                    }
                }
                Kind::StreamData | Kind::StreamEnd | Kind::StreamCredit | Kind::Cancel => {
                    if let Err(e) = conn.core.on_stream_frame(f) {
                        break e.to_string();
                    }
                }
                Kind::Request => break "the server sent a request frame".to_string(),
            },
            Ok(None) => break "closed by the server".to_string(),
            Err(e) => break RpcError::from(e).to_string(),
        }
    };
    tracing::debug!(reason = %why, "rpc client: connection ended");
    conn.fail(&why);
}

/// The connection's transport: `tcp` itself, or a TLS session over it.
async fn transport(tcp: TcpStream, opts: &ClientOptions) -> Result<Transport, RpcError> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &opts.tls {
        let handshake = tls.connector.connect(&tls.server_name, tcp);
        let session = match timer::timeout(opts.connect_timeout, handshake).await {
            Ok(r) => r?,
            Err(_) => return Err(RpcError::Timeout),
        };
        return Ok(Transport::Tls(Box::new(crate::conn::tls::SharedTls::new(
            session,
        ))));
    }
    #[cfg(not(feature = "tls"))]
    let _ = opts;
    Ok(Transport::Tcp(Rc::new(tcp)))
}

async fn establish(addr: SocketAddr, opts: &ClientOptions) -> Result<Rc<ClientConn>, RpcError> {
    let tcp = TcpStream::connect_timeout(addr, opts.connect_timeout).await?;
    let _ = tcp.set_nodelay(true);
    let sock = Rc::new(transport(tcp, opts).await?);
    let ours = Negotiation {
        features: opts.features,
        max_frame: opts.max_frame,
    };
    sock.write_all(ours.encode().to_vec()).await?;
    let mut input = Reader::new(sock.clone());
    let theirs = match timer::timeout(opts.connect_timeout, input.read_negotiation()).await {
        Ok(Ok(n)) => n,
        Ok(Err(RpcError::Io(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(RpcError::Negotiation(FrameError::Violation(
                "the server closed the connection during negotiation".into(),
            )));
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(RpcError::Timeout),
    };
    let features = theirs.features & opts.features;
    let core = Rc::new(Core::new(
        features,
        opts.max_frame,
        theirs.max_frame,
        opts.stream_window,
    ));
    let (c, s) = (core.clone(), sock.clone());
    spawn_local(async move { c.outbox.run_writer(&s).await }).detach();
    let conn = Rc::new(ClientConn {
        core,
        sock,
        pending: RefCell::default(),
        next_id: Cell::new(1),
        broken: Cell::new(false),
        lost: RefCell::default(),
    });
    spawn_local(read_loop(conn.clone(), input)).detach();
    Ok(conn)
}

struct Inner {
    addr: SocketAddr,
    opts: ClientOptions,
    conn: RefCell<Option<Rc<ClientConn>>>,
    connecting: Semaphore,
    connects: Cell<u64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            c.fail("client dropped");
        }
    }
}

/// A connection to an [`RpcServer`](crate::RpcServer), shared by any number
/// of concurrent calls on this shard (clones share it). If the connection
/// fails, the calls in flight fail with [`RpcError::ConnectionLost`] and
/// the next call reconnects.
///
/// ```
/// use std::time::Duration;
/// use seastar_rpc::{CallError, RpcClient, RpcError, RpcServer, ServerOptions};
///
/// seastar_core::block_on(async {
///     let server = RpcServer::new(ServerOptions::default());
///     server.register(1, |x: u32| async move {
///         if x == 0 { Err("zero".to_string()) } else { Ok(100 / x) }
///     });
///     let addr = server.listen("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
///     let client = RpcClient::connect(addr).await.unwrap();
///     assert_eq!(client.call::<_, u32, String>(1, &4u32).await.unwrap(), 25);
///     let err = client.call::<_, u32, String>(1, &0u32).await.unwrap_err();
///     assert_eq!(err.handler().as_deref(), Some("zero"));
///     let err = client.call::<_, u32, String>(9, &0u32).await.unwrap_err();
///     assert!(matches!(err, CallError::Rpc(RpcError::UnknownVerb(9))));
///     drop(client);
///     server.stop().await;
/// });
/// ```
#[derive(Clone)]
pub struct RpcClient {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("addr", &self.inner.addr)
            .field("connects", &self.inner.connects.get())
            .finish()
    }
}

/// An in-flight call: dropping it before the response removes the call
/// and sends a cancel frame.
struct PendingCall<'a> {
    conn: &'a ClientConn,
    id: u64,
    armed: bool,
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.conn.pending.borrow_mut().remove(&self.id);
        if self.conn.core.features.contains(Features::CANCELLATION) && !self.conn.broken.get() {
            let _ = self.conn.core.send(Header::new(Kind::Cancel, self.id), &[]);
        }
    }
}

impl RpcClient {
    /// Connects to `addr` with default options.
    pub async fn connect(addr: SocketAddr) -> Result<RpcClient, RpcError> {
        RpcClient::connect_with(addr, ClientOptions::default()).await
    }

    /// Connects and negotiates with `addr`; a peer that is not a
    /// seastar-rpc server fails with [`RpcError::Negotiation`].
    pub async fn connect_with(
        addr: SocketAddr,
        opts: ClientOptions,
    ) -> Result<RpcClient, RpcError> {
        let conn = establish(addr, &opts).await?;
        Ok(RpcClient {
            inner: Rc::new(Inner {
                addr,
                opts,
                conn: RefCell::new(Some(conn)),
                connecting: Semaphore::new(1),
                connects: Cell::new(1),
            }),
        })
    }

    /// Connections made so far (1 plus reconnections).
    pub fn connects(&self) -> u64 {
        self.inner.connects.get()
    }

    /// The features negotiated on the current connection, if it is up.
    pub fn features(&self) -> Option<Features> {
        let c = self.inner.conn.borrow();
        c.as_ref()
            .filter(|c| !c.broken.get())
            .map(|c| c.core.features)
    }

    /// The live connection, reconnecting if the last one failed.
    async fn conn(&self) -> Result<Rc<ClientConn>, RpcError> {
        let live = || {
            let c = self.inner.conn.borrow();
            c.as_ref().filter(|c| !c.broken.get()).cloned()
        };
        if let Some(c) = live() {
            return Ok(c);
        }
        let _permit = self
            .inner
            .connecting
            .acquire(1)
            .await
            .map_err(|e| RpcError::ConnectionLost(e.to_string()))?;
        if let Some(c) = live() {
            return Ok(c);
        }
        let c = establish(self.inner.addr, &self.inner.opts).await?;
        self.inner.connects.set(self.inner.connects.get() + 1);
        *self.inner.conn.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    /// Calls `verb` with `req`, with the client's default timeout.
    pub async fn call<Req, Resp, E>(&self, verb: u32, req: &Req) -> Result<Resp, CallError<E>>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
        E: DeserializeOwned,
    {
        self.call_with_timeout(verb, req, self.inner.opts.timeout)
            .await
    }

    /// Calls `verb` with `req`, failing with [`RpcError::Timeout`] after
    /// `timeout` (sent along, so the server drops the handler too).
    /// Dropping the returned future cancels the call.
    pub async fn call_with_timeout<Req, Resp, E>(
        &self,
        verb: u32,
        req: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp, CallError<E>>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
        E: DeserializeOwned,
    {
        let payload = codec::encode(req)?;
        let deadline = timeout.map(|t| timer::now() + t);
        let work = async {
            let conn = self.conn().await?;
            if !conn.core.outbox.ready().await {
                return Err(conn.lost().into());
            }
            let id = conn.next_id();
            let (tx, rx) = promise();
            conn.pending.borrow_mut().insert(id, tx);
            let mut guard = PendingCall {
                conn: &conn,
                id,
                armed: true,
            };
            let sent_timeout = deadline
                .filter(|_| conn.core.features.contains(Features::TIMEOUTS))
                .map(|d| d.saturating_duration_since(timer::now()));
            if let Err(e) = conn
                .core
                .send(Header::request(verb, id, 0, sent_timeout), &payload)
            {
                guard.armed = false;
                conn.pending.borrow_mut().remove(&id);
                return Err(e.into());
            }
            let r = rx.await;
            guard.armed = false;
            let (status, body) = r.map_err(|_| conn.lost())?;
            match status {
                Status::Ok => Ok(codec::decode(&body)?),
                Status::Handler => Err(CallError::Handler(codec::decode(&body)?)),
                s => {
                    Err(
                        RpcError::from_status(s, verb, String::from_utf8_lossy(&body).into_owned())
                            .into(),
                    )
                }
            }
        };
        match deadline {
            None => work.await,
            Some(d) => {
                let work = std::pin::pin!(work);
                match select(work, timer::sleep_until(d)).await {
                    Either::Left((r, _)) => r,
                    Either::Right(_) => Err(RpcError::Timeout.into()),
                }
            }
        }
    }

    /// Opens a stream on streaming `verb`: a [`Sink`] of `Out` items to the
    /// handler and a [`Source`] of its `In` items.
    pub async fn open_stream<Req, Out, In>(
        &self,
        verb: u32,
        req: &Req,
    ) -> Result<(Sink<Out>, Source<In>), RpcError>
    where
        Req: Serialize + ?Sized,
        Out: Serialize,
        In: DeserializeOwned,
    {
        let payload = codec::encode(req)?;
        let conn = self.conn().await?;
        if !conn.core.features.contains(Features::STREAMING) {
            return Err(RpcError::NotNegotiated("streaming"));
        }
        let id = conn.next_id();
        let state = StreamState::new(id, true);
        conn.core.streams.borrow_mut().insert(id, state.clone());
        let mut h = Header::request(verb, id, 0, None);
        h.flags |= flags::STREAM;
        if let Err(e) = conn.core.send(h, &payload) {
            conn.core.streams.borrow_mut().remove(&id);
            return Err(e);
        }
        let source = Source::open(conn.core.clone(), state.clone());
        Ok((Sink::new(conn.core.clone(), state), source))
    }
}
