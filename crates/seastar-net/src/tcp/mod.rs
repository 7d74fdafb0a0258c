//! TCP: [`TcpStream`], [`TcpListener`] and the listening [`Policy`];
//! [`ShardedListeners`], one address bound and served on every shard.

mod group;
mod listener;
mod options;
mod sharded;
mod stream;

pub(crate) use listener::ConnGuard;
pub use listener::{ListenerStats, TcpListener};
pub use options::{Balance, ListenOptions, ListenerMode, ParseListenerModeError, Policy};
pub use sharded::{BindAllError, ShardedListeners};
pub use stream::TcpStream;
