//! HTTP/1 connections: hyper serves them in bursts of requests, and a
//! connection at rest between bursts is parked without hyper.
//!
//! A hyper HTTP/1 connection holds an 8 KiB read buffer and an 8 KiB write
//! buffer for as long as it lives, so 10,000 idle keep-alive connections
//! held about 130 MB (nginx: 5 MB). Here, once a connection has been at
//! rest for [`PARK_AFTER`] (hyper idle between requests with nothing of
//! the next one read, every response byte handed to the socket), the
//! driver asks hyper to close it: `graceful_shutdown` on an idle hyper
//! connection closes it at once without a word to the client. The driver
//! takes back the socket, the request count and whatever bytes hyper had
//! read (`without_shutdown` + `into_parts`) and drops the rest with hyper's
//! buffers. It then waits for the client's next byte (one byte read, the
//! socket lends its buffer for the rest) and a new hyper connection serves
//! what comes.
//!
//! What a parked connection holds is what an idle connection costs, so it
//! is kept to the socket and a few words: [`Http1`] is the connection's
//! whole future (no `async fn` state around it), [`Phase::Parked`] holds
//! the socket, the bytes read for the next burst, the request count, the
//! time of the last byte and the header deadline; the per-burst state
//! (hyper's connection, the coalescing writer of `coalesce`, the
//! `ConnWatch`, hyper's header-read [`HeadState`]) is one box built when a burst starts
//! and dropped when it parks. The task is then about 300 bytes (was 1.2
//! KB with the `async fn` layers, which keep every argument twice); with
//! the socket's own poll state, the reactor's, timer and stop-signal
//! slots and the heap's holes, httpd's `tests/idle.rs` measures 0.9 to
//! 1.6 KB of resident memory per idle connection on either backend, most
//! runs 1.0 to 1.3 (was 1.9 to 2.3 KB).
//!
//! hyper has no public "idle" state, so the driver parks only when all of
//! these hold, each of which it sees itself: hyper's last poll polled
//! its header sleep (see `head`: hyper is reading a request head, which after a
//! request on the same hyper connection means it is idle in its keep-alive
//! sense), a request was served in this burst (the first head of a hyper
//! connection is read with keep-alive still "busy", where a graceful
//! shutdown would not close at once), hyper's last read found the socket
//! empty (what it had read is at most the start of a head, given back
//! whole by `into_parts`), its last write was taken (its own write buffer
//! is empty), no handler runs, and the stop has not begun. Should hyper
//! not close at once after all, it is left alone: its keep-alive is then
//! off, so it finishes the exchange and closes, as on a stop.
//!
//! Why not park at once: a burst costs a few allocations and an 8 KiB
//! read reserve, which a client that keeps its connection busy
//! (benchmarks, pipelines) should not pay per request; such a connection
//! is never at rest for [`PARK_AFTER`], and its driver looks once per
//! [`PARK_AFTER`], when the connection's one timer fires.
//!
//! What parking keeps as it was: the header read timeout (the next hyper
//! connection's first head keeps the deadline of the wait that parking
//! interrupted, see `head`; a parked connection closes at that deadline
//! as hyper would, counted as an error); the idle timeout (on the last
//! byte moved, parked or not); the per-connection request cap (the count
//! goes from one hyper connection's service to the next); a graceful stop
//! (a parked connection closes at once, as hyper closes an idle one);
//! pipelined order (never parked with a request read); the output budget
//! and write coalescing (`coalesce`; a burst parks only once all it wrote
//! was sent); the counters.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use hyper::rt::{Read, Write};
use hyper::server::conn::http1;
use seastar_core::sync::Aborted;
use seastar_core::timer::{self, Sleep, lowres_now};

use super::coalesce::{self, Coalesce, Pending};
use super::conn::ConnService;
use super::head::{HeadState, HeadTimer, NO_TIMEOUT};
use super::options::Config;
use super::{ConnWatch, Shared, bump};
use crate::metrics::Closed;

/// How long a connection stays at rest before it is parked.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(20);

type Conn<I> = http1::Connection<Coalesce<I>, ConnService>;

/// How serving a connection ended.
enum End {
    /// Closed by hyper (end of stream, `Connection: close`, stop) or, while
    /// parked, by the client's end of stream or the stop.
    Closed,
    /// hyper failed (malformed request, header timeout, socket error).
    Failed(String),
    /// The socket failed while parked.
    Dropped(String),
    /// No byte moved for the idle timeout.
    IdleClosed,
    /// A parked connection's next request head did not come in time.
    HeadTimeout,
}

/// One HTTP/1 connection's future, from its first byte to its close; see
/// the [module docs](self).
pub(super) struct Http1<I> {
    link: Link,
    phase: Phase<I>,
}

/// What every phase of a connection uses.
struct Link {
    shared: Rc<Shared>,
    peer: SocketAddr,
    /// The server's graceful stop.
    stop: Aborted,
    /// `stop` was polled (pending): it holds this task's waker, and the
    /// stop's flag alone says whether polling it again can finish it.
    stop_armed: bool,
    /// The stop was seen (and hyper asked to finish).
    stopping: bool,
    /// The connection's one timer: idle and park checks while serving,
    /// the header and idle deadlines while parked.
    timer: Sleep,
    /// `tick` polled `timer` (pending) since it was last reset: it holds
    /// this task's waker (one task drives a connection for its life).
    timer_armed: bool,
}

enum Phase<I> {
    /// At rest without hyper: waiting for the client's next byte.
    Parked(Parked<I>),
    /// hyper serves a burst of requests.
    Serving(Box<Burst<I>>),
    /// Sending the last bytes (and shutting the socket's sending side).
    Finishing(Pin<Box<dyn Future<Output = ()>>>),
    Done,
}

/// A connection between bursts: what outlives a hyper connection.
struct Parked<I> {
    io: I,
    /// Bytes read for the next hyper connection: a partial head the last
    /// one gave back, the byte that woke the connection.
    prefix: Vec<u8>,
    /// Requests served so far (for the per-connection cap).
    served: u64,
    /// When a byte last moved either way (the loop clock).
    last_activity: Instant,
    /// The deadline the next request head keeps (see `head`).
    head_due: Option<Instant>,
    /// The socket has sent every byte of the last burst.
    settled: bool,
}

/// A burst: a hyper connection and what it needs, in one box.
struct Burst<I> {
    conn: Conn<I>,
    pending: Pending<I>,
    watch: Rc<ConnWatch>,
    /// hyper's header-read state, lent to its timer for each poll.
    head: HeadState,
    /// hyper was asked to close for parking.
    parking: bool,
    /// It did not close at once: no parking for this burst.
    park_refused: bool,
    /// hyper closed for parking; what it wrote is still being sent.
    closed: bool,
}

/// Serves an HTTP/1 connection until it ends; `ready` when request bytes
/// are at hand already (read by the HTTP/2 sniffing), else the connection
/// starts parked, with the header read timeout running from now.
pub(super) fn serve<I>(io: I, peer: SocketAddr, shared: Rc<Shared>, ready: bool) -> Http1<I>
where
    I: Read + Write + Unpin + 'static,
{
    let now = lowres_now();
    let parked = Parked {
        io,
        prefix: Vec::new(),
        served: 0,
        last_activity: now,
        head_due: shared
            .config
            .header_read_timeout
            .filter(|_| !ready)
            .map(|t| now + t),
        settled: true,
    };
    let mut link = Link {
        stop: shared.stop.aborted(),
        stop_armed: false,
        shared,
        peer,
        stopping: false,
        timer: timer::sleep_until(now + PARK_AFTER),
        timer_armed: false,
    };
    let phase = if ready {
        Phase::Serving(link.start(parked))
    } else {
        Phase::Parked(parked)
    };
    Http1 { link, phase }
}

fn builder(c: &Config) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(HeadTimer::new(c.header_read_timeout))
        // Always one: its sleeps tell when hyper waits for a head.
        .header_read_timeout(c.header_read_timeout.unwrap_or(NO_TIMEOUT))
        .keep_alive(c.keep_alive)
        .max_buf_size(c.max_header_size)
        .max_headers(c.max_headers)
        // Coalescing is done by `coalesce`, which also survives closes.
        .pipeline_flush(false);
    b
}

impl<I> Future for Http1<I>
where
    I: Read + Write + Unpin + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Http1 { link, phase } = self.get_mut();
        loop {
            let next = match phase {
                Phase::Serving(burst) => {
                    let r = ready!(link.poll_burst(burst, cx));
                    let Phase::Serving(burst) = std::mem::replace(phase, Phase::Done) else {
                        unreachable!()
                    };
                    match r {
                        Ok(()) => link.park(*burst),
                        Err(end) => link.end_burst(*burst, end),
                    }
                }
                Phase::Parked(parked) => {
                    let r = ready!(link.poll_parked(parked, cx));
                    let Phase::Parked(parked) = std::mem::replace(phase, Phase::Done) else {
                        unreachable!()
                    };
                    match r {
                        Ok(()) => Phase::Serving(link.start(parked)),
                        Err(end) => link.end_parked(parked, end),
                    }
                }
                Phase::Finishing(tail) => {
                    ready!(tail.as_mut().poll(cx));
                    Phase::Done
                }
                Phase::Done => return Poll::Ready(()),
            };
            *phase = next;
        }
    }
}

/// What the connection's timer found when it fired.
enum Tick {
    Wait,
    Idle,
    Park,
}

impl Link {
    /// A burst for a parked connection that has bytes to serve.
    fn start<I>(&mut self, p: Parked<I>) -> Box<Burst<I>>
    where
        I: Read + Write + Unpin + 'static,
    {
        let c = &self.shared.config;
        let watch = Rc::new(ConnWatch::new());
        let (io, pending) = coalesce::wrap(
            p.io,
            c.pipeline_flush,
            c.max_output_buffer,
            watch.clone(),
            p.prefix,
        );
        let mut head = HeadState::default();
        head.carry(p.head_due);
        let svc = ConnService {
            shared: self.shared.clone(),
            served: Cell::new(p.served),
            watch: watch.clone(),
        };
        let conn = builder(c).serve_connection(io, svc);
        // No later than the carried header deadline (hyper's header sleeps
        // arm no timer, see `head`).
        let park = lowres_now() + PARK_AFTER;
        self.timer.reset(p.head_due.map_or(park, |d| d.min(park)));
        self.timer_armed = false;
        Box::new(Burst {
            conn,
            pending,
            watch,
            head,
            parking: false,
            park_refused: false,
            closed: false,
        })
    }

    /// Runs a burst's hyper connection until it ends (`Err`) or closed for
    /// parking (`Ok`, every byte it wrote sent). On stop asks it to finish
    /// gracefully; closes it when idle too long; every poll of it ends by
    /// sending what it wrote.
    fn poll_burst<I>(&mut self, b: &mut Burst<I>, cx: &mut Context<'_>) -> Poll<Result<(), End>>
    where
        I: Read + Write + Unpin + 'static,
    {
        if b.closed {
            return b
                .pending
                .poll_push(cx)
                .map_err(|e| End::Failed(e.to_string()));
        }
        if !self.stopping && self.poll_stop(cx) {
            self.stopping = true;
            Pin::new(&mut b.conn).graceful_shutdown();
        }
        loop {
            let conn = &mut b.conn;
            let r = b.head.lend(|| conn.poll_without_shutdown(cx));
            if let Err(e) = b.pending.push(cx) {
                return Poll::Ready(Err(End::Failed(e.to_string())));
            }
            match r {
                Poll::Ready(Ok(())) if b.parking => {
                    b.closed = true;
                    return b
                        .pending
                        .poll_push(cx)
                        .map_err(|e| End::Failed(e.to_string()));
                }
                Poll::Ready(Ok(())) => return Poll::Ready(Err(End::Closed)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(End::Failed(e.to_string()))),
                Poll::Pending if b.parking => {
                    // Not idle after all: its keep-alive is off now, so
                    // it finishes what it has and closes.
                    tracing::debug!(peer = %self.peer, "hyper not idle when parked; closing after this exchange");
                    b.parking = false;
                    b.park_refused = true;
                }
                Poll::Pending
                    if self.stopping && b.watch.requests() == 0 && b.pending.at_rest() =>
                {
                    // Stopping, and no request of this burst reached us (at
                    // most part of a head was read): nothing to finish, so
                    // hyper does not wait out the header timeout for it.
                    return Poll::Ready(Err(End::Closed));
                }
                Poll::Pending => {}
            }
            match self.tick(cx, b) {
                Tick::Wait => return Poll::Pending,
                Tick::Idle => return Poll::Ready(Err(End::IdleClosed)),
                Tick::Park => {
                    b.parking = true;
                    Pin::new(&mut b.conn).graceful_shutdown();
                }
            }
        }
    }

    /// Whether the graceful stop has begun; polls its future only when it
    /// may finish (about 50 instructions per poll of the connection).
    fn poll_stop(&mut self, cx: &mut Context<'_>) -> bool {
        if self.stop_armed && !self.shared.stop.abort_requested() {
            return false;
        }
        let ready = Pin::new(&mut self.stop).poll(cx).is_ready();
        self.stop_armed = !ready;
        ready
    }

    /// Polls the timer while hyper runs; when it fires, checks the idle
    /// timeout and whether to park, and re-arms it. Nothing else is
    /// looked at before it fires: a busy connection pays one timer poll.
    fn tick<I>(&mut self, cx: &mut Context<'_>, b: &Burst<I>) -> Tick
    where
        I: Write + Unpin + 'static,
    {
        let idle = self.shared.config.idle_timeout;
        loop {
            // Timers fire at the loop iteration's time: armed, and not due
            // at that time, it has not fired (a poll of it per poll of the
            // connection otherwise, about 80 instructions per request).
            if self.timer_armed && self.timer.deadline() > lowres_now() {
                return Tick::Wait;
            }
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                self.timer_armed = true;
                return Tick::Wait;
            }
            self.timer_armed = false;
            // The clock itself, as the timer: the loop's cached time may
            // lag a deadline the timer already saw pass (a spin otherwise).
            let now = timer::now();
            let last = b.watch.last_activity();
            let busy = b.watch.handlers_running();
            if idle.is_some_and(|t| !busy && last + t <= now) {
                return Tick::Idle;
            }
            let rest_due = last + PARK_AFTER;
            if rest_due <= now && self.can_park(b) {
                return Tick::Park;
            }
            let mut due = if rest_due > now {
                rest_due
            } else {
                now + PARK_AFTER
            };
            if let Some(t) = idle.filter(|_| !busy) {
                due = due.min(last + t);
            }
            // hyper's header sleeps arm no timer (see `head`): this one
            // wakes hyper at the deadline of the head it waits for. (One
            // already past is hyper's to see when polled; the next tick
            // comes within PARK_AFTER.)
            if let Some(head_due) = b.head.deadline().filter(|d| *d > now && b.head.waiting()) {
                due = due.min(head_due);
            }
            self.timer.reset(due);
        }
    }

    /// Whether hyper is idle with nothing of ours in flight (see the
    /// [module docs](self)).
    fn can_park<I: Write + Unpin + 'static>(&self, b: &Burst<I>) -> bool {
        !b.park_refused
            && !self.stopping
            && b.head.waiting()
            && b.watch.requests() > 0
            && b.pending.at_rest()
    }

    /// Takes a burst whose hyper connection closed for parking apart.
    fn park<I>(&mut self, b: Burst<I>) -> Phase<I>
    where
        I: Read + Write + Unpin + 'static,
    {
        let Burst {
            conn,
            pending,
            watch,
            head,
            ..
        } = b;
        let parts = conn.into_parts();
        drop(pending);
        let Some((io, unread)) = parts.io.into_inner() else {
            // Cannot happen: the writer has no other owner.
            bump(&self.shared.stats.errors);
            tracing::error!(peer = %self.peer, "parking: the socket is still shared; closing");
            return Phase::Done;
        };
        let mut prefix = parts.read_buf.to_vec();
        prefix.extend_from_slice(&unread);
        Phase::Parked(Parked {
            io,
            prefix,
            served: parts.service.served.get(),
            last_activity: watch.last_activity(),
            head_due: head.deadline(),
            settled: false,
        })
    }

    /// Waits, holding no buffer, until the client sends a byte (`Ok`) or
    /// the connection ends: end of stream, stop, idle or header timeout.
    fn poll_parked<I>(&mut self, p: &mut Parked<I>, cx: &mut Context<'_>) -> Poll<Result<(), End>>
    where
        I: Read + Write + Unpin,
    {
        if self.poll_stop(cx) {
            // Idle connections close at once on a stop.
            return Poll::Ready(Err(End::Closed));
        }
        if !p.settled {
            // The last burst's sends complete, so no send buffer is held.
            match Pin::new(&mut p.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => p.settled = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(End::Dropped(e.to_string()))),
                Poll::Pending => {}
            }
        }
        if p.settled {
            match poll_wake(&mut p.io, &mut p.prefix, cx) {
                Poll::Ready(Ok(true)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(false)) => return Poll::Ready(Err(End::Closed)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(End::Dropped(e.to_string()))),
                Poll::Pending => {}
            }
        }
        self.parked_tick(cx, p)
    }

    /// The timer while parked: the header deadline, then the idle timeout.
    fn parked_tick<I>(&mut self, cx: &mut Context<'_>, p: &Parked<I>) -> Poll<Result<(), End>> {
        let idle_due = self.shared.config.idle_timeout.map(|t| p.last_activity + t);
        let Some(due) = [p.head_due, idle_due].into_iter().flatten().min() else {
            return Poll::Pending;
        };
        if self.timer.deadline() != due {
            self.timer.reset(due);
            self.timer_armed = false;
        }
        ready!(Pin::new(&mut self.timer).poll(cx));
        Poll::Ready(Err(if p.head_due.is_some_and(|d| d <= due) {
            End::HeadTimeout
        } else {
            End::IdleClosed
        }))
    }

    /// Counts how the connection ended; false when nothing is left to send.
    fn count(&self, end: &End) -> bool {
        let (shared, peer) = (&self.shared, &self.peer);
        match end {
            End::IdleClosed => {
                bump(&shared.stats.idle_closed);
                shared.metrics.closed(Closed::Idle, 1);
                tracing::debug!(%peer, "idle timeout: closing the connection");
                false
            }
            End::HeadTimeout => {
                bump(&shared.stats.errors);
                tracing::debug!(%peer, "header read timeout: closing the connection");
                false
            }
            End::Dropped(e) => {
                bump(&shared.stats.errors);
                tracing::debug!(%peer, error = %e, "connection ended with an error");
                false
            }
            End::Failed(e) => {
                bump(&shared.stats.errors);
                tracing::debug!(%peer, error = %e, "connection ended with an error");
                true
            }
            End::Closed => true,
        }
    }

    /// A burst ended the connection: counts how, then sends what is left.
    fn end_burst<I>(&self, b: Burst<I>, end: End) -> Phase<I>
    where
        I: Read + Write + Unpin + 'static,
    {
        let Burst {
            conn,
            pending,
            watch,
            ..
        } = b;
        drop(conn);
        if !self.count(&end) {
            return Phase::Done;
        }
        if let Some(status) = watch.owed_reply() {
            // hyper dropped the request over its body (bad chunked framing,
            // or no body byte in time) before anything answered it.
            pending.append(&super::watch::failure_response(status));
        }
        let closing = matches!(end, End::Closed);
        let (shared, peer) = (self.shared.clone(), self.peer);
        Phase::Finishing(Box::pin(async move {
            let sent = if closing {
                pending.shutdown().await
            } else {
                pending.finish().await
            };
            if let Err(e) = sent {
                if closing {
                    bump(&shared.stats.errors);
                }
                tracing::debug!(%peer, error = %e, "sending the last responses");
            }
        }))
    }

    /// The connection ended while parked: counts how; on a close (end of
    /// stream, stop) shuts the socket's sending side down, as hyper does.
    fn end_parked<I>(&self, p: Parked<I>, end: End) -> Phase<I>
    where
        I: Read + Write + Unpin + 'static,
    {
        if !self.count(&end) {
            return Phase::Done;
        }
        let (shared, peer, mut io) = (self.shared.clone(), self.peer, p.io);
        Phase::Finishing(Box::pin(async move {
            if let Err(e) = std::future::poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx)).await {
                bump(&shared.stats.errors);
                tracing::debug!(%peer, error = %e, "closing a parked connection");
            }
        }))
    }
}

/// Waits for the client's next byte without a buffer of our own: one
/// byte is read (the socket lends its own buffer for the rest, see
/// `seastar_net`'s poll adapter) and kept in `prefix` for the next hyper
/// connection. False at end of stream.
fn poll_wake<I: Read + Unpin>(
    io: &mut I,
    prefix: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<bool>> {
    let mut byte = [0u8; 1];
    let mut buf = hyper::rt::ReadBuf::new(&mut byte);
    ready!(Pin::new(io).poll_read(cx, buf.unfilled()))?;
    let got = buf.filled();
    if got.is_empty() {
        return Poll::Ready(Ok(false));
    }
    prefix.extend_from_slice(got);
    Poll::Ready(Ok(true))
}
