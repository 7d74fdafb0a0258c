//! hyper on a shard (feature `hyper`).
//!
//! | module | what it holds |
//! |---|---|
//! | `io` | `hyper::rt::{Read, Write}` for [`TcpStream`](crate::TcpStream) and [`UnixStream`](crate::UnixStream) |
//! | `rt` | [`ShardExecutor`] (hyper's `rt::Executor`, spawning on the current shard) and [`ShardTimer`] (hyper's `rt::Timer` on the shard's timer queue) |
//!
//! With these three pieces hyper needs no tokio: connections, their HTTP/2
//! stream tasks and their timeouts all live on the shard that accepted the
//! connection.

mod io;
mod rt;

pub use rt::{ShardExecutor, ShardSleep, ShardTimer};
