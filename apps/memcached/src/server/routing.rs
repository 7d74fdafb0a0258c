//! Routing the requests of one read to the shards that own their keys.
//!
//! # Protocol
//!
//! A connection (or a UDP datagram) is served on the shard that accepted
//! it. [`Session::process`] takes everything one read delivered and walks
//! it request by request:
//!
//! 1. A request whose key this shard owns ([`shard_of`]) runs at once, its
//!    reply appended to `out`. So do key-less ones (`version`, `mn`, ...)
//!    and errors.
//! 2. A request owned by shard `s` is copied, raw bytes as received, into
//!    the batch for `s`, and a *mark* records where in `out` its reply
//!    belongs. `get`/`gat` are split per key: local keys are answered in
//!    place, remote keys become one op each, and the `END` is written
//!    locally after the last key's mark.
//! 3. At the end of the read, every non-empty batch goes to its owner, all
//!    destinations concurrently, coalesced with the batches other
//!    connections of this shard send in the same reactor tick into one
//!    [`submit_to`](seastar_core::smp::submit_to) per owner (`coalesce.rs`). The
//!    owner re-parses each raw request with the same limits (so it sees the
//!    same request), executes the ops in order and returns their replies
//!    with the end offset of each.
//! 4. The replies are spliced into `out` at the marks, in request order.
//!    The caller then writes `out` with one write.
//!
//! `stats` and (with several shards) `flush_all` concern every shard: they
//! are barriers. The batches planned so far are sent and spliced first,
//! then the command runs on all shards, then planning resumes.
//!
//! # Budget
//!
//! A session stops planning once the replies it made reach its output
//! budget (`--conn-output-budget`), or once [`MAX_REMOTE_OPS`] ops wait
//! for other shards: it sends what it has, returns how far it got
//! ([`Outcome::more`]), and the caller sends those replies before calling
//! again with the rest. A `get`/`gat` line naming many keys stops between
//! two keys: the session remembers where the key list and the line end
//! ([`Resume`]) and carries on there, writing `END` after the last key.
//! One line naming 200,000 keys thus never holds more than about a budget
//! of replies (plus one value, and large values are shared with the store,
//! not copied: [`Out`]).
//!
//! # Ordering
//!
//! Replies always leave in request order. Execution order is preserved per
//! key (one key, one owner, one FIFO batch per read, and a connection does
//! not read again before its batches came back), and across all keys at a
//! barrier. Between two keys owned by different shards, requests of one
//! read may execute in either order; only another client racing this one
//! could tell, and it could not rely on the interleaving anyway.

use futures::future::join_all;
use seastar_core::smp::Sharded;
use seastar_core::{shard_count, shard_id};
use std::rc::Rc;

use super::coalesce::Coalescer;
use super::global::{self, Global};
use super::shard::ShardState;
use crate::handler::Handler;
use crate::protocol::{Keys, Meta, Out, ProtocolError, Request, encode, parse};
use crate::shard_of;

/// Most ops a session sends other shards per [`Session::process`] call:
/// their replies are not counted until they come back, so this bounds
/// them (large values among them are shared, not copied: a reply costs
/// its header).
pub(crate) const MAX_REMOTE_OPS: usize = 128;

/// What a forwarded op is: a whole request or one key of a multi-key one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    /// A complete request (command line and data block), `len` raw bytes.
    Request { len: usize },
    /// One key of a `get`/`gets`.
    Get { len: usize, cas: bool },
    /// One key of a `gat`/`gats`.
    Gat { len: usize, cas: bool, exptime: i64 },
}

impl Op {
    /// Bytes the op occupies in its batch.
    pub fn len(&self) -> usize {
        match *self {
            Op::Request { len } | Op::Get { len, .. } | Op::Gat { len, .. } => len,
        }
    }
}

/// The ops one read sends to one shard: their bytes back to back.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub bytes: Vec<u8>,
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ops.clear();
    }

    fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A shard's answer to a [`Batch`]: the replies back to back, the end
/// offset of each op's reply, and the batch's buffers for reuse.
#[derive(Debug)]
pub(crate) struct Replies {
    pub out: Out,
    pub ends: Vec<usize>,
    pub batch: Batch,
}

/// Where a forwarded op's reply goes in `out`.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: usize,
    shard: usize,
    /// A whole request (its reply is never absent, unless `noreply`).
    request: bool,
}

/// The batches and marks of the read being planned.
#[derive(Debug, Default)]
struct Pending {
    batches: Vec<Batch>,
    marks: Vec<Mark>,
}

impl Pending {
    /// Batches for `shards` shards are made at the first remote op: a
    /// connection that never forwards (one shard) holds none.
    fn push(&mut self, shards: usize, shard: usize, bytes: &[u8], op: Op, at: usize) {
        if self.batches.len() < shards {
            self.batches.resize_with(shards, Batch::default);
        }
        let b = &mut self.batches[shard];
        b.bytes.extend_from_slice(bytes);
        b.ops.push(op);
        self.marks.push(Mark {
            at,
            shard,
            request: matches!(op, Op::Request { .. }),
        });
    }
}

/// Result of [`Session::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Bytes of the input used (the rest is an incomplete request).
    pub consumed: usize,
    /// Close after writing the replies (`quit`, overlong line, HTTP).
    pub close: bool,
    /// Stopped at the output budget: send the replies, then call again
    /// with the input from `consumed` on (before reading more).
    pub more: bool,
}

/// Why planning stopped.
enum Step {
    /// The input is used up (or ends in an incomplete request).
    More,
    /// The output budget is reached; the input from `pos` on is left.
    Budget,
    /// Close the connection after the replies so far.
    Close,
    /// A command for every shard.
    Global(Global),
}

/// Which multi-key command a [`Resume`] continues.
#[derive(Debug, Clone, Copy)]
enum KeysKind {
    Get { cas: bool },
    Gat { cas: bool, exptime: i64 },
}

/// A `get`/`gat` line stopped at the budget, to carry on from the front of
/// the next input.
#[derive(Debug, Clone, Copy)]
struct Resume {
    kind: KeysKind,
    /// Bytes of the keys not yet executed.
    keys_len: usize,
    /// Bytes to the end of the line, its `\n` included.
    line_len: usize,
}

/// One connection's routing state: what a data block still to swallow,
/// where a stopped multi-get resumes, and reusable buffers (see the module
/// doc).
pub(crate) struct Session {
    shard: Rc<ShardState>,
    service: Sharded<ShardState>,
    me: usize,
    shards: usize,
    swallow: usize,
    budget: usize,
    resume: Option<Resume>,
    pending: Pending,
    replies: Vec<Option<Replies>>,
    spare: Out,
}

impl Session {
    /// A session whose replies per [`process`](Self::process) call stop
    /// growing at `budget` bytes (at least one request or key runs).
    pub fn new(shard: Rc<ShardState>, service: Sharded<ShardState>, budget: usize) -> Self {
        let shards = shard_count();
        Session {
            shard,
            service,
            me: shard_id(),
            shards,
            swallow: 0,
            budget: budget.max(1),
            resume: None,
            // Made at the first forward (see `Pending::push`): an idle
            // connection's cost is what it holds.
            pending: Pending::default(),
            replies: Vec::new(),
            spare: Out::new(),
        }
    }

    /// The output budget per [`process`](Self::process) call.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Forgets a data block still to swallow and a stopped multi-get (a
    /// new UDP datagram).
    pub fn reset(&mut self) {
        self.swallow = 0;
        self.resume = None;
    }

    /// Executes every complete request in `buf` and appends all replies to
    /// `out`, in request order (see the module doc).
    pub async fn process(&mut self, buf: &[u8], out: &mut Out) -> Outcome {
        let mut pos = 0;
        let mut more = false;
        let close = loop {
            match self.plan(buf, &mut pos, out) {
                Step::More => break false,
                Step::Budget => {
                    more = true;
                    break false;
                }
                Step::Close => break true,
                Step::Global(g) => {
                    Box::pin(async {
                        self.forward(out).await;
                        global::run(&self.shard, &self.service, g, out).await;
                    })
                    .await;
                }
            }
        };
        // Checked here, not only in `forward`: with nothing to send, not
        // even its future is made (callgrind: about 30 instructions a read).
        // Boxed: the forwarding future is about 1 KB, and inline it would
        // sit in every connection's task, idle ones included (an idle
        // memcached connection then costs under 2 KB); the box is one
        // allocation per read that has remote work, next to the
        // cross-shard messages it sends.
        if !self.pending.marks.is_empty() {
            Box::pin(self.forward(out)).await;
        }
        Outcome {
            consumed: pos,
            close,
            more,
        }
    }

    /// Runs local requests and batches remote ones until the input ends or
    /// a barrier; never awaits.
    fn plan(&mut self, buf: &[u8], pos: &mut usize, out: &mut Out) -> Step {
        let now = self.shard.now();
        let limits = self.shard.limits;
        let multi = self.shards > 1;
        let shard = self.shard.clone();
        let mut h = shard.handler.borrow_mut();
        if let Some(r) = self.resume.take() {
            let keys = Keys::new(&buf[*pos..*pos + r.keys_len]);
            let line_end = *pos + r.line_len;
            if self.run_keys(&mut h, buf, pos, line_end, keys, r.kind, now, out) {
                return Step::Budget;
            }
        }
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(buf.len() - *pos);
                *pos += n;
                self.swallow -= n;
                if self.swallow > 0 {
                    return Step::More;
                }
            }
            if out.len() >= self.budget || self.pending.marks.len() >= MAX_REMOTE_OPS {
                return Step::Budget;
            }
            // Everything read was executed (the usual end of a UDP request
            // or a TCP read): what `parse` would say of an empty buffer,
            // without its newline search (callgrind: a second parse per
            // request, about 100 instructions).
            if *pos == buf.len() {
                return Step::More;
            }
            // Matched by reference: a `Request` is 176 bytes, and moving it
            // out of the result cost a `memcpy` per request (callgrind).
            let parsed = parse(&buf[*pos..], &limits);
            let (req, used) = match &parsed {
                Ok(Some((req, used))) => (req, *used),
                Ok(None) => return Step::More,
                Err(ProtocolError::Rejected(r)) => {
                    h.reject(r, out);
                    *pos += r.consumed;
                    self.swallow = r.swallow;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(shard = self.me, error = %e, "closing connection");
                    return Step::Close;
                }
            };
            let raw = &buf[*pos..*pos + used];
            *pos += used;
            self.swallow = req.swallow();
            match req {
                Request::Quit => return Step::Close,
                Request::Stats { args } => return Step::Global(Global::Stats(args.to_vec())),
                &Request::FlushAll { delay, noreply } if multi => {
                    return Step::Global(Global::Flush { delay, noreply });
                }
                &Request::Get { keys, cas } => {
                    if let (false, Some(key)) = (multi, keys.single()) {
                        // The common request: one key, one shard.
                        h.get_one(key, cas, now, out);
                        encode::end(out);
                    } else {
                        let kind = KeysKind::Get { cas };
                        if self.run_keys(&mut h, buf, pos, *pos, keys, kind, now, out) {
                            return Step::Budget;
                        }
                    }
                }
                &Request::Gat { exptime, keys, cas } => {
                    let kind = KeysKind::Gat { cas, exptime };
                    if self.run_keys(&mut h, buf, pos, *pos, keys, kind, now, out) {
                        return Step::Budget;
                    }
                }
                // One shard owns every key: no owner lookup (it hashes the
                // key and zeroes a scratch buffer for base64 meta keys).
                _ if !multi => {
                    h.execute(req, now, out);
                }
                _ => match owner(req, self.shards) {
                    Some(s) if s != self.me => {
                        let op = Op::Request { len: raw.len() };
                        self.pending.push(self.shards, s, raw, op, out.len());
                    }
                    _ => {
                        h.execute(req, now, out);
                    }
                },
            }
        }
    }

    /// Runs the keys of a `get`/`gat` line, local ones at once, remote
    /// ones batched, and writes its `END`; the line ends at `line_end`.
    /// Stops before a key once the budget is reached (one key runs at
    /// least): then `pos` is moved to that key, the rest is remembered in
    /// `resume`, and it returns true.
    #[allow(clippy::too_many_arguments)]
    fn run_keys(
        &mut self,
        h: &mut Handler,
        buf: &[u8],
        pos: &mut usize,
        line_end: usize,
        keys: Keys<'_>,
        kind: KeysKind,
        now: u32,
        out: &mut Out,
    ) -> bool {
        let mut first = true;
        for key in keys.iter() {
            if !first && (out.len() >= self.budget || self.pending.marks.len() >= MAX_REMOTE_OPS) {
                let raw = keys.as_bytes();
                let keys_end = offset_in(buf, raw) + raw.len();
                let at = offset_in(buf, key);
                *pos = at;
                self.resume = Some(Resume {
                    kind,
                    keys_len: keys_end - at,
                    line_len: line_end - at,
                });
                return true;
            }
            first = false;
            let owner = if self.shards > 1 {
                shard_of(key, self.shards)
            } else {
                self.me
            };
            match kind {
                KeysKind::Get { cas } if owner == self.me => {
                    h.get_one(key, cas, now, out);
                }
                KeysKind::Gat { cas, exptime } if owner == self.me => {
                    h.gat_one(key, exptime, cas, now, out);
                }
                KeysKind::Get { cas } => {
                    let op = Op::Get {
                        len: key.len(),
                        cas,
                    };
                    self.pending.push(self.shards, owner, key, op, out.len());
                }
                KeysKind::Gat { cas, exptime } => {
                    let op = Op::Gat {
                        len: key.len(),
                        cas,
                        exptime,
                    };
                    self.pending.push(self.shards, owner, key, op, out.len());
                }
            }
        }
        *pos = line_end;
        encode::end(out);
        false
    }

    /// Sends the planned batches, awaits them all and splices their
    /// replies into `out` at the marks.
    async fn forward(&mut self, out: &mut Out) {
        if self.pending.marks.is_empty() {
            return;
        }
        let calls = self
            .pending
            .batches
            .iter_mut()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(s, b)| {
                let call = Coalescer::forward(&self.shard, &self.service, s, std::mem::take(b));
                async move { (s, call.await) }
            })
            .collect::<Vec<_>>();
        let mut total = out.len();
        if self.replies.len() < self.shards {
            self.replies.resize_with(self.shards, || None);
        }
        for (s, r) in join_all(calls).await {
            if let Some(r) = &r {
                total += r.out.len();
            }
            self.replies[s] = r;
        }
        let mut merged = std::mem::take(&mut self.spare);
        merged.clear();
        merged.reserve(total.min(self.budget));
        let mut cursors = vec![(0usize, 0usize); self.shards];
        let mut prev = 0;
        for m in self.pending.marks.drain(..) {
            merged.extend_from_range(out, prev, m.at);
            prev = m.at;
            match &self.replies[m.shard] {
                Some(r) => {
                    let (i, start) = cursors[m.shard];
                    let end = r.ends[i];
                    merged.extend_from_range(&r.out, start, end);
                    cursors[m.shard] = (i + 1, end);
                }
                None if m.request => encode::server_error(&mut merged, "shard unavailable"),
                None => {}
            }
        }
        merged.extend_from_range(out, prev, out.len());
        std::mem::swap(out, &mut merged);
        self.spare = merged;
        for (s, slot) in self.replies.iter_mut().enumerate() {
            if let Some(r) = slot.take() {
                self.pending.batches[s] = r.batch;
            }
        }
    }
}

/// Where `part` (a slice of `buf`) starts in `buf`.
fn offset_in(buf: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - buf.as_ptr() as usize
}

/// The shard owning a single-key request's key (decoded, for base64 meta
/// keys), or `None` for requests without a key.
fn owner(req: &Request<'_>, shards: usize) -> Option<usize> {
    let mut scratch = [0u8; 256];
    match req {
        Request::MetaGet(m)
        | Request::MetaSet { meta: m, .. }
        | Request::MetaDelete(m)
        | Request::MetaArith(m) => Some(shard_of(m.lookup_key(&mut scratch), shards)),
        Request::TooLarge {
            key, base64: true, ..
        } => {
            let mut m = Meta::new(key);
            m.base64 = true;
            Some(shard_of(m.lookup_key(&mut scratch), shards))
        }
        _ => req.key().map(|k| shard_of(k, shards)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Limits;

    fn owner_of(line: &[u8], shards: usize) -> Option<usize> {
        let (req, _) = parse(line, &Limits::default()).unwrap().unwrap();
        owner(&req, shards)
    }

    #[test]
    fn base64_meta_keys_route_like_their_decoded_form() {
        for shards in [2, 3, 7] {
            let plain = owner_of(b"mg foo v\r\n", shards);
            assert_eq!(owner_of(b"mg Zm9v b v\r\n", shards), plain);
            assert_eq!(owner_of(b"delete foo\r\n", shards), plain);
            assert_eq!(owner_of(b"md Zm9v b\r\n", shards), plain);
        }
        assert_eq!(owner_of(b"version\r\n", 2), None);
    }
}
