//! One native connection on the server: negotiation, the reader that
//! dispatches frames, one task per call, and the outbox's writer.
//!
//! A connection is one task (plus one per call in flight): the loop that
//! reads and dispatches frames also drives the writer
//! ([`Outbox::poll_writer`](crate::conn::outbox::Outbox::poll_writer)) at
//! every wait, and what it shares with its calls (the table of calls in
//! flight, their count and request bytes) is one small [`Calls`]. An idle
//! connection is that task waiting for a pooled read and its idle timer,
//! with no receive or send buffer of its own (about 1.5 KB all told in a
//! debug build; `apps/rpc/tests/idle.rs` holds it under 2 KiB). The idle
//! timer stays armed across calls and is re-armed only when it fires
//! early, so a call costs no timer operation.
//!
//! What a client can make a connection hold, and for how long:
//!
//! - **Replies.** Before reading the next frame the reader waits while the
//!   unsent reply bytes exceed [`ServerOptions::output_budget`]; a client
//!   that stops reading is no longer read. If the replies stay over budget
//!   for the idle timeout, the connection is closed.
//! - **Requests.** Calls in flight and their request bytes are bounded
//!   (the reader pauses); a frame's buffer grows only as its bytes arrive
//!   (see `conn::reader`).
//! - **Time.** The negotiation frame must arrive within the negotiation
//!   timeout; a connection with no call in flight that receives nothing
//!   for the idle timeout is closed.
//! - **Ids.** A request whose id is that of a call or stream still in
//!   flight is a protocol error: it is answered with status `BadRequest`
//!   ("duplicate message id") under that id, the calls in flight are
//!   cancelled and the connection closes.
//! - **End.** The client's end of stream cancels its calls in flight (their
//!   handler futures are dropped, no reply is sent); so does any protocol
//!   error. Only a server stop lets the calls in flight finish and answer.
//!   Whatever way the connection ends (even a panic in its task, or the
//!   server dropping it at the stop deadline), [`ConnGuard`] cancels the
//!   calls and shuts the socket.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{Either, select};
use seastar_core::promise::{Promise, promise};
use seastar_core::spawn_local;
use seastar_core::timer::{self, Sleep};

use super::{Handler, Inner, Reply};
use crate::conn::outbox::Writer;
use crate::conn::{Core, Frame, ReadError, Reader, Transport};
use crate::error::RpcError;
use crate::frame::{Features, FrameError, Header, Kind, Negotiation, Status, flags};
use crate::stream::StreamState;

/// What a connection shares with its calls in flight: their cancel
/// promises by id, how many there are and the request bytes they hold,
/// and the connection's waker while it waits on them. The calls are
/// counted here rather than with semaphores: a semaphore is an allocation
/// of its own, and its wait list keeps its room once used.
struct Calls {
    /// The first call's promise inline: a connection with one call at a
    /// time (and an idle one) allocates no table.
    first: Cell<Option<(u64, Promise<()>)>>,
    /// The others.
    more: RefCell<HashMap<u64, Promise<()>>>,
    /// Calls in flight.
    count: Cell<usize>,
    /// Request bytes the calls in flight hold.
    bytes: Cell<usize>,
    /// When the last call ended (the idle timeout counts from then).
    quiet_since: Cell<Instant>,
    /// The connection waits for room: wake it at any call's end, not only
    /// the last one's.
    blocked: Cell<bool>,
    /// The connection's task, while it waits for room or for the last
    /// call to end.
    waiter: Cell<Option<Waker>>,
}

impl Calls {
    fn new() -> Calls {
        Calls {
            first: Cell::new(None),
            more: RefCell::default(),
            count: Cell::new(0),
            bytes: Cell::new(0),
            quiet_since: Cell::new(timer::lowres_now()),
            blocked: Cell::new(false),
            waiter: Cell::new(None),
        }
    }

    fn contains(&self, id: u64) -> bool {
        let first = self.first.take();
        let hit = matches!(&first, Some((f, _)) if *f == id);
        self.first.set(first);
        hit || self.more.borrow().contains_key(&id)
    }

    /// Registers a call that holds `bytes` of request.
    fn insert(&self, id: u64, cancel: Promise<()>, bytes: usize) {
        let first = self.first.take();
        if first.is_none() {
            self.first.set(Some((id, cancel)));
        } else {
            self.first.set(first);
            self.more.borrow_mut().insert(id, cancel);
        }
        self.count.set(self.count.get() + 1);
        self.bytes.set(self.bytes.get() + bytes);
    }

    /// Takes a call's cancel promise out of the table (the call is still
    /// counted until it ends).
    fn remove(&self, id: u64) -> Option<Promise<()>> {
        match self.first.take() {
            Some((f, p)) if f == id => return Some(p),
            first => self.first.set(first),
        }
        self.more.borrow_mut().remove(&id)
    }

    /// Takes every cancel promise (dropping them cancels the calls);
    /// returns how many there were.
    fn cancel_all(&self) -> usize {
        let first = self.first.take();
        let more = self.more.take();
        first.is_some() as usize + more.len()
    }

    /// A call holding `bytes` ended.
    fn ended(&self, id: u64, bytes: usize) {
        drop(self.remove(id));
        let n = self.count.get() - 1;
        self.count.set(n);
        self.bytes.set(self.bytes.get() - bytes);
        if n == 0 {
            self.quiet_since.set(timer::lowres_now());
            // An idle connection holds no table (a map keeps its room).
            let mut more = self.more.borrow_mut();
            if more.capacity() > 0 {
                *more = HashMap::new();
            }
        }
        if n == 0 || self.blocked.get() {
            if let Some(w) = self.waiter.take() {
                w.wake();
            }
        }
    }

    fn park(&self, cx: &Context<'_>) {
        let w = match self.waiter.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.waiter.set(Some(w));
    }

    /// Ready once fewer than `max_calls` calls are in flight and `need`
    /// more request bytes fit under `max_bytes`.
    fn poll_room(
        &self,
        cx: &Context<'_>,
        max_calls: usize,
        max_bytes: usize,
        need: usize,
    ) -> Poll<()> {
        if self.count.get() < max_calls && self.bytes.get() + need <= max_bytes {
            self.blocked.set(false);
            return Poll::Ready(());
        }
        self.blocked.set(true);
        self.park(cx);
        Poll::Pending
    }

    /// Ready once no call is in flight.
    fn poll_none(&self, cx: &Context<'_>) -> Poll<()> {
        if self.count.get() == 0 {
            return Poll::Ready(());
        }
        self.park(cx);
        Poll::Pending
    }
}

/// Cleans up a connection however its task ends (returned, dropped at the
/// stop deadline, or unwound by a panic): the calls in flight are
/// cancelled (dropping their promises wakes them with an error) and the
/// socket shut in both directions (the writer goes with the task).
struct ConnGuard<'a> {
    calls: Rc<Calls>,
    sock: &'a Transport,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.calls.cancel_all();
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

/// A call in flight: ends it in the table however its task ends.
struct CallEntry {
    calls: Rc<Calls>,
    id: u64,
    bytes: usize,
}

impl Drop for CallEntry {
    fn drop(&mut self) {
        self.calls.ended(self.id, self.bytes);
    }
}

/// The connection's writer, driven by its task at every wait.
struct Out<'a> {
    core: &'a Core,
    sock: &'a Transport,
    writer: Writer,
    /// The writer finished: drained after the close, or failed (then the
    /// outbox is closed and replies are dropped).
    done: bool,
}

impl Out<'_> {
    fn drive(&mut self, cx: &mut Context<'_>) {
        if self.done {
            return;
        }
        if let Poll::Ready(r) = self
            .core
            .outbox
            .poll_writer(&mut self.writer, self.sock, cx)
        {
            self.done = true;
            if let Err(e) = r {
                tracing::debug!(error = %e, "rpc: write failed; replies dropped");
            }
        }
    }
}

/// How the reading loop ended without an error.
enum End {
    /// The client closed its side (or the server's stop shut our read side).
    Eof,
    /// No call in flight and nothing received for the idle timeout.
    Idle,
    /// The replies stayed over the output budget for the idle timeout, or
    /// the writer failed.
    Stalled,
}

/// Whether the connection is idle: no call in flight and nothing
/// received for `idle`. The timer in `sleep` is armed when no call is in
/// flight and left armed across calls; when it fires early (bytes
/// arrived or a call ran since it was armed) it is re-armed from the
/// latest of the two, or, with calls in flight, the last call's end wakes
/// the connection to arm it again.
fn poll_idle(
    calls: &Calls,
    last_rx: &Cell<Instant>,
    sleep: &mut Option<Sleep>,
    idle: Duration,
    cx: &mut Context<'_>,
) -> bool {
    loop {
        let due = last_rx.get().max(calls.quiet_since.get()) + idle;
        let s = match sleep {
            Some(s) => s,
            None if calls.count.get() > 0 => {
                calls.park(cx);
                return false;
            }
            None => sleep.insert(timer::sleep_until(due)),
        };
        if Pin::new(&mut *s).poll(cx).is_pending() {
            return false;
        }
        let armed_for = s.deadline();
        *sleep = None;
        if calls.count.get() == 0 && due <= armed_for {
            return true;
        }
    }
}

/// Serves one connection to its end.
pub(super) async fn serve_connection(inner: Rc<Inner>, sock: Transport) -> Result<(), RpcError> {
    let inner = &inner;
    let opts = &inner.opts;
    let mut reader = Reader::new(&sock);
    // The one-off steps of a connection's life (negotiation, stalls, the
    // end) are boxed: inline, their futures would size every connection's
    // task, idle ones included (an idle connection's cost is its task).
    let (features, peer_max_frame) = {
        let negotiation = timer::timeout(opts.negotiation_timeout, reader.read_negotiation());
        let peer = match Box::pin(negotiation).await {
            Ok(r) => r?,
            Err(_) => {
                inner
                    .stats
                    .first_bytes_timeouts
                    .set(inner.stats.first_bytes_timeouts.get() + 1);
                return Err(RpcError::Timeout);
            }
        };
        let features = peer.features & opts.features;
        let ours = Negotiation {
            features,
            max_frame: opts.max_frame,
        };
        Box::pin(sock.write_all(ours.encode().to_vec())).await?;
        (features, peer.max_frame)
    };
    let core = Rc::new(Core::new(
        features,
        opts.max_frame,
        peer_max_frame,
        opts.stream_window,
    ));
    let calls = Rc::new(Calls::new());
    let guard = ConnGuard {
        calls: calls.clone(),
        sock: &sock,
    };
    let mut out = Out {
        core: &core,
        sock: &sock,
        writer: Writer::default(),
        done: false,
    };
    let decoder = core.decoder();
    let last_rx = Cell::new(timer::lowres_now());
    let mut idle_sleep: Option<Sleep> = None;
    let result: Result<End, RpcError> = loop {
        if core.outbox.unsent() > opts.output_budget
            && !Box::pin(drain_to_budget(
                &mut out,
                opts.output_budget,
                opts.idle_timeout,
            ))
            .await
        {
            break Ok(End::Stalled);
        }
        // Scoped: nothing of the read is held across the waits below.
        let frame = {
            let next = {
                let mut read = pin!(reader.read_frame(&decoder, &last_rx));
                poll_fn(|cx| {
                    out.drive(cx);
                    if let Poll::Ready(r) = read.as_mut().poll(cx) {
                        return Poll::Ready(Some(r));
                    }
                    match opts.idle_timeout {
                        Some(idle) if poll_idle(&calls, &last_rx, &mut idle_sleep, idle, cx) => {
                            Poll::Ready(None)
                        }
                        _ => Poll::Pending,
                    }
                })
                .await
            };
            match next {
                None => break Ok(End::Idle),
                Some(Ok(Some(f))) => f,
                Some(Ok(None)) => break Ok(End::Eof),
                Some(Err(ReadError::Header(bad))) => {
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
                Some(Err(e)) => break Err(e.into()),
            }
        };
        let h = frame.header;
        match h.kind {
            Kind::Request => {
                let call = match prepare(inner, &core, &calls, frame) {
                    Ok(Some(call)) => call,
                    Ok(None) => continue,
                    Err(e) => break Err(e),
                };
                // Wait for room (the reader pauses, so TCP holds the
                // client back). Rare, so boxed, the call moved in and out:
                // the connection's future is not sized by this wait.
                let (max_calls, max_bytes) = (opts.max_concurrent_calls, opts.max_in_flight_bytes);
                let noop = Context::from_waker(Waker::noop());
                let call = if calls
                    .poll_room(&noop, max_calls, max_bytes, call.bytes)
                    .is_pending()
                {
                    Box::pin(wait_room(&mut out, &calls, max_calls, max_bytes, call)).await
                } else {
                    call
                };
                start_call(inner, &core, &calls, call);
            }
            Kind::Cancel => {
                if let Some(c) = calls.remove(h.id) {
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
    drop(idle_sleep);
    Box::pin(finish(inner, &calls, &mut out, result)).await?;
    drop(guard);
    Ok(())
}

/// A request ready to start: its frame, its handler and the request
/// bytes it holds.
struct Call {
    frame: Frame,
    handler: Handler,
    bytes: usize,
}

/// Checks a request (its id must not be in flight, its verb must be
/// served): `Ok(None)` if it was answered at once (unknown verb), an error
/// that ends the connection for a duplicate id.
fn prepare(
    inner: &Inner,
    core: &Core,
    calls: &Calls,
    frame: Frame,
) -> Result<Option<Call>, RpcError> {
    let h = frame.header;
    let stream = h.flags & flags::STREAM != 0;
    let reply_kind = if stream {
        Kind::StreamEnd
    } else {
        Kind::Response
    };
    if calls.contains(h.id) || core.streams.borrow().contains_key(&h.id) {
        let why = format!("duplicate message id {}: that call is in flight", h.id);
        core.send_status(reply_kind, h.id, Status::BadRequest, &why);
        let dup = &inner.stats.duplicate_ids;
        dup.set(dup.get() + 1);
        return Err(RpcError::Protocol(FrameError::Violation(why)));
    }
    let handler = inner.handlers.borrow().get(&h.verb).cloned();
    let handler = match (handler, stream) {
        (Some(f @ Handler::Unary(_)), false) => f,
        (Some(f @ Handler::Stream(_)), true) if core.features.contains(Features::STREAMING) => f,
        _ => {
            core.send_status(
                reply_kind,
                h.id,
                Status::UnknownVerb,
                &format!("unknown verb {}", h.verb),
            );
            return Ok(None);
        }
    };
    let bytes = frame.payload.len().clamp(1, inner.opts.max_in_flight_bytes);
    Ok(Some(Call {
        frame,
        handler,
        bytes,
    }))
}

/// Waits, driving the writer, until `call` fits under the limits.
async fn wait_room(
    out: &mut Out<'_>,
    calls: &Calls,
    max_calls: usize,
    max_bytes: usize,
    call: Call,
) -> Call {
    poll_fn(|cx| {
        out.drive(cx);
        calls.poll_room(cx, max_calls, max_bytes, call.bytes)
    })
    .await;
    call
}

/// Starts a call in a task of its own, counted in `calls` until it ends.
fn start_call(inner: &Rc<Inner>, core: &Rc<Core>, calls: &Rc<Calls>, call: Call) {
    let Call {
        frame,
        handler,
        bytes,
    } = call;
    let h = frame.header;
    let (cancel_tx, cancel_rx) = promise::<()>();
    calls.insert(h.id, cancel_tx, bytes);
    let entry = CallEntry {
        calls: calls.clone(),
        id: h.id,
        bytes,
    };
    let deadline = h
        .timeout
        .filter(|_| core.features.contains(Features::TIMEOUTS))
        .map(|t| timer::now() + t);
    // The stream is registered before the next frame is read: the
    // client's credit for it follows the request at once.
    let (work, state) = match handler {
        Handler::Unary(f) => (f(frame.payload), None),
        Handler::Stream(f) => {
            let state = StreamState::new(h.id, false);
            core.streams.borrow_mut().insert(h.id, state.clone());
            (f(frame.payload, core.clone(), state.clone()), Some(state))
        }
    };
    let core = core.clone();
    let (inner, started) = (inner.clone(), timer::now());
    spawn_local(async move {
        let expiry = async move {
            match deadline {
                Some(d) => timer::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let expiry = pin!(expiry);
        let stop = select(cancel_rx, expiry);
        // A handler that panics answers `Internal`; its future is dropped.
        let work = std::panic::AssertUnwindSafe(work).catch_unwind();
        let reply = match select(work, stop).await {
            Either::Left((Ok(reply), _)) => Some(reply),
            Either::Left((Err(_), _)) => {
                Some(Reply::error(Status::Internal, "the handler panicked"))
            }
            // Cancelled by the client, or the connection is ending.
            Either::Right((Either::Left(_), _)) => None,
            Either::Right((Either::Right(_), _)) => {
                Some(Reply::error(Status::Timeout, "deadline exceeded"))
            }
        };
        drop(entry);
        inner.calls.ended(reply.as_ref(), timer::now() - started);
        send_reply(&core, h.id, reply, state);
    })
    .detach();
}

/// Waits, driving the writer, until at most `budget` reply bytes are
/// unsent; false if they stayed over it for `idle` (or the writer failed).
async fn drain_to_budget(out: &mut Out<'_>, budget: usize, idle: Option<Duration>) -> bool {
    let core = out.core;
    let mut within = pin!(core.outbox.within(budget));
    let drained = poll_fn(|cx| {
        out.drive(cx);
        within.as_mut().poll(cx)
    });
    match idle {
        Some(t) => timer::timeout(t, drained).await.unwrap_or(false),
        None => drained.await,
    }
}

/// The end of a connection whose reading loop ended with `result`: the
/// calls in flight are cancelled, or, at a server stop, answer; then the
/// replies left are flushed (for at most the idle timeout).
async fn finish(
    inner: &Rc<Inner>,
    calls: &Calls,
    out: &mut Out<'_>,
    result: Result<End, RpcError>,
) -> Result<(), RpcError> {
    let opts = &inner.opts;
    // Only a server stop lets the calls in flight answer: the client's end
    // of stream, an idle or stalled connection, or an error cancels them.
    let graceful = matches!(result, Ok(End::Eof)) && inner.stop.abort_requested();
    if !graceful {
        let cancelled = calls.cancel_all() as u64;
        inner
            .stats
            .cancelled_calls
            .set(inner.stats.cancelled_calls.get() + cancelled);
    }
    match result {
        Ok(End::Idle) => inner
            .stats
            .idle_closed
            .set(inner.stats.idle_closed.get() + 1),
        Ok(End::Stalled) => {
            let stalled = &inner.stats.stalled_closed;
            stalled.set(stalled.get() + 1);
            // The client takes no replies: do not wait to flush them (the
            // guard shuts the socket).
            return Ok(());
        }
        _ => {}
    }
    // Wait for the calls in flight (answering, or observing their
    // cancellation); a stop's deadline drops this whole future.
    poll_fn(|cx| {
        out.drive(cx);
        calls.poll_none(cx)
    })
    .await;
    out.core.fail_streams("connection closed");
    out.core.outbox.close();
    // Flush what is left (an error reply, the last answers), but not for
    // longer than a client may idle.
    let flushed = poll_fn(|cx| {
        out.drive(cx);
        if out.done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    match opts.idle_timeout {
        Some(t) => {
            if timer::timeout(t, flushed).await.is_err() {
                tracing::debug!("rpc: replies not taken by the client; dropped");
            }
        }
        None => flushed.await,
    }
    result.map(|_| ())
}

/// Sends a finished call's reply (or the end of its stream).
fn send_reply(core: &Core, id: u64, reply: Option<Reply>, state: Option<Rc<StreamState>>) {
    let Some(reply) = reply else {
        if let Some(state) = state {
            // Tell the client's sink to stop too.
            core.streams.borrow_mut().remove(&id);
            if !state.local_end_sent() {
                core.send_status(Kind::StreamEnd, id, Status::Cancelled, "cancelled");
            }
        }
        return;
    };
    match state {
        None => {
            let mut rh = Header::new(Kind::Response, id);
            rh.status = reply.status as u16;
            if let Err(e) = core.send(rh, &reply.payload) {
                core.send_status(
                    Kind::Response,
                    id,
                    Status::Internal,
                    &format!("response not sent: {e}"),
                );
            }
        }
        Some(state) => {
            core.streams.borrow_mut().remove(&id);
            if !state.local_end_sent() {
                let mut eh = Header::new(Kind::StreamEnd, id);
                eh.status = reply.status as u16;
                let _ = core.send(eh, &reply.payload);
            }
        }
    }
}
