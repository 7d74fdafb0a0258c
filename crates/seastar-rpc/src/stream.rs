//! Streams: a bounded, flow-controlled [`Sink`]/[`Source`] pair per
//! streaming call.
//!
//! A client opens a stream with
//! [`RpcClient::open_stream`](crate::RpcClient::open_stream): it gets a
//! `Sink` of items to the server and a `Source` of items from it; the
//! handler registered with
//! [`RpcServer::register_stream`](crate::RpcServer::register_stream) gets
//! the mirror pair. Each direction is credit-based: a receiver grants
//! `window` items when it opens and grants more as its consumer takes
//! items, so a sender whose peer does not read stops in
//! [`Sink::send`] with at most `window` items buffered on the other side
//! (back-pressure reaches the producer, not memory).
//!
//! Ending: [`Sink::close`] (or dropping a client's sink) ends that
//! direction; the handler returning ends the whole stream with its status;
//! dropping a `Source` early tells the peer to stop sending.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::conn::Core;
use crate::error::RpcError;
use crate::frame::{FrameError, Header, Kind, Status};

/// How the inbound direction ended.
#[derive(Debug, Clone)]
enum End {
    Ok,
    Failed(Status, String),
    Lost(String),
}

/// The shared state of one stream on one side of a connection.
#[derive(Debug)]
pub(crate) struct StreamState {
    id: u64,
    /// A client's stream: the server ending it also ends our sending.
    client: bool,
    inbox: RefCell<VecDeque<Bytes>>,
    in_end: RefCell<Option<End>>,
    in_waker: RefCell<Option<Waker>>,
    credits: Cell<u32>,
    out_closed: Cell<bool>,
    local_end_sent: Cell<bool>,
    out_waker: RefCell<Option<Waker>>,
    /// Sink and source still alive on this side (client: removed from the table at 0).
    halves: Cell<u8>,
}

impl StreamState {
    pub(crate) fn new(id: u64, client: bool) -> Rc<StreamState> {
        Rc::new(StreamState {
            id,
            client,
            inbox: RefCell::default(),
            in_end: RefCell::default(),
            in_waker: RefCell::default(),
            credits: Cell::new(0),
            out_closed: Cell::new(false),
            local_end_sent: Cell::new(false),
            out_waker: RefCell::default(),
            halves: Cell::new(2),
        })
    }

    fn wake_in(&self) {
        if let Some(w) = self.in_waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn wake_out(&self) {
        if let Some(w) = self.out_waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// An item arrived; more than the granted window is a protocol error.
    pub(crate) fn deliver(&self, item: Bytes, window: u32) -> Result<(), RpcError> {
        if self.in_end.borrow().is_some() {
            return Ok(());
        }
        if self.inbox.borrow().len() >= window as usize {
            return Err(RpcError::Protocol(FrameError::Violation(format!(
                "stream {}: peer sent beyond its credit of {window} items",
                self.id
            ))));
        }
        self.inbox.borrow_mut().push_back(item);
        self.wake_in();
        Ok(())
    }

    /// The peer ended its direction.
    pub(crate) fn remote_end(&self, status: Status, msg: String) {
        if self.in_end.borrow().is_none() {
            *self.in_end.borrow_mut() = Some(match status {
                Status::Ok => End::Ok,
                s => End::Failed(s, msg),
            });
        }
        self.wake_in();
        if self.client {
            self.remote_stopped_reading();
        }
    }

    pub(crate) fn add_credit(&self, n: u32) {
        self.credits.set(self.credits.get().saturating_add(n));
        self.wake_out();
    }

    /// The peer will not read more: sending fails from now on.
    pub(crate) fn remote_stopped_reading(&self) {
        self.out_closed.set(true);
        self.wake_out();
    }

    /// The connection is gone.
    pub(crate) fn fail(&self, why: &str) {
        if self.in_end.borrow().is_none() {
            *self.in_end.borrow_mut() = Some(End::Lost(why.to_string()));
        }
        self.out_closed.set(true);
        self.wake_in();
        self.wake_out();
    }

    /// Whether our side already sent its end (a server uses this when the
    /// handler returns).
    pub(crate) fn local_end_sent(&self) -> bool {
        self.local_end_sent.get()
    }

    fn release_half(&self, core: &Core) {
        let h = self.halves.get().saturating_sub(1);
        self.halves.set(h);
        if h == 0 && self.client {
            core.streams.borrow_mut().remove(&self.id);
        }
    }
}

/// The sending half of a stream: typed items, at most the receiver's
/// window in flight.
///
/// ```no_run
/// # async fn f(client: seastar_rpc::RpcClient) -> Result<(), seastar_rpc::RpcError> {
/// let (mut sink, mut source) = client.open_stream::<(), u64, u64>(3, &()).await?;
/// for i in 0..10 {
///     sink.send(&i).await?; // waits while the server has `window` items unread
/// }
/// sink.close()?;
/// while let Some(item) = source.next().await {
///     println!("{}", item?);
/// }
/// # Ok(()) }
/// ```
pub struct Sink<T> {
    core: Rc<Core>,
    state: Rc<StreamState>,
    _t: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for Sink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("id", &self.state.id)
            .field("credits", &self.state.credits.get())
            .finish()
    }
}

impl<T: Serialize> Sink<T> {
    pub(crate) fn new(core: Rc<Core>, state: Rc<StreamState>) -> Sink<T> {
        Sink {
            core,
            state,
            _t: PhantomData,
        }
    }

    /// Sends one item, first waiting for credit from the receiver.
    /// [`RpcError::StreamClosed`] once this direction is closed or the
    /// peer stopped reading.
    pub async fn send(&mut self, item: &T) -> Result<(), RpcError> {
        let bytes = codec::encode(item)?;
        let state = self.state.clone();
        poll_fn(|cx| {
            if state.out_closed.get() || state.local_end_sent.get() {
                Poll::Ready(Err(RpcError::StreamClosed))
            } else if state.credits.get() > 0 {
                Poll::Ready(Ok(()))
            } else {
                *state.out_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await?;
        if !self.core.outbox.ready().await {
            return Err(RpcError::ConnectionLost("connection closed".into()));
        }
        self.state.credits.set(self.state.credits.get() - 1);
        self.core
            .send(Header::new(Kind::StreamData, self.state.id), &bytes)
    }

    /// Items that may be sent now without waiting.
    pub fn credits(&self) -> u32 {
        self.state.credits.get()
    }

    /// Ends this direction: the peer's source yields its remaining items,
    /// then `None`.
    pub fn close(&mut self) -> Result<(), RpcError> {
        self.end(Status::Ok, "")
    }

    pub(crate) fn end(&self, status: Status, msg: &str) -> Result<(), RpcError> {
        if self.state.local_end_sent.replace(true) {
            return Ok(());
        }
        let mut h = Header::new(Kind::StreamEnd, self.state.id);
        h.status = status as u16;
        self.core.send(h, msg.as_bytes())
    }
}

impl<T> Drop for Sink<T> {
    fn drop(&mut self) {
        // A client's sink ends its direction when dropped; a server's
        // direction ends with the handler's status when it returns.
        if self.state.client && !self.state.local_end_sent.replace(true) {
            let _ = self
                .core
                .send(Header::new(Kind::StreamEnd, self.state.id), &[]);
        }
        self.state.release_half(&self.core);
    }
}

/// The receiving half of a stream.
///
/// ```no_run
/// # async fn f(mut source: seastar_rpc::Source<String>) {
/// while let Some(item) = source.next().await {
///     match item {
///         Ok(s) => println!("{s}"),
///         Err(e) => eprintln!("stream failed: {e}"),
///     }
/// }
/// # }
/// ```
pub struct Source<T> {
    core: Rc<Core>,
    state: Rc<StreamState>,
    consumed: u32,
    done: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.state.id)
            .field("buffered", &self.state.inbox.borrow().len())
            .finish()
    }
}

impl<T: DeserializeOwned> Source<T> {
    /// A source that grants the sender its initial window.
    pub(crate) fn open(core: Rc<Core>, state: Rc<StreamState>) -> Source<T> {
        let mut credit = Header::new(Kind::StreamCredit, state.id);
        credit.verb = core.stream_window;
        let _ = core.send(credit, &[]);
        Source {
            core,
            state,
            consumed: 0,
            done: false,
            _t: PhantomData,
        }
    }

    /// The next item; `None` once the sender ended its direction.
    /// An error (at most once, then `None`) if it ended with one or the
    /// connection was lost.
    pub async fn next(&mut self) -> Option<Result<T, RpcError>> {
        if self.done {
            return None;
        }
        let state = self.state.clone();
        let item = poll_fn(|cx| {
            if let Some(b) = state.inbox.borrow_mut().pop_front() {
                return Poll::Ready(Ok(b));
            }
            if let Some(end) = state.in_end.borrow().clone() {
                return Poll::Ready(Err(end));
            }
            *state.in_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        match item {
            Ok(bytes) => {
                self.consumed += 1;
                if self.consumed >= (self.core.stream_window / 2).max(1) {
                    let mut credit = Header::new(Kind::StreamCredit, self.state.id);
                    credit.verb = std::mem::take(&mut self.consumed);
                    let _ = self.core.send(credit, &[]);
                }
                Some(codec::decode(&bytes))
            }
            Err(end) => {
                self.done = true;
                self.state.release_half(&self.core);
                match end {
                    End::Ok => None,
                    End::Failed(Status::Handler, msg) => Some(Err(RpcError::Server(msg))),
                    End::Failed(status, msg) => Some(Err(RpcError::from_status(status, 0, msg))),
                    End::Lost(why) => Some(Err(RpcError::ConnectionLost(why))),
                }
            }
        }
    }

    /// Items received and not yet taken (never more than the window).
    pub fn buffered(&self) -> usize {
        self.state.inbox.borrow().len()
    }
}

impl<T> Drop for Source<T> {
    fn drop(&mut self) {
        if !self.done {
            if self.state.in_end.borrow().is_none() {
                // Tell the sender to stop.
                let _ = self
                    .core
                    .send(Header::new(Kind::Cancel, self.state.id), &[]);
            }
            self.state.release_half(&self.core);
        }
    }
}
