//! One native connection on the server: negotiation, the reader that
//! dispatches frames, one task per call, and the outbox's writer.
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
//!   calls, stops the writer and shuts the socket.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{Either, select};
use seastar_core::promise::{Promise, promise};
use seastar_core::sync::Semaphore;
use seastar_core::task::JoinHandle;
use seastar_core::{spawn_local, timer};

use super::{Handler, Inner, Reply};
use crate::conn::{Core, ReadError, Reader, Transport};
use crate::error::RpcError;
use crate::frame::{Features, FrameError, Header, Kind, Negotiation, Status, flags};
use crate::stream::StreamState;

type Calls = Rc<RefCell<HashMap<u64, Promise<()>>>>;

/// Cleans up a connection however its task ends (returned, dropped at the
/// stop deadline, or unwound by a panic): the calls in flight are
/// cancelled (dropping their promises wakes them with an error), the
/// writer is stopped and the socket shut in both directions.
struct ConnGuard {
    calls: Calls,
    writer: Option<JoinHandle<std::io::Result<()>>>,
    sock: Rc<Transport>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        drop(self.calls.take());
        if let Some(w) = self.writer.take() {
            w.abort();
        }
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

/// Removes a call from the connection's table however its task ends.
struct CallEntry {
    calls: Calls,
    id: u64,
}

impl Drop for CallEntry {
    fn drop(&mut self) {
        let mut calls = self.calls.borrow_mut();
        calls.remove(&self.id);
        // An idle connection holds no table (a map keeps its room).
        if calls.is_empty() {
            *calls = HashMap::new();
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

/// Resolves once the connection has had no call in flight and received
/// nothing for `idle`. Holds every call permit while it waits, which is
/// harmless: it runs only while the reader waits for a frame.
async fn idle_watch(limit: &Semaphore, all: usize, last_rx: &Cell<Instant>, idle: Duration) {
    let Ok(_quiet) = limit.acquire(all).await else {
        return std::future::pending().await;
    };
    let quiet_since = timer::now();
    loop {
        let deadline = last_rx.get().max(quiet_since) + idle;
        if timer::now() >= deadline {
            return;
        }
        timer::sleep_until(deadline).await;
    }
}

/// Serves one connection to its end.
pub(super) async fn serve_connection(
    inner: &Rc<Inner>,
    sock: Rc<Transport>,
) -> Result<(), RpcError> {
    let opts = &inner.opts;
    let mut reader = Reader::new(sock.clone());
    // The one-off steps of a connection's life (negotiation, stalls, the
    // end) are boxed: inline, their futures would size every connection's
    // task, idle ones included (an idle connection's cost is its task).
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
    let core = Rc::new(Core::new(
        features,
        opts.max_frame,
        peer.max_frame,
        opts.stream_window,
    ));
    let mut guard = ConnGuard {
        calls: Rc::default(),
        writer: Some(spawn_local(core.outbox.clone().run_writer(sock.clone()))),
        sock: sock.clone(),
    };
    let limit = Semaphore::new(opts.max_concurrent_calls);
    let memory = Semaphore::new(opts.max_in_flight_bytes);
    let decoder = core.decoder();
    let last_rx = reader.last_rx();
    let result: Result<End, RpcError> = loop {
        if core.outbox.unsent() > opts.output_budget {
            let drained = core.outbox.within(opts.output_budget);
            let drained = match opts.idle_timeout {
                Some(t) => Box::pin(timer::timeout(t, drained)).await.unwrap_or(false),
                None => Box::pin(drained).await,
            };
            if !drained {
                break Ok(End::Stalled);
            }
        }
        let next = {
            let read = pin!(reader.read_frame(&decoder));
            match opts.idle_timeout {
                None => read.await,
                Some(idle) => {
                    let all = opts.max_concurrent_calls;
                    let watch = pin!(idle_watch(&limit, all, &last_rx, idle));
                    match select(read, watch).await {
                        Either::Left((r, _)) => r,
                        Either::Right(_) => break Ok(End::Idle),
                    }
                }
            }
        };
        let frame = match next {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(End::Eof),
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
                let stream = h.flags & flags::STREAM != 0;
                let reply_kind = if stream {
                    Kind::StreamEnd
                } else {
                    Kind::Response
                };
                if guard.calls.borrow().contains_key(&h.id)
                    || core.streams.borrow().contains_key(&h.id)
                {
                    let why = format!("duplicate message id {}: that call is in flight", h.id);
                    core.send_status(reply_kind, h.id, Status::BadRequest, &why);
                    inner
                        .stats
                        .duplicate_ids
                        .set(inner.stats.duplicate_ids.get() + 1);
                    break Err(RpcError::Protocol(FrameError::Violation(why)));
                }
                let handler = inner.handlers.borrow().get(&h.verb).cloned();
                let handler = match (handler, stream) {
                    (Some(Handler::Unary(f)), false) => Either::Left(f),
                    (Some(Handler::Stream(f)), true) if features.contains(Features::STREAMING) => {
                        Either::Right(f)
                    }
                    _ => {
                        core.send_status(
                            reply_kind,
                            h.id,
                            Status::UnknownVerb,
                            &format!("unknown verb {}", h.verb),
                        );
                        continue;
                    }
                };
                let Ok(permit) = limit.acquire(1).await else {
                    break Ok(End::Eof);
                };
                let bytes = frame.payload.len().clamp(1, opts.max_in_flight_bytes);
                let Ok(held) = memory.acquire(bytes).await else {
                    break Ok(End::Eof);
                };
                let (cancel_tx, cancel_rx) = promise::<()>();
                guard.calls.borrow_mut().insert(h.id, cancel_tx);
                let entry = CallEntry {
                    calls: guard.calls.clone(),
                    id: h.id,
                };
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
                let core = core.clone();
                let (inner, started) = (inner.clone(), timer::now());
                spawn_local(async move {
                    let _permit = (permit, held);
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
            Kind::Cancel => {
                let cancel = guard.calls.borrow_mut().remove(&h.id);
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
    // Only a server stop lets the calls in flight answer: the client's end
    // of stream, an idle or stalled connection, or an error cancels them.
    let graceful = matches!(result, Ok(End::Eof)) && inner.stop.abort_requested();
    if !graceful {
        let cancelled = guard.calls.take().len() as u64;
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
            // guard stops the writer and shuts the socket).
            return Ok(());
        }
        _ => {}
    }
    // Wait for the calls in flight (answering, or observing their
    // cancellation); a stop's deadline drops this whole future.
    let _ = limit.acquire(opts.max_concurrent_calls).await;
    core.fail_streams("connection closed");
    core.outbox.close();
    if let Some(writer) = guard.writer.take() {
        // Flush what is left (an error reply, the last answers), but not
        // for longer than a client may idle.
        match opts.idle_timeout {
            Some(t) => {
                if Box::pin(timer::timeout(t, writer)).await.is_err() {
                    tracing::debug!("rpc: replies not taken by the client; dropped");
                }
            }
            None => {
                let _ = writer.await;
            }
        }
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
