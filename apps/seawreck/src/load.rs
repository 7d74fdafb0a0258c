//! The connection loops. Each shard runs its share of the connections;
//! each connection writes its request (`pipeline` copies in one write),
//! frames that many responses, and records each one's latency from the
//! moment the batch was sent. With a rate (open loop) every connection
//! sends on its own schedule and latency counts from the scheduled send
//! time, so a server that falls behind is charged for the wait
//! (no coordinated omission). A failed connection is counted by kind and
//! replaced. Nothing is shared between shards: each records into its own
//! [`ShardStats`].

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use seastar_core::shard_local::{self, SlotKey};
use seastar_core::timer;
use seastar_net::TcpStream;

use crate::response::frame;
use crate::stats::ShardStats;

/// This shard's statistics, in its slots (per runtime). A connection
/// looks them up once and records through the `Rc`.
fn stats() -> Rc<RefCell<ShardStats>> {
    shard_local::get_or_init(SlotKey::SINGLETON, RefCell::default)
}

/// Responses this shard has counted so far.
///
/// # Panics
///
/// Outside a shard.
pub fn shard_responses() -> u64 {
    stats().borrow().responses()
}

/// Failures this shard has counted so far.
///
/// # Panics
///
/// Outside a shard.
pub fn shard_errors() -> u64 {
    stats().borrow().errors.values().sum()
}

/// Takes this shard's statistics.
///
/// # Panics
///
/// Outside a shard.
pub fn take_shard_stats() -> ShardStats {
    std::mem::take(&mut *stats().borrow_mut())
}

/// What every connection does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Server address.
    pub addr: SocketAddr,
    /// One request's bytes.
    pub request: Vec<u8>,
    /// The request is HEAD (responses have no body).
    pub head: bool,
    /// Requests per write.
    pub pipeline: usize,
    /// Open loop: time between two sends of one connection.
    pub interval: Option<Duration>,
    /// Longest wait for a connect or a response.
    pub timeout: Duration,
    /// How long to run.
    pub duration: Duration,
}

/// Runs `connections` connections on this shard until the plan's duration
/// has passed.
pub async fn run_shard(plan: Plan, connections: usize) {
    let plan = Rc::new(plan);
    let deadline = timer::now() + plan.duration;
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let plan = plan.clone();
            seastar_core::spawn_local(async move { connection(&plan, deadline, i).await })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

fn record_error(kind: &'static str) {
    stats().borrow_mut().error(kind);
}

enum Outcome {
    /// Keep using the connection.
    Open,
    /// Reconnect (the failure, if any, was counted).
    Reconnect,
    /// The run is over.
    Done,
}

async fn connection(plan: &Plan, deadline: Instant, index: usize) {
    let stats = stats();
    let batch: Vec<u8> = plan.request.repeat(plan.pipeline);
    // Spread the open-loop schedules so connections do not send in step.
    let mut next_send = plan
        .interval
        .map(|iv| timer::now() + iv.mul_f64(index as f64 / 1024.0 % 1.0));
    while timer::lowres_now() < deadline {
        let left = deadline.saturating_duration_since(timer::now());
        let conn = match timer::timeout(plan.timeout.min(left), TcpStream::connect(plan.addr)).await
        {
            Ok(Ok(c)) => c,
            Ok(Err(_)) | Err(_) => {
                if timer::now() < deadline {
                    record_error("connect");
                    timer::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        let mut acc: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut rbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut wbuf = batch.clone();
        loop {
            if timer::lowres_now() >= deadline {
                return;
            }
            let sent_at = match next_send.as_mut() {
                Some(at) => {
                    let scheduled = *at;
                    *at += plan.interval.expect("open loop");
                    if scheduled > timer::now() {
                        if scheduled >= deadline {
                            return;
                        }
                        timer::sleep_until(scheduled).await;
                    }
                    // Latency counts from the schedule, not from when we got to send.
                    Instant::now() - timer::now().saturating_duration_since(scheduled)
                }
                None => Instant::now(),
            };
            let (r, b) = conn.write_all(wbuf).await;
            wbuf = b;
            if r.is_err() {
                record_error("write");
                break;
            }
            match read_responses(plan, &stats, &conn, &mut acc, &mut rbuf, sent_at, deadline).await
            {
                Outcome::Open => {}
                Outcome::Reconnect => break,
                Outcome::Done => return,
            }
        }
    }
}

/// Reads and frames `plan.pipeline` responses.
async fn read_responses(
    plan: &Plan,
    stats: &RefCell<ShardStats>,
    conn: &TcpStream,
    acc: &mut Vec<u8>,
    rbuf: &mut Vec<u8>,
    sent_at: Instant,
    deadline: Instant,
) -> Outcome {
    let mut got = 0;
    let mut pos = 0;
    let mut close = false;
    while got < plan.pipeline {
        match frame(&acc[pos..], plan.head) {
            Ok(Some(f)) => {
                let us = sent_at.elapsed().as_micros() as u64;
                stats.borrow_mut().record(f.status, us, f.len);
                pos += f.len;
                if (100..200).contains(&f.status) {
                    continue; // interim; the final response follows
                }
                got += 1;
                close |= f.close;
                continue;
            }
            Ok(None) => {}
            Err(_) => {
                record_error("malformed");
                return Outcome::Reconnect;
            }
        }
        if close {
            return Outcome::Reconnect;
        }
        // Need more bytes.
        let now = timer::now();
        if now >= deadline {
            return Outcome::Done;
        }
        let wait = plan.timeout.min(deadline - now);
        let mut buf = std::mem::take(rbuf);
        buf.clear();
        let read = timer::timeout(wait, conn.read(buf)).await;
        let (n, b) = match read {
            Ok(v) => v,
            Err(_) => {
                if timer::now() >= deadline {
                    return Outcome::Done;
                }
                record_error("timeout");
                return Outcome::Reconnect;
            }
        };
        *rbuf = b;
        match n {
            Ok(0) => {
                record_error("closed");
                return Outcome::Reconnect;
            }
            Ok(n) => {
                acc.drain(..pos);
                pos = 0;
                acc.extend_from_slice(&rbuf[..n]);
            }
            Err(_) => {
                record_error("read");
                return Outcome::Reconnect;
            }
        }
    }
    acc.drain(..pos);
    if close {
        Outcome::Reconnect
    } else {
        Outcome::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_statistics_are_per_runtime() {
        let first = seastar_core::block_on(async {
            stats().borrow_mut().record(200, 10, 100);
            record_error("read");
            (shard_responses(), shard_errors())
        });
        assert_eq!(first, (1, 1));
        // The next runtime on this thread starts from zero.
        let second = seastar_core::block_on(async { (shard_responses(), shard_errors()) });
        assert_eq!(second, (0, 0));
    }
}
