//! Coalescing forwarded batches across connections: one cross-shard call
//! per destination per reactor tick, whatever the number of connections.
//!
//! Without it, every read that touches a key of another shard costs its
//! own [`submit_to`](seastar_core::smp::submit_to): a task on the owner, a
//! wake-up of the caller, a reply. Non-pipelined clients (one request per
//! read, the common case) then pay a full cross-shard call per request.
//! Here a connection queues its batch for shard `s`; the first batch
//! queued towards `s` in a tick spawns a flush task, which runs after the
//! other tasks already runnable in that tick (the connections whose reads
//! completed together) have queued theirs, and sends them all in one call.
//! Each connection then receives its own [`Replies`], exactly as if it had
//! called alone.
//!
//! The flush is a task of its own (not one of the connections) so that a
//! connection dropped while waiting cannot strand the others' replies.

use std::cell::RefCell;
use std::rc::Rc;

use seastar_core::promise::{self, Promise};
use seastar_core::smp::Sharded;

use super::routing::{Batch, Replies};
use super::shard::ShardState;

/// Batches waiting for the tick's flush, per destination shard.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    queues: RefCell<Vec<Vec<Queued>>>,
}

#[derive(Debug)]
struct Queued {
    batch: Batch,
    reply: Promise<Option<Replies>>,
}

impl Coalescer {
    /// Queues `batch` for shard `dest`; resolves to its replies, or `None`
    /// if the owner could not run it (it stopped).
    pub fn forward(
        state: &Rc<ShardState>,
        service: &Sharded<ShardState>,
        dest: usize,
        batch: Batch,
    ) -> impl Future<Output = Option<Replies>> + 'static {
        let (reply, rx) = promise::promise();
        let mut queues = state.coalescer.queues.borrow_mut();
        if queues.len() <= dest {
            queues.resize_with(dest + 1, Vec::new);
        }
        let first = queues[dest].is_empty();
        queues[dest].push(Queued { batch, reply });
        if first {
            let (state, service) = (state.clone(), service.clone());
            seastar_core::spawn_local(flush(state, service, dest)).detach();
        }
        async move { rx.await.ok().flatten() }
    }
}

/// Sends every batch queued for `dest` in one call, once the tasks
/// runnable with it had their turn, and hands each its replies.
async fn flush(state: Rc<ShardState>, service: Sharded<ShardState>, dest: usize) {
    seastar_core::yield_now().await;
    let queued = std::mem::take(&mut state.coalescer.queues.borrow_mut()[dest]);
    let (batches, replies): (Vec<Batch>, Vec<_>) =
        queued.into_iter().map(|q| (q.batch, q.reply)).unzip();
    let ran = service
        .invoke_on(dest, move |st| async move {
            batches
                .into_iter()
                .map(|b| st.run_batch(b))
                .collect::<Vec<_>>()
        })
        .await;
    match ran {
        Ok(answers) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                reply.set_value(Some(answer));
            }
        }
        Err(e) => {
            tracing::warn!(
                shard = seastar_core::shard_id(),
                to = dest,
                error = %e,
                "forwarding failed"
            );
            for reply in replies {
                reply.set_value(None);
            }
        }
    }
}
