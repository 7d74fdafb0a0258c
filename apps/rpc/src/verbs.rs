//! The native verbs served by `rpc server --port`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use seastar_core::shard_local::{self, SlotKey};
use seastar_rpc::{RpcServer, Sink, Source};
use serde::{Deserialize, Serialize};

/// `Vec<u8>` → the same bytes.
pub const ECHO: u32 = 1;
/// [`HelloArgs`] → `"Hello <name>!"`, or [`HelloError`].
pub const HELLO: u32 = 2;
/// A stream: opened with a count `n`, the server sends `0..n`; every
/// item the client sends is added to a sum, reported as the last item.
pub const COUNT: u32 = 3;

/// `()` → [`Stats`] of the shard that serves the call.
pub const STATS: u32 = 4;

/// What [`STATS`] answers: this shard's server counters and its [`HELLO`]
/// calls (a call whose handler was dropped before it answered counts as
/// cancelled, so tests can see a client's departure cancel its calls).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The native server's counters.
    pub server: seastar_rpc::ServerStats,
    /// Connections open on the native port.
    pub connections: u64,
    /// Greetings started: [`HELLO`] handlers and gRPC `SayHello` calls.
    pub hello_started: u64,
    /// [`HELLO`] handlers dropped before they answered.
    pub hello_cancelled: u64,
}

/// This shard's [`HELLO`] counters, in its slots (per runtime).
#[derive(Default)]
struct Hellos {
    started: Cell<u64>,
    cancelled: Cell<u64>,
}

/// The calling shard's counters; `None` off a shard (a handler dropped
/// while its shard is torn down).
fn hellos() -> Option<Rc<Hellos>> {
    seastar_core::ShardId::try_current()?;
    Some(shard_local::get_or_init(
        SlotKey::SINGLETON,
        Hellos::default,
    ))
}

/// Counts a [`HELLO`] handler dropped before it finished.
struct HelloGuard {
    done: bool,
}

impl Drop for HelloGuard {
    fn drop(&mut self) {
        if !self.done
            && let Some(h) = hellos()
        {
            h.cancelled.set(h.cancelled.get() + 1);
        }
    }
}

/// Counts a greeting started (native [`HELLO`] or gRPC `SayHello`).
pub fn count_hello_started() {
    if let Some(h) = hellos() {
        h.started.set(h.started.get() + 1);
    }
}

/// This shard's [`HELLO`] counters: (started, cancelled).
pub fn hello_counters() -> (u64, u64) {
    hellos().map_or((0, 0), |h| (h.started.get(), h.cancelled.get()))
}

/// The argument of [`HELLO`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloArgs {
    /// Who to greet.
    pub name: String,
    /// Wait this long first (milliseconds).
    pub delay_ms: u32,
}

/// The typed error of [`HELLO`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloError {
    /// The name was empty.
    EmptyName,
}

/// Registers every verb on `server`.
///
/// ```
/// let server = seastar_rpc::RpcServer::new(Default::default());
/// rpc::verbs::register(&server);
/// ```
pub fn register(server: &RpcServer) {
    server.register(ECHO, |v: Vec<u8>| async move { Ok::<_, ()>(v) });
    server.register(HELLO, |a: HelloArgs| async move {
        count_hello_started();
        let mut guard = HelloGuard { done: false };
        if a.delay_ms > 0 {
            seastar_core::timer::sleep(Duration::from_millis(a.delay_ms.into())).await;
        }
        guard.done = true;
        if a.name.is_empty() {
            return Err(HelloError::EmptyName);
        }
        Ok(format!("Hello {}!", a.name))
    });
    server.register_stream(
        COUNT,
        |n: u64, mut input: Source<u64>, mut out: Sink<u64>| async move {
            for i in 0..n {
                out.send(&i).await.map_err(|e| e.to_string())?;
            }
            let mut sum = 0u64;
            while let Some(v) = input.next().await {
                sum += v.map_err(|e| e.to_string())?;
            }
            out.send(&sum).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_counters_are_per_runtime() {
        let first = seastar_core::block_on(async {
            count_hello_started();
            drop(HelloGuard { done: false });
            hello_counters()
        });
        assert_eq!(first, (1, 1));
        // The next runtime on this thread starts from zero.
        assert_eq!(seastar_core::block_on(async { hello_counters() }), (0, 0));
    }
}
