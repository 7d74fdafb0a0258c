//! The TCP side: each shard's accept loop and the connection loop.
//!
//! A connection loops: one read, every complete request in it processed
//! by the [`Session`] (local ones at once, remote ones batched per owner
//! shard), and all replies of that read sent with **one** write. Between
//! requests the read is pooled ([`TcpStream::read_pooled`]): it holds no
//! buffer while the client is silent, and the requests are parsed in the
//! shard's buffer they landed in; only a request that is not complete yet
//! is carried over into a buffer of the connection's own, which the next
//! reads extend in place. So an idle connection holds no buffer at all. A client pipelining N
//! requests thus costs one read and one write, where stock memcached
//! writes once per reply. The write runs behind while the next read waits
//! (submitted together; the send's completion wakes nobody when it took
//! every byte), and the next replies wait for it: at most one batch in
//! flight, the back-pressure on a client that does not read its replies.
//!
//! # Budget
//!
//! A read may hold many requests, and one request (a multi-get) may name
//! many keys: the [`Session`] stops once the replies reach the
//! connection's output budget (`--conn-output-budget`) and says so
//! ([`Outcome::more`](super::routing::Outcome)). The loop then sends those
//! replies, waits until the socket took them (the back-pressure on a
//! client that does not read: nothing more is parsed or read meanwhile),
//! yields if the task quota is spent, and carries on with the rest of the
//! read buffer before reading again. Replies with large values hold them
//! by reference ([`Out`]) and go out with one `writev`; the usual small
//! replies are still one plain write per read batch. No output buffer is
//! kept while waiting for a request but the batch in flight, which comes
//! back with the read and takes the next replies.
//!
//! # Limits and stop
//!
//! Over `-c` (this shard's share of it) a new connection gets memcached's
//! `ERROR Too many open connections` and is closed. With an idle timeout
//! (`-o idle_timeout=N`), a connection whose last complete request is N
//! seconds old is closed. A connection's slot (its place in
//! [`Connections`], `curr_connections`) is released by a drop guard, so a
//! task that panics frees it too. On a stop the accept loop ends and
//! [`Connections::drain`] shuts every read side (each connection finishes
//! the requests it has and writes their replies), waits up to the
//! shutdown timeout, then aborts the connections still open.

use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use futures::future::{Either, select};
use seastar_core::smp::Sharded;
use seastar_core::timer::{lowres_now, sleep_until};
use seastar_core::{shard_id, spawn_local};
use seastar_net::{
    BufResult, Connections, PooledBuf, Registration, SendBehind, TcpListener, TcpStream,
};

use super::routing::Session;
use super::shard::ShardState;
use crate::protocol::Out;

/// Room a read gets at least; the buffer grows for larger requests.
const READ_SIZE: usize = 16 * 1024;

/// First room of a read's reply buffer; it grows for larger replies. Small,
/// because a connection that goes idle keeps its last batch until its next
/// read (the send completes quietly, waking nobody): a small allocation
/// costs it the reply's bytes, not a page.
/// (256, not 512: an idle connection costs about 1.75 KB, not 2 KB.)
const OUT_SIZE: usize = 256;

/// An idle connection's buffers shrink back to `READ_SIZE` beyond this.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Counters of one shard's accept loop, reported at stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardReport {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections refused for exceeding `-c`.
    pub rejected: u64,
    /// Connections still open at the end of the shutdown timeout, aborted.
    pub aborted: u64,
}

/// A connection's place: in the shard's [`Connections`] and its
/// `curr_connections`, released when dropped (also by a panicking task).
pub(crate) struct Slot {
    st: Rc<ShardState>,
    _place: Registration,
}

impl Slot {
    /// Registers `conn` and counts it.
    pub fn open(st: &Rc<ShardState>, conns: &Rc<Connections>, conn: Rc<TcpStream>) -> Slot {
        let place = Connections::register(conns, conn);
        {
            let mut h = st.handler.borrow_mut();
            let s = h.store_mut().stats_mut();
            s.curr_connections += 1;
            s.total_connections += 1;
        }
        Slot {
            st: st.clone(),
            _place: place,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // A panic inside a handler borrow has released it while unwinding.
        if let Ok(mut h) = self.st.handler.try_borrow_mut() {
            h.store_mut().stats_mut().curr_connections -= 1;
        }
        // `_place` leaves the shard's set as it drops, after this.
    }
}

/// Accepts and serves until a stop is requested, then ends the
/// connections and waits for them.
pub(crate) async fn serve_tcp(
    st: Rc<ShardState>,
    service: Sharded<ShardState>,
    listener: TcpListener,
) -> ShardReport {
    if let Some(tls) = st.tls.clone() {
        return super::tls::serve_tls(st, service, listener, tls.0).await;
    }
    let conns = Rc::new(Connections::default());
    let mut report = ShardReport::default();
    let mut stop = std::pin::pin!(seastar_core::stop_signal());
    loop {
        let accept = std::pin::pin!(listener.accept());
        match select(accept, stop.as_mut()).await {
            Either::Left((Ok((conn, peer)), _)) => {
                if conns.len() >= st.max_conns {
                    report.rejected += 1;
                    st.handler
                        .borrow_mut()
                        .store_mut()
                        .stats_mut()
                        .rejected_connections += 1;
                    tracing::debug!(shard = shard_id(), %peer, "too many open connections");
                    spawn_local(async move {
                        let msg: &'static [u8] = b"ERROR Too many open connections\r\n";
                        let _ = conn.write_all(msg).await;
                    })
                    .detach();
                    continue;
                }
                report.accepted += 1;
                tracing::debug!(shard = shard_id(), %peer, "new connection");
                let conn = Rc::new(conn);
                let slot = Slot::open(&st, &conns, conn.clone());
                let (st, service) = (st.clone(), service.clone());
                spawn_local(async move {
                    let _slot = slot;
                    connection(&st, &service, &conn).await;
                    tracing::debug!(shard = shard_id(), %peer, "connection closed");
                })
                .detach();
            }
            Either::Left((Err(e), _)) => {
                // Stopping: the listener that distributes connections to
                // this shard may have closed first.
                if TcpListener::is_closed_error(&e)
                    || futures::FutureExt::now_or_never(stop.as_mut()).is_some()
                {
                    tracing::debug!(shard = shard_id(), error = %e, "accept ended by the stop");
                    break;
                }
                tracing::error!(shard = shard_id(), error = %e, "accept failed; no longer accepting");
                break;
            }
            Either::Right(((), _)) => break,
        }
    }
    drop(listener);
    report.aborted = conns.drain(st.shutdown_timeout).await as u64;
    report
}

/// Serves one connection until the peer closes, an I/O error, `quit`, or
/// the idle timeout; the replies already made are sent before it returns.
///
/// Its arguments are references only: values moved into an `async fn` keep
/// their own slots in its future beside the locals made of them.
async fn connection(st: &ShardState, service: &Sharded<ShardState>, conn: &TcpStream) {
    let mut session = Session::new(service.local(), service.clone(), st.output_budget);
    // Bytes carried over between reads (a request not complete yet): the
    // only receive buffer a connection owns, and only while it has one.
    let mut rbuf = BytesMut::new();
    let mut out = Out::new();
    // The replies of the previous read, sending while the next read waits.
    let mut sending: Option<SendBehind<BytesMut>> = None;
    let mut last_request = lowres_now();
    loop {
        // Nothing is kept for the wait but the batch in flight (a reply's
        // bytes: see `OUT_SIZE`).
        if out.buf_mut().capacity() != 0 {
            *out.buf_mut() = BytesMut::new();
        }
        // One read future for both cases (one slot in this task, not two).
        let got = {
            let read = std::pin::pin!(async {
                if rbuf.is_empty() {
                    // Between requests: a pooled read holds no buffer while the
                    // client is silent, and the requests are parsed where they
                    // landed (no copy).
                    if rbuf.capacity() != 0 {
                        rbuf = BytesMut::new();
                    }
                    conn.read_pooled().await.map(Input::Pooled)
                } else {
                    // A request is partly here (a large value, usually): read
                    // into the room after it (split off and rejoined: no copy).
                    if rbuf.capacity() - rbuf.len() < READ_SIZE / 4 {
                        rbuf.reserve(READ_SIZE);
                    }
                    let spare = rbuf.split_off(rbuf.len());
                    let (r, spare) = conn.read(spare).await;
                    r.map(|n| Input::Carried(n, spare))
                }
            });
            read_or_idle(st, &mut sending, read, last_request).await
        };
        let Some((r, sent)) = got else {
            return;
        };
        // The batch sent meanwhile lends its buffer to this read's replies
        // (a client that waits for each reply costs no allocation).
        let reuse = match sent {
            Some((Err(e), _)) => {
                tracing::debug!(shard = shard_id(), error = %e, "write failed; closing");
                return;
            }
            Some((Ok(_), b)) if b.capacity() <= KEEP_CAPACITY => Some(b),
            _ => None,
        };
        let (n, mut input) = match r {
            Ok(Input::Pooled(b)) if b.is_empty() => break,
            Ok(Input::Pooled(b)) => (b.len(), Some((b, 0))),
            Ok(Input::Carried(0, _)) => break,
            Ok(Input::Carried(n, spare)) => {
                rbuf.unsplit(spare);
                (n, None)
            }
            Err(e) => {
                tracing::debug!(shard = shard_id(), error = %e, "read failed; closing");
                break;
            }
        };
        *out.buf_mut() = match reuse {
            Some(mut b) => {
                b.clear();
                b
            }
            None => BytesMut::with_capacity(OUT_SIZE),
        };
        let mut written = 0;
        let close = loop {
            let src: &[u8] = match &input {
                Some((b, pos)) => &b[*pos..],
                None => &rbuf,
            };
            let outcome = session.process(src, &mut out).await;
            match &mut input {
                Some((_, pos)) => *pos += outcome.consumed,
                None => rbuf.advance(outcome.consumed),
            }
            if outcome.consumed > 0 && st.idle_timeout.is_some() {
                last_request = lowres_now();
            }
            if !out.is_empty() {
                written += out.len();
                // One batch in flight at most (the back-pressure on a
                // client that does not read its replies): the previous one
                // first.
                if let Some(s) = sending.take()
                    && let (Err(e), _) = s.finish().await
                {
                    tracing::debug!(shard = shard_id(), error = %e, "write failed; closing");
                    return;
                }
                if out.is_flat() {
                    let batch = std::mem::replace(out.buf_mut(), BytesMut::new());
                    sending = Some(conn.send_behind(batch));
                } else {
                    // Shared values: one gather write of the pieces (its
                    // future boxed, as it is large and would otherwise
                    // sit in every connection's task).
                    let mut chunks = out.take_chunks();
                    if let Err(e) = Box::pin(conn.writev_all(&mut chunks)).await {
                        tracing::debug!(shard = shard_id(), error = %e, "write failed; closing");
                        return;
                    }
                }
                if out.buf_mut().capacity() == 0 {
                    *out.buf_mut() = BytesMut::with_capacity(OUT_SIZE);
                }
            }
            if outcome.close || !outcome.more {
                break outcome.close;
            }
            // Over the budget: wait until the socket took the replies,
            // let the other tasks run if the quota is spent, carry on.
            if let Some(s) = sending.take()
                && let (Err(e), _) = s.finish().await
            {
                tracing::debug!(shard = shard_id(), error = %e, "write failed; closing");
                return;
            }
            seastar_core::maybe_yield().await;
        };
        // What the pooled bytes hold of a request not complete yet is
        // carried over; the pooled buffer goes back to the shard.
        if let Some((b, pos)) = input.take()
            && pos < b.len()
        {
            rbuf.reserve((b.len() - pos).max(READ_SIZE));
            rbuf.extend_from_slice(&b[pos..]);
        }
        if rbuf.is_empty() && rbuf.capacity() > KEEP_CAPACITY {
            rbuf = BytesMut::new();
        }
        {
            let mut h = st.handler.borrow_mut();
            let s = h.store_mut().stats_mut();
            s.bytes_read += n as u64;
            s.bytes_written += written as u64;
        }
        if close {
            break;
        }
    }
    if let Some(s) = sending {
        if let (Err(e), _) = s.finish().await {
            tracing::debug!(shard = shard_id(), error = %e, "write failed at close");
        }
    }
}

/// What a read brought: pooled bytes (nothing was carried over), or a
/// count received into the spare room of the carried-over bytes.
enum Input {
    Pooled(PooledBuf),
    Carried(usize, BytesMut),
}

/// How the batch in flight ended, with its buffer back.
type Sent = BufResult<usize, BytesMut>;

/// Awaits `read` while the batch in flight is sent quietly (a send that
/// took every byte wakes nobody: collected with the read); `None` if the
/// idle timeout passed first.
///
/// One flat poll over the three, and the read borrowed pinned where the
/// caller made it (not moved into a future of its own): this future is
/// part of every idle connection's task, so its size is part of what an
/// idle connection costs.
fn read_or_idle<'a, F: Future>(
    st: &ShardState,
    sending: &'a mut Option<SendBehind<BytesMut>>,
    mut read: Pin<&'a mut F>,
    last_request: Instant,
) -> impl Future<Output = Option<(F::Output, Option<Sent>)>> + 'a {
    let mut idle = st.idle_timeout.map(|t| sleep_until(last_request + t));
    let mut sent = None;
    poll_fn(move |cx| {
        if let Some(s) = sending.as_mut()
            && let Poll::Ready(r) = s.poll_quiet(cx)
        {
            *sending = None;
            sent = Some(r);
        }
        if let Poll::Ready(r) = read.as_mut().poll(cx) {
            return Poll::Ready(Some((r, sent.take())));
        }
        match idle.as_mut().map(|t| Pin::new(t).poll(cx)) {
            Some(Poll::Ready(())) => {
                tracing::debug!(shard = shard_id(), "idle timeout; closing");
                Poll::Ready(None)
            }
            _ => Poll::Pending,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use seastar_core::{spawn_local, timer};
    use seastar_net::{Connections, ListenOptions, TcpListener, TcpStream};

    use super::Slot;
    use crate::server::Config;
    use crate::server::shard::{Settings, ShardState};

    /// A connection task that panics still frees its slot: its place in
    /// `Connections` (so a stop does not wait for it) and
    /// `curr_connections`.
    #[test]
    fn a_panicking_connection_task_releases_its_slot() {
        seastar_core::block_on(async {
            let settings = Settings {
                config: Config::default(),
                start: timer::now(),
                epoch: 0,
                shards: 1,
            };
            let st = Rc::new(ShardState::new(&settings));
            let any = "127.0.0.1:0".parse().unwrap();
            let listener = TcpListener::bind(any, ListenOptions::default())
                .await
                .unwrap();
            let client = spawn_local(TcpStream::connect(listener.local_addr().unwrap()));
            let (server_side, _) = listener.accept().await.unwrap();
            let conns = Rc::new(Connections::default());
            let curr = |st: &ShardState| st.handler.borrow().store().stats().curr_connections;
            let slot = Slot::open(&st, &conns, Rc::new(server_side));
            assert_eq!((conns.len(), curr(&st)), (1, 1));
            let task = spawn_local(async move {
                let _slot = slot;
                panic!("a handler bug");
            });
            assert!(task.await.is_err(), "the task panicked");
            assert_eq!((conns.len(), curr(&st)), (0, 0));
            drop(client.await);
        });
    }
}
