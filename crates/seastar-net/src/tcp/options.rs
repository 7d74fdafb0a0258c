//! Options of [`TcpListener::bind`](super::TcpListener::bind).

/// How connections reach the shards.
///
/// * [`Distribute`](Policy::Distribute) (the default, with
///   [`Balance::LeastConnections`]): the first shard to bind the address
///   alone listens and hands each accepted connection to a shard chosen by
///   a [`Balance`] (Seastar's own default), at the cost of one cross-shard
///   message per connection handed over and of that shard's time spent
///   accepting.
/// * [`PerShard`](Policy::PerShard): every shard binds its own
///   `SO_REUSEPORT` socket on the same address and accepts its own
///   connections. The kernel spreads connections by a hash of their
///   addresses: no shared accept queue and no cross-shard message.
///
/// Why distributing is the default: `cargo xtask bench net` (2 shards, 16
/// concurrent short connections with one 64-byte echo each, on two
/// hosts) served 1.30-1.37x the connections per second with `Distribute`
/// and 1.23-1.32x per server CPU-second. `PerShard` spread the connections
/// evenly (75k and 75k in one run) and still did worse: with short
/// connections most of a shard's cost is waking up, and least-connections
/// keeps the accepting shard busy (it served 160k against 38k) instead of
/// waking both shards for every connection. Long-lived connections end up
/// balanced by count either way. With one shard both policies are a plain
/// listening socket.
///
/// Either way, call [`TcpListener::bind`](super::TcpListener::bind) on every
/// shard that should serve (e.g. from
/// [`invoke_on_all`](seastar_core::smp::invoke_on_all)); each shard then
/// accepts from its own listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// One `SO_REUSEPORT` listening socket per shard.
    PerShard,
    /// One acceptor distributing connections (the default, with
    /// [`Balance::LeastConnections`]).
    Distribute(Balance),
}

impl Default for Policy {
    /// [`Policy::Distribute`] with [`Balance::LeastConnections`].
    ///
    /// ```
    /// use seastar_net::{Balance, Policy};
    ///
    /// assert_eq!(Policy::default(), Policy::Distribute(Balance::LeastConnections));
    /// ```
    fn default() -> Policy {
        Policy::Distribute(Balance::LeastConnections)
    }
}

/// How connections reach the shards, as an app's `--listener` option
/// names it: `per-shard` ([`Policy::PerShard`]) or `distribute` (the
/// default: [`Policy::Distribute`] to the least-loaded shard).
///
/// ```
/// use seastar_net::{ListenerMode, Policy};
/// let m: ListenerMode = "per-shard".parse().unwrap();
/// assert_eq!(Policy::from(m), Policy::PerShard);
/// assert_eq!(ListenerMode::default().to_string(), "distribute");
/// assert!("both".parse::<ListenerMode>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ListenerMode {
    /// One `SO_REUSEPORT` listener per shard; the kernel spreads connections.
    PerShard,
    /// Shard 0 accepts and hands each connection to the least-loaded shard.
    #[default]
    Distribute,
}

/// An unknown [`ListenerMode`] name.
#[derive(Debug, thiserror::Error)]
#[error("unknown listener mode `{0}` (expected per-shard or distribute)")]
pub struct ParseListenerModeError(pub String);

impl std::str::FromStr for ListenerMode {
    type Err = ParseListenerModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "per-shard" => Ok(ListenerMode::PerShard),
            "distribute" => Ok(ListenerMode::Distribute),
            other => Err(ParseListenerModeError(other.to_owned())),
        }
    }
}

impl std::fmt::Display for ListenerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListenerMode::PerShard => "per-shard",
            ListenerMode::Distribute => "distribute",
        })
    }
}

impl From<ListenerMode> for Policy {
    fn from(m: ListenerMode) -> Policy {
        match m {
            ListenerMode::PerShard => Policy::PerShard,
            ListenerMode::Distribute => Policy::Distribute(Balance::LeastConnections),
        }
    }
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
    /// A distributing listener (least connections), a backlog of 1024 (capped by
    /// `net.core.somaxconn`), `SO_REUSEADDR` on, `TCP_NODELAY` off.
    fn default() -> Self {
        ListenOptions {
            policy: Policy::default(),
            backlog: 1024,
            reuse_address: true,
            nodelay: false,
        }
    }
}

impl ListenOptions {
    /// How connections reach the shards (default
    /// [`Policy::Distribute`]`(`[`Balance::LeastConnections`]`)`).
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
