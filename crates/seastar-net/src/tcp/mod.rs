//! TCP: [`TcpStream`], [`TcpListener`] and the listening [`Policy`].

mod group;
mod listener;
mod options;
mod stream;

pub(crate) use listener::ConnGuard;
pub use listener::{ListenerStats, TcpListener};
pub use options::{Balance, ListenOptions, Policy};
pub use stream::TcpStream;
