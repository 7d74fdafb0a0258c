//! The command line: memcached's common flags plus the runtime's options.
//!
//! | flag | meaning | default |
//! |---|---|---|
//! | `-p`, `--port` | TCP port (0: any free port; with `--network-stack native`: TCP off) | 11211 |
//! | `-U`, `--udp-port` | UDP port, 0 = off | 0 |
//! | `-l`, `--listen` | address to listen on | 127.0.0.1 |
//! | `-m`, `--memory-limit` | item memory in MiB, split across shards | 64 |
//! | `-c`, `--conn-limit` | simultaneous connections, split across shards | 1024 |
//! | `-t`, `--threads` | threads, i.e. shards (same as `--smp`) | one per CPU |
//! | `-I`, `--max-item-size` | largest item, `k`/`m` suffixes | 1m |
//! | `-v` | more logging (`-vv`: even more) | |
//! | `--prometheus-port` | serve metrics at `http://<-l>:PORT/metrics` (0: any free port) | off |
//! | `--collectd-address` | push metrics to collectd at `host:port` | off |
//! | `--collectd-interval` | seconds between collectd pushes | 10 |
//! | `--admin-port`, `--admin-address`, `--admin-token-file` | the admin REST API and live dashboard (items, hit ratio, evictions per shard), loopback unless told | off |
//! | `--conn-output-budget` | reply bytes a connection builds before it waits for the client to read them (`k`/`m` suffixes) | 1m |
//! | `--udp-reply-max` | reply bytes after which a UDP request stops executing and its reply ends with `SERVER_ERROR out of memory writing get response` (`k`/`m` suffixes) | 1m |
//! | `--listener per-shard\|distribute` | how TCP connections reach the shards: one SO_REUSEPORT listener per shard, or shard 0 handing each to the least-loaded shard | distribute |
//! | `-o idle_timeout=N`, `--idle-timeout` | close a connection after N seconds without a request, 0 = never | 0 |
//! | `-Z`, `--enable-ssl` with `-o ssl_chain_cert=FILE,ssl_key=FILE[,ssl_ca_cert=FILE,ssl_verify_mode=N]` | TLS on the TCP port, as stock memcached (see `server::tls`) | off |
//! | `--network-stack native`, `--xdp-device IFACE` / `--tap-device NAME`, `--host-ipv4-addr`, `--gw-ipv4-addr`, `--netmask-ipv4-addr` | serve UDP (`-U`) on the user-space stack; needs `-p 0` (TCP off, as in stock memcached) until the native stack has TCP | posix |
//!
//! plus [`RuntimeArgs`] (`--smp`, `--cpuset`, `--reactor-backend`,
//! `--poll-mode`, `--shutdown-timeout`: how long a stop waits for the
//! connections before it aborts them, ...). `-t` and `--smp` name the same number: give either,
//! or both with the same value.
//!
//! ```
//! use clap::Parser;
//! use memcached::cli::Args;
//! let args = Args::parse_from(["memcached", "-p", "0", "-m", "8", "-t", "2", "-I", "2m"]);
//! let (config, runtime) = args.resolve().unwrap();
//! assert_eq!(config.memory_limit, 8 << 20);
//! assert_eq!(config.item_size_max, 2 << 20);
//! assert_eq!(runtime.smp, Some(2));
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use seastar_core::runtime::RuntimeArgs;
use seastar_net::native::config::NetworkArgs;
use seastar_net::{ListenerMode, collectd};

use crate::server::Config;

/// memcached's flags (see the module doc).
#[derive(Parser, Debug, Clone)]
#[command(
    name = "memcached",
    about = "A memcached-compatible cache server on seastar-rs: one shard per core, keys owned by the shard their hash picks",
    disable_version_flag = true
)]
pub struct Args {
    /// TCP port to listen on (0: any free port).
    #[arg(short = 'p', long = "port", default_value_t = 11211)]
    pub port: u16,
    /// UDP port to listen on, 0 is off.
    #[arg(short = 'U', long = "udp-port", default_value_t = 0)]
    pub udp_port: u16,
    /// Interface to listen on.
    #[arg(short = 'l', long = "listen", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub listen: IpAddr,
    /// Item memory in megabytes, split evenly across the shards.
    #[arg(short = 'm', long = "memory-limit", default_value_t = 64)]
    pub memory_mb: u64,
    /// Max simultaneous connections, split evenly across the shards.
    #[arg(short = 'c', long = "conn-limit", default_value_t = 1024)]
    pub conn_limit: usize,
    /// Number of threads: the shard count (same as --smp); default: one
    /// per CPU available.
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Largest item: bytes, or with a k/m suffix (min 1k, max 1024m).
    #[arg(short = 'I', long = "max-item-size", default_value = "1m", value_parser = parse_item_size)]
    pub max_item_size: usize,
    /// Verbose logging; repeat for more.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Serve every shard's metrics for Prometheus on this port, at
    /// `/metrics` on the `-l` address (0: any free port). Off by default.
    #[arg(long = "prometheus-port", value_name = "PORT")]
    pub prometheus_port: Option<u16>,
    /// Push every shard's metrics to collectd (network plugin) at
    /// `host:port`. Off by default.
    #[arg(long = "collectd-address", value_name = "HOST:PORT")]
    pub collectd_address: Option<String>,
    /// Seconds between collectd pushes.
    #[arg(
        long = "collectd-interval",
        value_name = "SECONDS",
        default_value_t = 10.0
    )]
    pub collectd_interval: f64,
    /// Reply bytes one connection builds before it stops executing its
    /// requests until the client has read them (the bound on what a client
    /// that does not read, or asks for one large value many times, costs):
    /// bytes, or with a k/m suffix.
    #[arg(long = "conn-output-budget", value_name = "BYTES", default_value = "1m", value_parser = parse_budget)]
    pub conn_output_budget: usize,
    /// Reply bytes after which one UDP request stops executing: the reply
    /// then ends with `SERVER_ERROR out of memory writing get response`
    /// instead of the rest (bytes, or with a k/m suffix).
    #[arg(long = "udp-reply-max", value_name = "BYTES", default_value = "1m", value_parser = parse_budget)]
    pub udp_reply_max: usize,
    /// How TCP connections reach the shards: `distribute` (shard 0
    /// accepts and hands each connection to the least-loaded shard) or
    /// `per-shard` (one SO_REUSEPORT listener per shard; the kernel
    /// spreads connections).
    #[arg(long, value_name = "MODE", default_value_t = ListenerMode::Distribute)]
    pub listener: ListenerMode,
    /// Close a connection after this many seconds without a request; 0
    /// never does.
    #[arg(long = "idle-timeout", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// memcached's extended options, comma-separated: `idle_timeout=N`
    /// (same as --idle-timeout) and, with `-Z`, `ssl_chain_cert`, `ssl_key`,
    /// `ssl_ca_cert`, `ssl_verify_mode`; others are ignored with a warning;
    /// none by default.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub extended: Vec<String>,
    /// TLS on the TCP port: needs `-o ssl_chain_cert=FILE,ssl_key=FILE`
    /// (`ssl_ca_cert=FILE,ssl_verify_mode=2` to require client certificates).
    #[arg(short = 'Z', long = "enable-ssl")]
    pub enable_ssl: bool,
    /// Runtime options.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The admin API and dashboard (`--admin-port`, `--admin-address`,
    /// `--admin-token-file`).
    #[command(flatten)]
    pub admin: seastar_http::admin::AdminArgs,
    /// Network stack options (`--network-stack native` serves UDP on the
    /// user-space stack; needs `-p 0`, see `server::native`).
    #[command(flatten)]
    pub net: NetworkArgs,
}

/// Contradictory or out-of-range flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// `-t` and `--smp` given with different values.
    #[error("-t {threads} and --smp {smp} disagree: they both set the number of shards")]
    ThreadsVsSmp {
        /// `-t`.
        threads: usize,
        /// `--smp`.
        smp: usize,
    },
    /// `-t 0` or `--smp 0`.
    #[error("the number of threads must be at least 1")]
    NoThreads,
    /// `-m 0`, or more memory than the address space.
    #[error("-m {0}: the memory limit must be at least 1 megabyte")]
    Memory(u64),
    /// `-c 0`.
    #[error("-c must be at least 1")]
    Connections,
    /// `-o idle_timeout=` without a number of seconds.
    #[error("-o idle_timeout={0}: not a number of seconds")]
    IdleTimeout(String),
    /// `--idle-timeout` and `-o idle_timeout` given with different values.
    #[error("--idle-timeout {flag} and -o idle_timeout={option} disagree")]
    IdleTimeoutTwice {
        /// `--idle-timeout`.
        flag: u64,
        /// `-o idle_timeout`.
        option: u64,
    },
    /// `--collectd-address` does not resolve, or `--collectd-interval` is
    /// not a positive number of seconds.
    #[error(transparent)]
    Collectd(#[from] collectd::ConfigError),
    /// Contradictory or incomplete `--network-stack` options.
    #[error(transparent)]
    Network(#[from] seastar_net::native::config::ConfigError),
    /// `--network-stack native` with TCP on.
    #[error(
        "-p {0}: TCP on the native stack is not supported yet; pass -p 0 (TCP off, as in stock memcached) and serve UDP with -U"
    )]
    NativeTcp(u16),
    /// `--network-stack native` without `-U`.
    #[error("--network-stack native serves UDP only: give -U PORT")]
    NativeNoUdp,
    /// Bad or incomplete TLS options (`-Z`, `-o ssl_*`), or a PEM file
    /// that does not load.
    #[error("TLS: {0}")]
    Tls(String),
}

impl Args {
    /// The server configuration and the runtime options, `-t` folded into
    /// `--smp`.
    pub fn resolve(self) -> Result<(Config, RuntimeArgs), CliError> {
        let mut runtime = self.runtime;
        runtime.smp = match (self.threads, runtime.smp) {
            (Some(t), Some(s)) if t != s => {
                return Err(CliError::ThreadsVsSmp { threads: t, smp: s });
            }
            (Some(n), _) | (None, Some(n)) if n == 0 => return Err(CliError::NoThreads),
            (t, s) => t.or(s),
        };
        let memory_limit = usize::try_from(self.memory_mb)
            .ok()
            .and_then(|m| m.checked_mul(1 << 20))
            .filter(|&m| m > 0)
            .ok_or(CliError::Memory(self.memory_mb))?;
        if self.conn_limit == 0 {
            return Err(CliError::Connections);
        }
        let mut idle = self.idle_timeout;
        let mut ssl = crate::server::tls::SslOptions {
            enabled: self.enable_ssl,
            ..Default::default()
        };
        for opt in self.extended.iter().flat_map(|o| o.split(',')) {
            match opt.trim().split_once('=') {
                Some(("idle_timeout", v)) => {
                    let n: u64 = v.parse().map_err(|_| CliError::IdleTimeout(v.to_owned()))?;
                    match idle {
                        Some(flag) if flag != n => {
                            return Err(CliError::IdleTimeoutTwice { flag, option: n });
                        }
                        _ => idle = Some(n),
                    }
                }
                Some((k, v)) if k.starts_with("ssl_") => match ssl.take(k, v) {
                    Some(r) => r.map_err(CliError::Tls)?,
                    None => tracing::warn!(option = opt, "ignoring unsupported -o option"),
                },
                _ => tracing::warn!(option = opt, "ignoring unsupported -o option"),
            }
        }
        let native = self
            .net
            .native_config()?
            .map(crate::server::native::NativeNet);
        if native.is_some() {
            if self.port != 0 {
                return Err(CliError::NativeTcp(self.port));
            }
            if self.udp_port == 0 {
                return Err(CliError::NativeNoUdp);
            }
        }
        let config = Config {
            native,
            tcp: SocketAddr::new(self.listen, self.port),
            listener: self.listener,
            udp: (self.udp_port != 0).then(|| SocketAddr::new(self.listen, self.udp_port)),
            memory_limit,
            max_connections: self.conn_limit,
            item_size_max: self.max_item_size,
            prometheus: self
                .prometheus_port
                .map(|port| SocketAddr::new(self.listen, port)),
            collectd: match &self.collectd_address {
                None => None,
                Some(a) => Some(collectd::Config::resolve(
                    a,
                    "memcached",
                    self.collectd_interval,
                )?),
            },
            conn_output_budget: self.conn_output_budget,
            udp_reply_max: self.udp_reply_max,
            idle_timeout: idle.filter(|&n| n > 0).map(Duration::from_secs),
            shutdown_timeout: runtime.shutdown_timeout(),
            tls: ssl
                .acceptor()
                .map_err(CliError::Tls)?
                .map(crate::server::tls::TlsConfig),
        };
        Ok((config, runtime))
    }

    /// The default log filter for `-v` (overridden by `RUST_LOG`).
    pub fn log_filter(&self) -> &'static str {
        match self.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    }
}

/// Parses memcached's `-I`: bytes, `k` or `m` suffix, 1k to 1024m.
fn parse_item_size(s: &str) -> Result<usize, String> {
    let bytes = parse_bytes(s)?;
    if bytes < 1024 {
        return Err(format!("item size `{s}` is below the minimum of 1k"));
    }
    if bytes > 1 << 30 {
        return Err(format!("item size `{s}` is above the maximum of 1024m"));
    }
    Ok(bytes)
}

/// Parses `--conn-output-budget`: bytes, `k` or `m` suffix, 4k to 1024m.
fn parse_budget(s: &str) -> Result<usize, String> {
    let bytes = parse_bytes(s)?;
    if !(4096..=1 << 30).contains(&bytes) {
        return Err(format!("output budget `{s}` is not between 4k and 1024m"));
    }
    Ok(bytes)
}

/// Bytes, or a number with a `k` or `m` suffix.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, shift) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 20),
        _ => (t, 0),
    };
    let n: usize = digits.parse().map_err(|_| format!("bad item size `{s}`"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size `{s}` too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("memcached").chain(list.iter().copied())).unwrap()
    }

    seastar_core::help_test!(Args);

    #[test]
    fn listener_mode_is_chosen_by_name() {
        assert_eq!(
            args(&[]).resolve().unwrap().0.listener,
            ListenerMode::Distribute
        );
        let (c, _) = args(&["--listener", "per-shard"]).resolve().unwrap();
        assert_eq!(c.listener, ListenerMode::PerShard);
        let err = Args::try_parse_from(["memcached", "--listener", "both"]).unwrap_err();
        assert!(err.to_string().contains("per-shard or distribute"), "{err}");
    }

    #[test]
    fn defaults_are_memcacheds() {
        let (c, rt) = args(&[]).resolve().unwrap();
        assert_eq!(c.tcp, "127.0.0.1:11211".parse().unwrap());
        assert_eq!(c.udp, None);
        assert_eq!(c.memory_limit, 64 << 20);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.item_size_max, 1 << 20);
        assert_eq!(rt.smp, None);
    }

    #[test]
    fn native_stack_serves_udp_only_with_tcp_off() {
        let native = [
            "--network-stack",
            "native",
            "--xdp-device",
            "veth0",
            "--host-ipv4-addr",
            "10.0.0.2",
        ];
        let with = |extra: &[&str]| {
            let mut a: Vec<&str> = native.to_vec();
            a.extend_from_slice(extra);
            args(&a).resolve()
        };
        let (c, _) = with(&["-p", "0", "-U", "11211"]).unwrap();
        let net = &c.native.as_ref().unwrap().0;
        assert_eq!(
            net.device,
            seastar_net::native::device::DeviceSpec::xdp("veth0")
        );
        assert_eq!(net.iface.addr, std::net::Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(c.udp.map(|a| a.port()), Some(11211));
        let e = with(&["-U", "11211"]).unwrap_err();
        assert_eq!(e, CliError::NativeTcp(11211));
        assert!(e.to_string().contains("pass -p 0"), "{e}");
        assert_eq!(with(&["-p", "0"]).unwrap_err(), CliError::NativeNoUdp);
        let e = args(&["--network-stack", "native", "-p", "0", "-U", "1"]).resolve();
        assert!(matches!(e, Err(CliError::Network(_))));
        // The posix stack is the default and takes no native options.
        assert!(args(&[]).resolve().unwrap().0.native.is_none());
        let e = args(&["--xdp-device", "veth0"]).resolve();
        assert!(matches!(e, Err(CliError::Network(_))));
    }

    #[test]
    fn metrics_exporters_are_off_by_default_and_configurable() {
        let (c, _) = args(&[]).resolve().unwrap();
        assert_eq!((c.prometheus, c.collectd.is_none()), (None, true));
        let (c, _) = args(&[
            "-l",
            "0.0.0.0",
            "--prometheus-port",
            "9180",
            "--collectd-address",
            "127.0.0.1:25826",
            "--collectd-interval",
            "2.5",
        ])
        .resolve()
        .unwrap();
        assert_eq!(c.prometheus, Some("0.0.0.0:9180".parse().unwrap()));
        let cd = c.collectd.unwrap();
        assert_eq!(cd.address, "127.0.0.1:25826".parse().unwrap());
        assert_eq!(cd.interval, std::time::Duration::from_millis(2500));
        assert_eq!(cd.plugin, "memcached");
        for bad in ["0", "-1", "nan"] {
            let interval = format!("--collectd-interval={bad}");
            let r = args(&["--collectd-address", "127.0.0.1:1", &interval]).resolve();
            assert_eq!(
                r.unwrap_err(),
                CliError::Collectd(collectd::ConfigError::Interval)
            );
        }
        let r = args(&["--collectd-address", "no-port-here"]).resolve();
        assert!(matches!(
            r,
            Err(CliError::Collectd(collectd::ConfigError::Address(..)))
        ));
    }

    #[test]
    fn threads_and_smp_must_agree() {
        assert_eq!(args(&["-t", "3"]).resolve().unwrap().1.smp, Some(3));
        assert_eq!(args(&["--smp", "3"]).resolve().unwrap().1.smp, Some(3));
        assert_eq!(
            args(&["-t", "2", "--smp", "2"]).resolve().unwrap().1.smp,
            Some(2)
        );
        assert_eq!(
            args(&["-t", "2", "--smp", "3"]).resolve().unwrap_err(),
            CliError::ThreadsVsSmp { threads: 2, smp: 3 }
        );
        assert_eq!(
            args(&["-t", "0"]).resolve().unwrap_err(),
            CliError::NoThreads
        );
    }

    #[test]
    fn udp_port_zero_is_off() {
        let (c, _) = args(&["-U", "0", "-l", "::1"]).resolve().unwrap();
        assert_eq!(c.udp, None);
        let (c, _) = args(&["-U", "11311", "-l", "::1"]).resolve().unwrap();
        assert_eq!(c.udp, Some("[::1]:11311".parse().unwrap()));
    }

    #[test]
    fn item_sizes_parse_like_memcached() {
        assert_eq!(parse_item_size("1m"), Ok(1 << 20));
        assert_eq!(parse_item_size("512k"), Ok(512 << 10));
        assert_eq!(parse_item_size("4096"), Ok(4096));
        assert!(parse_item_size("10").is_err());
        assert!(parse_item_size("2048m").is_err());
        assert!(parse_item_size("1g").is_err());
    }

    #[test]
    fn hardening_options_have_safe_defaults_and_parse() {
        let (c, _) = args(&[]).resolve().unwrap();
        assert_eq!(c.conn_output_budget, 1 << 20);
        assert_eq!(c.udp_reply_max, 1 << 20);
        assert_eq!(c.idle_timeout, None);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
        let (c, _) = args(&[
            "--conn-output-budget",
            "64k",
            "-o",
            "idle_timeout=5,lru_crawler",
            "--shutdown-timeout",
            "2",
        ])
        .resolve()
        .unwrap();
        assert_eq!(c.conn_output_budget, 64 << 10);
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(2));
        let (c, _) = args(&["--idle-timeout", "7"]).resolve().unwrap();
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(7)));
        let (c, _) = args(&["-o", "idle_timeout=0"]).resolve().unwrap();
        assert_eq!(c.idle_timeout, None, "0 is off, as in memcached");
        assert_eq!(
            args(&["-o", "idle_timeout=x"]).resolve().unwrap_err(),
            CliError::IdleTimeout("x".into())
        );
        assert_eq!(
            args(&["--idle-timeout", "1", "-o", "idle_timeout=2"])
                .resolve()
                .unwrap_err(),
            CliError::IdleTimeoutTwice { flag: 1, option: 2 }
        );
        assert!(Args::try_parse_from(["memcached", "--conn-output-budget", "1k"]).is_err());
    }

    #[test]
    fn verbosity_counts() {
        assert_eq!(args(&["-v"]).log_filter(), "debug");
        assert_eq!(args(&["-vv"]).log_filter(), "trace");
    }

    #[test]
    fn zero_memory_is_refused() {
        assert_eq!(
            args(&["-m", "0"]).resolve().unwrap_err(),
            CliError::Memory(0)
        );
    }
}
