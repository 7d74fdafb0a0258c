//! Seastar's runtime command-line options, for apps to flatten into their
//! own `clap` parsers.

use std::time::Duration;

use super::RuntimeBuilder;
use crate::BackendKind;

/// The runtime options, with Seastar's names.
///
/// ```
/// use clap::Parser;
/// use seastar_core::runtime::RuntimeArgs;
///
/// #[derive(Parser)]
/// struct Args {
///     #[arg(long, default_value_t = 10000)]
///     port: u16,
///     #[command(flatten)]
///     runtime: RuntimeArgs,
/// }
///
/// let args = Args::parse_from([
///     "app", "--smp", "2", "--reactor-backend", "epoll", "--shutdown-timeout", "1.5",
/// ]);
/// assert_eq!(args.runtime.smp, Some(2));
/// assert_eq!(args.runtime.shutdown_timeout(), std::time::Duration::from_millis(1500));
/// let rt = args.runtime.builder().unwrap().build().unwrap();
/// assert_eq!(rt.shards(), 2);
/// ```
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RuntimeArgs {
    /// Number of shards (threads); default: one per CPU available.
    #[arg(long)]
    pub smp: Option<usize>,
    /// CPUs to run on, e.g. `0-3,6`; default: every CPU the process may use.
    #[arg(long)]
    pub cpuset: Option<String>,
    /// I/O backend: io_uring, epoll or auto.
    #[arg(long, default_value = "auto")]
    pub reactor_backend: String,
    /// Never sleep in the kernel: poll continuously.
    #[arg(long)]
    pub poll_mode: bool,
    /// Keep polling this many microseconds after running out of work.
    #[arg(long, default_value_t = 0)]
    pub idle_poll_time_us: u64,
    /// Keep polling this many microseconds after the last cross-shard
    /// message before sleeping.
    #[arg(long, default_value_t = super::builder::DEFAULT_SMP_POLL_US)]
    pub smp_poll_time_us: u64,
    /// File reads and writes enter the kernel in groups of this many as
    /// they are issued (io_uring); 0: at the end of each loop iteration.
    #[arg(long, default_value_t = super::builder::DEFAULT_FILE_SUBMIT_BATCH)]
    pub file_submit_batch: u32,
    /// A loaded shard's sleeps wait for a batch of up to this many
    /// completions (io_uring, Linux 6.12+); under 16 (0, say): wake for
    /// the first one.
    #[arg(long, default_value_t = super::builder::DEFAULT_SLEEP_BATCH)]
    pub sleep_batch: u32,
    /// Longest a batched sleep waits before handling the first completion,
    /// in microseconds; 0 turns batching off.
    #[arg(long, default_value_t = super::builder::DEFAULT_SLEEP_BATCH_WAIT_US)]
    pub sleep_batch_wait_us: u64,
    /// Task quota in milliseconds before `need_preempt()` turns true.
    #[arg(long, default_value_t = 0.5)]
    pub task_quota_ms: f64,
    /// Warn when a task runs this many milliseconds without yielding.
    #[arg(long, default_value_t = 25)]
    pub blocked_reactor_notify_ms: u64,
    /// Seconds a graceful stop (SIGINT/SIGTERM) may take: servers stop
    /// accepting, finish what is in flight, and drop the connections still
    /// open when it runs out; a process still running 1.5 s later exits
    /// with status 1.
    #[arg(long, default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_S, value_parser = parse_seconds)]
    pub shutdown_timeout: f64,
}

/// The default of `--shutdown-timeout`, in seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT_S: f64 = 30.0;

/// The memory option, for apps that install the accounting allocator
/// ([`ShardAllocator`](crate::alloc::ShardAllocator), feature `alloc`) as
/// their global allocator. It is separate from [`RuntimeArgs`] because it
/// does nothing without that allocator: an app offers `--memory` only when
/// the option works in it.
///
/// ```
/// use clap::Parser;
/// use seastar_core::runtime::{MemoryArgs, RuntimeArgs};
///
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     runtime: RuntimeArgs,
///     #[command(flatten)]
///     memory: MemoryArgs,
/// }
///
/// let args = Args::parse_from(["app", "--memory", "512M"]);
/// assert_eq!(args.memory.memory, Some(512 << 20));
/// let builder = args.memory.apply(args.runtime.builder().unwrap());
/// # drop(builder);
/// ```
#[derive(clap::Args, Clone, Debug, Default)]
pub struct MemoryArgs {
    /// Memory budget for all shards, e.g. `512M` or `2G` (K, M, G, T are
    /// powers of 1024), split evenly between them; under it the shards'
    /// reclaimers free memory (caches evict).
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<u64>,
}

impl MemoryArgs {
    /// `builder` with the memory budget set, when one was given.
    pub fn apply(&self, builder: RuntimeBuilder) -> RuntimeBuilder {
        match self.memory {
            Some(m) => builder.memory(m),
            None => builder,
        }
    }
}

/// Parses a non-negative, finite number of seconds (`30`, `1.5`).
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!("bad duration `{s}`: want seconds, e.g. 30 or 1.5")),
    }
}

/// Parses `4096`, `64K`, `512M`, `2G`, `1T` (also `2GB`, `2GiB`; any case).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix(['b', 'B']).unwrap_or(t);
    let t = t.strip_suffix(['i', 'I']).unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("bad size `{s}`: unknown suffix `{c}`")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("bad size `{s}`"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size `{s}` too large"))
}

impl RuntimeArgs {
    /// How long a graceful stop may take (`--shutdown-timeout`).
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_timeout)
    }

    /// A [`RuntimeBuilder`] configured from these options.
    pub fn builder(&self) -> Result<RuntimeBuilder, super::RuntimeError> {
        let mut b = RuntimeBuilder::default()
            .poll_mode(self.poll_mode)
            .idle_poll(Duration::from_micros(self.idle_poll_time_us))
            .smp_poll(Duration::from_micros(self.smp_poll_time_us))
            .file_submit_batch(self.file_submit_batch)
            .sleep_batch(
                self.sleep_batch,
                Duration::from_micros(self.sleep_batch_wait_us),
            )
            .task_quota(Duration::from_secs_f64(
                self.task_quota_ms.max(0.01) / 1000.0,
            ))
            .blocked_reactor_notify(Duration::from_millis(self.blocked_reactor_notify_ms))
            // The apps drop what is left at the timeout; the runtime's
            // deadline catches anything that still holds the process.
            .stop_deadline(self.shutdown_timeout() + Duration::from_millis(1500));
        if let Some(n) = self.smp {
            b = b.shards(n);
        }
        if let Some(set) = &self.cpuset {
            b = b.cpuset(super::parse_cpuset(set)?);
        }
        if self.reactor_backend != "auto" {
            b = b.backend(self.reactor_backend.parse::<BackendKind>()?);
        }
        Ok(b)
    }
}
