//! The TCP side: each shard's accept loop and the connection loop.
//!
//! A connection loops: one read appended to its receive buffer, every
//! complete request in it processed by the [`Session`] (local ones at once,
//! remote ones batched per owner shard), the consumed bytes dropped, and
//! all replies of that read sent with **one** write. A client pipelining N
//! requests thus costs one read and one write, where stock memcached
//! writes once per reply. The write runs behind while the next read waits
//! (submitted together; the send's completion wakes nobody when it took
//! every byte), and the next replies wait for it: at most one batch in
//! flight, the back-pressure on a client that does not read its replies.
//!
//! Over `-c` (this shard's share of it) a new connection gets memcached's
//! `ERROR Too many open connections` and is closed. On a stop the accept
//! loop ends, every connection's read side is shut (each finishes the read
//! it is serving and writes its replies), and the loop waits for them.

use std::rc::Rc;

use bytes::{Buf, BytesMut};
use futures::future::{Either, select};
use seastar_core::smp::Sharded;
use seastar_core::{shard_id, spawn_local};
use seastar_net::{Connections, SendBehind, TcpListener, TcpStream};

use super::routing::Session;
use super::shard::ShardState;

/// Room a read gets at least; the buffer grows for larger requests.
const READ_SIZE: usize = 16 * 1024;

/// An idle connection's buffers shrink back to `READ_SIZE` beyond this.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Counters of one shard's accept loop, reported at stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardReport {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections refused for exceeding `-c`.
    pub rejected: u64,
}

/// Accepts and serves until a stop is requested, then ends the
/// connections and waits for them.
pub(crate) async fn serve_tcp(
    st: Rc<ShardState>,
    service: Sharded<ShardState>,
    listener: TcpListener,
) -> ShardReport {
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
                let id = conns.insert(conn.clone());
                {
                    let mut h = st.handler.borrow_mut();
                    let s = h.store_mut().stats_mut();
                    s.curr_connections += 1;
                    s.total_connections += 1;
                }
                let (st, conns, service) = (st.clone(), conns.clone(), service.clone());
                spawn_local(async move {
                    connection(&st, service, &conn).await;
                    st.handler
                        .borrow_mut()
                        .store_mut()
                        .stats_mut()
                        .curr_connections -= 1;
                    drop(conn);
                    conns.remove(id);
                    tracing::debug!(shard = shard_id(), %peer, "connection closed");
                })
                .detach();
            }
            Either::Left((Err(e), _)) => {
                tracing::error!(shard = shard_id(), error = %e, "accept failed; no longer accepting");
                break;
            }
            Either::Right(((), _)) => break,
        }
    }
    drop(listener);
    conns.shutdown_all();
    conns.wait_idle().await;
    report
}

/// Serves one connection until the peer closes, an I/O error, or `quit`;
/// the replies already made are sent before it returns.
async fn connection(st: &ShardState, service: Sharded<ShardState>, conn: &TcpStream) {
    let mut session = Session::new(service.local(), service);
    let mut rbuf = BytesMut::with_capacity(READ_SIZE);
    let mut out = BytesMut::with_capacity(READ_SIZE);
    // The replies of the previous read, sending while the next read waits,
    // and the buffer of the batch before (recycled).
    let mut sending: Option<SendBehind<BytesMut>> = None;
    let mut spare_out: Option<BytesMut> = None;
    loop {
        if rbuf.is_empty() && rbuf.capacity() > KEEP_CAPACITY {
            rbuf = BytesMut::with_capacity(READ_SIZE);
        }
        if rbuf.capacity() - rbuf.len() < READ_SIZE / 4 {
            rbuf.reserve(READ_SIZE);
        }
        // Read into the spare room after the unprocessed bytes (split off
        // and rejoined: no copy), or, when everything was processed (the
        // usual case), into the buffer itself (no split: callgrind, about
        // 60 instructions per read).
        let whole = rbuf.is_empty();
        let spare = if whole {
            std::mem::take(&mut rbuf)
        } else {
            rbuf.split_off(rbuf.len())
        };
        let ((r, spare), sent) = SendBehind::during(&mut sending, conn.read(spare)).await;
        if whole {
            rbuf = spare;
        } else {
            rbuf.unsplit(spare);
        }
        match sent {
            Some((Err(e), _)) => {
                tracing::debug!(shard = shard_id(), error = %e, "write failed; closing");
                return;
            }
            Some((Ok(_), buf)) => spare_out = Some(buf),
            None => {}
        }
        let n = match r {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(shard = shard_id(), error = %e, "read failed; closing");
                break;
            }
        };
        let outcome = session.process(&rbuf, &mut out).await;
        rbuf.advance(outcome.consumed);
        let written = out.len();
        if !out.is_empty() {
            // One batch in flight at most (the back-pressure on a client
            // that does not read its replies): the previous one first.
            if let Some(s) = sending.take() {
                match s.finish().await {
                    (Ok(_), buf) => spare_out = Some(buf),
                    (Err(e), _) => {
                        tracing::debug!(shard = shard_id(), error = %e, "write failed; closing");
                        return;
                    }
                }
            }
            let next = match spare_out.take() {
                Some(mut b) if b.capacity() <= KEEP_CAPACITY => {
                    b.clear();
                    b
                }
                _ => BytesMut::with_capacity(READ_SIZE),
            };
            sending = Some(conn.send_behind(std::mem::replace(&mut out, next)));
        }
        {
            let mut h = st.handler.borrow_mut();
            let s = h.store_mut().stats_mut();
            s.bytes_read += n as u64;
            s.bytes_written += written as u64;
        }
        if outcome.close {
            break;
        }
    }
    if let Some(s) = sending {
        if let (Err(e), _) = s.finish().await {
            tracing::debug!(shard = shard_id(), error = %e, "write failed at close");
        }
    }
}
