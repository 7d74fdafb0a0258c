//! The push loop: every interval, gather all shards' metrics and send them
//! to collectd over UDP.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, SystemTime};

use seastar_core::metrics;
use seastar_core::{JoinHandle, spawn_local, timer};

use super::convert::{PushInfo, encode_snapshot};
use super::packet::MAX_PACKET;
use crate::UdpSocket;

/// Where and how often to push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// collectd's network plugin (`<Listen>`; port 25826 by default).
    pub address: SocketAddr,
    /// How often to push (collectd's `Interval`, 10 s by default).
    pub interval: Duration,
    /// The host part of every identifier.
    pub host: String,
    /// The plugin part: the application's name.
    pub plugin: String,
    /// Packet size limit ([`MAX_PACKET`], 1452 bytes, by default).
    pub max_packet: usize,
}

impl Config {
    /// Pushes to `address` as plugin `plugin` every 10 s, with this
    /// machine's host name ([`hostname`]).
    ///
    /// ```
    /// let c = seastar_net::collectd::Config::new("127.0.0.1:25826".parse().unwrap(), "httpd");
    /// assert_eq!(c.interval, std::time::Duration::from_secs(10));
    /// assert_eq!(c.max_packet, 1452);
    /// ```
    pub fn new(address: SocketAddr, plugin: &str) -> Config {
        Config {
            address,
            interval: Duration::from_secs(10),
            host: hostname(),
            plugin: plugin.to_owned(),
            max_packet: MAX_PACKET,
        }
    }

    /// The configuration an app's `--collectd-address HOST:PORT` and
    /// `--collectd-interval SECONDS` flags describe: resolves `address`
    /// (a blocking lookup: call it before the runtime starts) and checks
    /// the interval.
    ///
    /// ```
    /// use seastar_net::collectd::{Config, ConfigError};
    ///
    /// let c = Config::resolve("127.0.0.1:25826", "httpd", 2.5).unwrap();
    /// assert_eq!(c.interval, std::time::Duration::from_millis(2500));
    /// assert_eq!(Config::resolve("127.0.0.1:1", "httpd", 0.0), Err(ConfigError::Interval));
    /// assert!(matches!(Config::resolve("no port", "httpd", 1.0), Err(ConfigError::Address(..))));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if the address does not resolve or the interval is
    /// not a positive, finite number of seconds.
    pub fn resolve(address: &str, plugin: &str, interval_secs: f64) -> Result<Config, ConfigError> {
        if !(interval_secs.is_finite() && interval_secs > 0.0) {
            return Err(ConfigError::Interval);
        }
        let bad = |e: String| ConfigError::Address(address.to_owned(), e);
        let addr = address
            .to_socket_addrs()
            .map_err(|e| bad(e.to_string()))?
            .next()
            .ok_or_else(|| bad("no address".to_owned()))?;
        let mut config = Config::new(addr, plugin);
        config.interval = Duration::from_secs_f64(interval_secs);
        Ok(config)
    }
}

/// Why [`Config::resolve`] refused its flags.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The address does not resolve: the address and the reason.
    #[error("--collectd-address {0}: {1}")]
    Address(String, String),
    /// The interval is not a positive number of seconds.
    #[error("--collectd-interval must be a positive number of seconds")]
    Interval,
}

/// This machine's host name (from `/proc/sys/kernel/hostname`; `localhost`
/// if unreadable). Reads a file: call it before the runtime starts, or
/// accept one tiny procfs read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// What a [`Client`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Pushes completed (every shard gathered, every packet handed to the
    /// kernel or failed).
    pub pushes: u64,
    /// Packets sent.
    pub packets: u64,
    /// Packets whose send failed.
    pub errors: u64,
    /// Packets of the latest push.
    pub last_packets: u64,
}

#[derive(Default)]
struct Shared {
    pushes: Cell<u64>,
    packets: Cell<u64>,
    errors: Cell<u64>,
    last_packets: Cell<u64>,
    /// Tasks in [`Client::pushed`], woken after each push.
    waiters: RefCell<Vec<Waker>>,
}

/// A running collectd client on the shard that started it. Stops when
/// dropped (or by [`stop`](Client::stop)).
///
/// ```
/// use std::time::Duration;
/// use seastar_core::{Runtime, timer::ManualClock};
/// use seastar_net::{UdpSocket, collectd};
///
/// Runtime::builder().shards(2).manual_clock().build().unwrap().run(async {
///     let collector = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
///     let mut config = collectd::Config::new(collector.local_addr().unwrap(), "doc");
///     config.interval = Duration::from_secs(10);
///     let client = collectd::Client::start(config).unwrap();
///     ManualClock::advance(Duration::from_secs(10)).await;
///     client.pushed(1).await;
///     let (r, packet) = collector.recv_from(Vec::with_capacity(1452)).await;
///     assert!(r.unwrap().0 > 0 && packet.starts_with(&[0, 0]));
///     client.stop();
/// });
/// ```
#[derive(Debug)]
pub struct Client {
    task: Option<JoinHandle<()>>,
    shared: Rc<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("pushes", &self.pushes.get())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Binds a UDP socket on the calling shard and starts pushing every
    /// `config.interval` (first push one interval from now).
    ///
    /// # Errors
    ///
    /// If the socket cannot be created or the interval is zero.
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn start(config: Config) -> io::Result<Client> {
        if config.interval.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "collectd interval must be positive",
            ));
        }
        let local: SocketAddr = if config.address.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid")
        } else {
            "[::]:0".parse().expect("valid")
        };
        let sock = UdpSocket::bind(local)?;
        let shared = Rc::new(Shared::default());
        // The schedule starts now, not when the task is first polled.
        let start = (SystemTime::now(), timer::now());
        let task = spawn_local(run(sock, config, start, shared.clone()));
        Ok(Client {
            task: Some(task),
            shared,
        })
    }

    /// What the client has done so far.
    pub fn stats(&self) -> ClientStats {
        let s = &self.shared;
        ClientStats {
            pushes: s.pushes.get(),
            packets: s.packets.get(),
            errors: s.errors.get(),
            last_packets: s.last_packets.get(),
        }
    }

    /// Completes once at least `n` pushes have completed (`n` counts from
    /// the client's start).
    pub async fn pushed(&self, n: u64) {
        poll_fn(|cx| {
            if self.shared.pushes.get() >= n {
                return Poll::Ready(());
            }
            self.shared.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }

    /// Stops pushing (a push in progress is abandoned).
    pub fn stop(mut self) {
        self.abort();
    }

    fn abort(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.abort();
    }
}

async fn run(
    sock: UdpSocket,
    config: Config,
    (wall0, t0): (SystemTime, std::time::Instant),
    shared: Rc<Shared>,
) {
    // Wall time of each push: the runtime's clock (manual in tests) offset
    // from the wall clock at start, so pushes are exactly `interval` apart.
    let mut next = t0;
    let mut failing = false;
    loop {
        next += config.interval;
        timer::sleep_until(next).await;
        let snapshot = match metrics::gather().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "collectd: could not gather metrics; skipping this push");
                continue;
            }
        };
        let info = PushInfo {
            host: &config.host,
            plugin: &config.plugin,
            time: wall0 + (timer::now() - t0),
            interval: config.interval,
            max_packet: config.max_packet,
        };
        let packets = encode_snapshot(&snapshot, &info);
        let n = packets.len() as u64;
        for p in packets {
            let (r, _) = sock.send_to(p, config.address).await;
            match r {
                Ok(_) => {
                    shared.packets.set(shared.packets.get() + 1);
                    if std::mem::replace(&mut failing, false) {
                        tracing::info!(address = %config.address, "collectd: sending again");
                    }
                }
                Err(e) => {
                    shared.errors.set(shared.errors.get() + 1);
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(address = %config.address, error = %e, "collectd: send failed");
                    }
                }
            }
        }
        shared.last_packets.set(n);
        shared.pushes.set(shared.pushes.get() + 1);
        let waiters = std::mem::take(&mut *shared.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }
}
