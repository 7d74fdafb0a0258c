//! The native verbs served by `rpc server --port`.

use std::time::Duration;

use seastar_rpc::{RpcServer, Sink, Source};
use serde::{Deserialize, Serialize};

/// `Vec<u8>` → the same bytes.
pub const ECHO: u32 = 1;
/// [`HelloArgs`] → `"Hello <name>!"`, or [`HelloError`].
pub const HELLO: u32 = 2;
/// A stream: opened with a count `n`, the server sends `0..n`; every
/// item the client sends is added to a sum, reported as the last item.
pub const COUNT: u32 = 3;

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
        if a.delay_ms > 0 {
            seastar_core::timer::sleep(Duration::from_millis(a.delay_ms.into())).await;
        }
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
