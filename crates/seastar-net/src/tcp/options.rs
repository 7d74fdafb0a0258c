//! Options of [`TcpListener::bind`](super::TcpListener::bind).

/// How connections reach the shards.
///
/// * [`PerShard`](Policy::PerShard) (the default): every shard binds its own
///   `SO_REUSEPORT` socket on the same address and accepts its own
///   connections. The kernel spreads connections by a hash of their
///   addresses: no shared accept queue, no cross-shard message per
///   connection, but hashing can leave shards unevenly loaded when
///   connections are few or short-lived.
/// * [`Distribute`](Policy::Distribute): shard 0 alone listens and hands
///   each accepted connection to a shard chosen by a [`Balance`] (Seastar's
///   own default), at the cost of one cross-shard message per connection
///   and of shard 0's time spent accepting.
///
/// Either way, call [`TcpListener::bind`](super::TcpListener::bind) on every
/// shard that should serve (e.g. from
/// [`invoke_on_all`](seastar_core::smp::invoke_on_all)); each shard then
/// accepts from its own listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// One `SO_REUSEPORT` listening socket per shard.
    #[default]
    PerShard,
    /// One acceptor on shard 0 distributing connections.
    Distribute(Balance),
}

/// How [`Policy::Distribute`] picks the shard for a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Balance {
    /// The shard with the fewest open connections (ties: round robin).
    #[default]
    LeastConnections,
    /// Each shard in turn.
    RoundRobin,
}

/// Options for [`TcpListener::bind`](super::TcpListener::bind).
///
/// ```
/// use seastar_net::{Balance, ListenOptions, Policy};
///
/// let opts = ListenOptions::default()
///     .policy(Policy::Distribute(Balance::RoundRobin))
///     .backlog(512);
/// assert_eq!(opts.backlog, 512);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenOptions {
    /// How connections reach the shards.
    pub policy: Policy,
    /// The listen backlog.
    pub backlog: u32,
    /// `SO_REUSEADDR` on the listening socket.
    pub reuse_address: bool,
    /// `TCP_NODELAY` on accepted connections.
    pub nodelay: bool,
}

impl Default for ListenOptions {
    /// Per-shard listeners, a backlog of 1024 (capped by
    /// `net.core.somaxconn`), `SO_REUSEADDR` on, `TCP_NODELAY` off.
    fn default() -> Self {
        ListenOptions {
            policy: Policy::PerShard,
            backlog: 1024,
            reuse_address: true,
            nodelay: false,
        }
    }
}

impl ListenOptions {
    /// How connections reach the shards (default [`Policy::PerShard`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The listen backlog (default 1024).
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// `SO_REUSEADDR` (default on): rebind while old connections linger
    /// in `TIME_WAIT`.
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = on;
        self
    }

    /// Set `TCP_NODELAY` on every accepted connection (default off).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }
}
