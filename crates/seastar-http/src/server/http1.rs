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
//! takes back the socket, the service and whatever bytes hyper had read
//! (`without_shutdown` + `into_parts`) and drops the rest with hyper's
//! buffers. The parked connection then holds no buffer: it waits for the
//! client's next byte (see `coalesce`, one byte read, the socket lends
//! its buffer for the rest) and a new hyper connection serves what comes.
//!
//! hyper has no public "idle" state, so the driver parks only when all of
//! these hold, each of which it sees itself: a sleep of the connection's
//! [`HeadTimer`] is alive (hyper is reading a request head, which after a
//! request on the same hyper connection means it is idle in its keep-alive
//! sense), a request was served by this hyper connection (the first head
//! of a connection is read with keep-alive still "busy", where a graceful
//! shutdown would not close at once), hyper's last read found the socket
//! empty (what it had read is at most the start of a head, given back
//! whole by `into_parts`), its last write was taken (its own write buffer
//! is empty), no handler runs, and the stop has not begun. Should hyper
//! not close at once after all, it is left alone: its keep-alive is then
//! off, so it finishes the exchange and closes, as on a stop.
//!
//! Why not park at once: a new hyper connection costs some allocations
//! and an 8 KiB read reserve, which a client that keeps its connection
//! busy (benchmarks, pipelines) should not pay per request; such a
//! connection is never at rest for [`PARK_AFTER`], and its driver wakes
//! once per [`PARK_AFTER`] to look.
//!
//! What parking keeps as it was: the header read timeout (the next hyper
//! connection's first head keeps the deadline of the wait that parking
//! interrupted, see `head`; a parked connection closes at that deadline
//! as hyper would, counted as an error); the idle timeout (on the last
//! byte moved, parked or not); the per-connection request cap (the
//! service and its count go from one hyper connection to the next); a
//! graceful stop (a parked connection closes at once, as hyper closes an
//! idle one); pipelined order (never parked with a request read); the
//! output budget and write coalescing (`coalesce`, shared by every hyper
//! connection of the socket); the counters.

use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use seastar_core::sync::Aborted;
use seastar_core::timer::{self, Sleep, lowres_now};

use super::coalesce::{self, Coalesce, Pending};
use super::conn::ConnService;
use super::head::{HeadTimer, NO_TIMEOUT};
use super::options::Config;
use super::{ConnWatch, Shared, bump, service};
use crate::metrics::Closed;

/// How long a connection stays at rest before it is parked.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(20);

type Conn<I> = http1::Connection<Coalesce<I>, ConnService>;
type Parts<I> = http1::Parts<Coalesce<I>, ConnService>;

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

/// What one connection's serving shares between its bursts and pauses.
struct Link<'a, I> {
    peer: SocketAddr,
    shared: &'a Rc<Shared>,
    watch: Rc<ConnWatch>,
    head: HeadTimer,
    pending: Pending<I>,
    /// The connection's one timer: idle, header and park checks.
    timer: Sleep,
    stop: Pin<&'a mut Aborted>,
    stopping: bool,
}

/// Serves an HTTP/1 connection until it ends; `ready` when request bytes
/// are at hand already (read by the HTTP/2 sniffing), else the connection
/// starts parked, with the header read timeout running from now.
pub(super) async fn serve<I>(io: I, peer: SocketAddr, shared: &Rc<Shared>, ready: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let c = &shared.config;
    let watch = Rc::new(ConnWatch::new());
    let (mut io, pending) =
        coalesce::wrap(io, c.pipeline_flush, c.max_output_buffer, watch.clone());
    let mut svc = service(shared, &watch);
    let stop = std::pin::pin!(shared.stop.aborted());
    let mut link = Link {
        peer,
        shared,
        head: HeadTimer::new(c.header_read_timeout),
        watch,
        pending,
        timer: timer::sleep_until(lowres_now() + PARK_AFTER),
        stop,
        stopping: false,
    };
    if !ready {
        link.head
            .carry(c.header_read_timeout.map(|t| lowres_now() + t));
    }
    let mut parked = !ready;
    let end = loop {
        if parked {
            if let Err(end) = link.park(&io).await {
                break end;
            }
        }
        let conn = Box::new(builder(c, &link.head).serve_connection(io, svc));
        match link.burst(conn).await {
            Ok(parts) => {
                io = parts.io;
                svc = parts.service;
                if !parts.read_buf.is_empty() {
                    io.keep(&parts.read_buf);
                }
                link.head.carry(link.head.deadline());
                parked = true;
            }
            Err(end) => break end,
        }
    };
    link.finish(end).await;
}

fn builder(c: &Config, head: &HeadTimer) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(head.clone())
        // Always one: its sleeps tell when hyper waits for a head.
        .header_read_timeout(c.header_read_timeout.unwrap_or(NO_TIMEOUT))
        .keep_alive(c.keep_alive)
        .max_buf_size(c.max_header_size)
        .max_headers(c.max_headers)
        // Coalescing is done by `coalesce`, which also survives closes.
        .pipeline_flush(false);
    b
}

/// What the connection's timer found when it fired.
enum Tick {
    Wait,
    Idle,
    Park,
}

impl<I> Link<'_, I>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    /// Runs a hyper connection until it ends (`Err`) or is parked (`Ok`,
    /// its parts). On stop asks it to finish gracefully; closes it when
    /// idle too long; every poll of it ends by sending what it wrote.
    async fn burst(&mut self, mut conn: Box<Conn<I>>) -> Result<Parts<I>, End> {
        let first = self.watch.requests();
        self.timer.reset(lowres_now() + PARK_AFTER);
        let mut parking = false;
        let mut park_refused = false;
        let parked = std::future::poll_fn(|cx| {
            if !self.stopping && self.stop.as_mut().poll(cx).is_ready() {
                self.stopping = true;
                Pin::new(&mut *conn).graceful_shutdown();
            }
            loop {
                let r = conn.poll_without_shutdown(cx);
                if let Err(e) = self.pending.push(cx) {
                    return Poll::Ready(Err(End::Failed(e.to_string())));
                }
                match r {
                    Poll::Ready(Ok(())) => {
                        return Poll::Ready(if parking { Ok(()) } else { Err(End::Closed) });
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(End::Failed(e.to_string()))),
                    Poll::Pending if parking => {
                        // Not idle after all: its keep-alive is off now, so
                        // it finishes what it has and closes.
                        tracing::debug!(peer = %self.peer, "hyper not idle when parked; closing after this exchange");
                        parking = false;
                        park_refused = true;
                    }
                    Poll::Pending => {}
                }
                let can_park = !park_refused
                    && !self.stopping
                    && self.head.waiting()
                    && self.watch.requests() > first
                    && self.pending.at_rest();
                match self.tick(cx, can_park) {
                    Tick::Wait => return Poll::Pending,
                    Tick::Idle => return Poll::Ready(Err(End::IdleClosed)),
                    Tick::Park => {
                        parking = true;
                        Pin::new(&mut *conn).graceful_shutdown();
                    }
                }
            }
        })
        .await;
        parked.map(|()| (*conn).into_parts())
    }

    /// Polls the timer while hyper runs; when it fires, checks the idle
    /// timeout and whether to park, and re-arms it.
    fn tick(&mut self, cx: &mut Context<'_>, can_park: bool) -> Tick {
        let idle = self.shared.config.idle_timeout;
        loop {
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                return Tick::Wait;
            }
            // The clock itself, as the timer: the loop's cached time may
            // lag a deadline the timer already saw pass (a spin otherwise).
            let now = timer::now();
            let last = self.watch.last_activity();
            let busy = self.watch.handlers_running();
            if idle.is_some_and(|t| !busy && last + t <= now) {
                return Tick::Idle;
            }
            let rest_due = last + PARK_AFTER;
            if rest_due <= now && can_park {
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
            self.timer.reset(due);
        }
    }

    /// Waits, holding no buffer, until the client sends a byte (`Ok`) or
    /// the connection ends: end of stream, stop, idle or header timeout.
    async fn park(&mut self, io: &Coalesce<I>) -> Result<(), End> {
        let idle = self.shared.config.idle_timeout;
        let head_due = self.head.carried();
        let mut settled = false;
        std::future::poll_fn(|cx| {
            if self.stop.as_mut().poll(cx).is_ready() {
                // Idle connections close at once on a stop.
                return Poll::Ready(Err(End::Closed));
            }
            if !settled {
                match io.poll_settle(cx) {
                    Poll::Ready(Ok(())) => settled = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(End::Dropped(e.to_string()))),
                    Poll::Pending => {}
                }
            }
            if settled {
                match io.poll_wake(cx) {
                    Poll::Ready(Ok(true)) => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(false)) => return Poll::Ready(Err(End::Closed)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(End::Dropped(e.to_string()))),
                    Poll::Pending => {}
                }
            }
            self.parked_tick(cx, head_due, idle)
        })
        .await
    }

    /// The timer while parked: the header deadline, then the idle timeout.
    fn parked_tick(
        &mut self,
        cx: &mut Context<'_>,
        head_due: Option<Instant>,
        idle: Option<Duration>,
    ) -> Poll<Result<(), End>> {
        loop {
            let idle_due = idle.map(|t| self.watch.last_activity() + t);
            let Some(due) = [head_due, idle_due].into_iter().flatten().min() else {
                return Poll::Pending;
            };
            if self.timer.deadline() != due {
                self.timer.reset(due);
            }
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = timer::now();
            if head_due.is_some_and(|d| d <= now) {
                return Poll::Ready(Err(End::HeadTimeout));
            }
            if idle_due.is_some_and(|d| d <= now) {
                return Poll::Ready(Err(End::IdleClosed));
            }
        }
    }

    /// Counts how the connection ended and sends what is left.
    async fn finish(self, end: End) {
        let Link {
            peer,
            shared,
            watch,
            pending,
            ..
        } = self;
        let closing = match end {
            End::IdleClosed => {
                bump(&shared.stats.idle_closed);
                shared.metrics.closed(Closed::Idle, 1);
                tracing::debug!(%peer, "idle timeout: closing the connection");
                return;
            }
            End::HeadTimeout => {
                bump(&shared.stats.errors);
                tracing::debug!(%peer, "header read timeout: closing the connection");
                return;
            }
            End::Dropped(e) => {
                bump(&shared.stats.errors);
                tracing::debug!(%peer, error = %e, "connection ended with an error");
                return;
            }
            End::Failed(e) => {
                bump(&shared.stats.errors);
                tracing::debug!(%peer, error = %e, "connection ended with an error");
                false
            }
            End::Closed => true,
        };
        if let Some(status) = watch.owed_reply() {
            // hyper dropped the request over its body (bad chunked framing,
            // or no body byte in time) before anything answered it.
            pending.append(&super::watch::failure_response(status));
        }
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
    }
}
