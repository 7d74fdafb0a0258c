//! Runtime options and their validation.

mod test_run;

use std::time::Duration;

use super::Runtime;
use crate::BackendKind;

/// Why a runtime could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The requested shard count was zero.
    #[error("shard count must be at least 1")]
    NoShards,
    /// A cpuset could not be parsed or names no CPU.
    #[error("invalid cpuset `{0}`")]
    BadCpuset(String),
    /// `SEASTAR_REACTOR_BACKEND` names no backend.
    #[error("SEASTAR_REACTOR_BACKEND: {0}")]
    BadBackend(#[from] crate::ParseBackendError),
    /// A system call failed while reading the CPU affinity.
    #[error("reading CPU affinity: {0}")]
    Affinity(std::io::Error),
}

/// Default of [`RuntimeBuilder::file_submit_batch`].
pub(crate) const DEFAULT_FILE_SUBMIT_BATCH: u32 = 4;

/// Default of [`RuntimeBuilder::sleep_batch`]: most completions.
pub(crate) const DEFAULT_SLEEP_BATCH: u32 = 64;

/// Default of [`RuntimeBuilder::sleep_batch`]: longest wait, in microseconds.
pub(crate) const DEFAULT_SLEEP_BATCH_WAIT_US: u64 = 50;

/// Default of [`RuntimeBuilder::smp_poll`], in microseconds.
pub(crate) const DEFAULT_SMP_POLL_US: u64 = 20;

/// Resolved options.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) cpus: Vec<usize>,
    pub(crate) pin: bool,
    pub(crate) backend: Option<BackendKind>,
    pub(crate) poll_mode: bool,
    pub(crate) idle_poll: Duration,
    pub(crate) smp_poll: Duration,
    pub(crate) task_quota: Duration,
    pub(crate) manual_clock: bool,
    pub(crate) handle_signals: bool,
    pub(crate) stop_deadline: Option<Duration>,
    pub(crate) ring_entries: u32,
    pub(crate) file_submit_batch: u32,
    pub(crate) sleep_batch: u32,
    pub(crate) sleep_batch_wait: Duration,
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) memory: Option<u64>,
    pub(crate) ring_capacity: usize,
    pub(crate) blocked_reactor_notify: Duration,
}

/// Builds a [`Runtime`]. See [`Runtime::builder`] for the defaults.
///
/// ```
/// use std::time::Duration;
/// use seastar_core::{BackendKind, Runtime};
///
/// let rt = Runtime::builder()
///     .shards(2)
///     .backend(BackendKind::Epoll)
///     .task_quota(Duration::from_micros(500))
///     .idle_poll(Duration::from_micros(200))
///     .smp_poll(Duration::from_micros(20))
///     .build()
///     .unwrap();
/// assert_eq!(rt.shards(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    shards: Option<usize>,
    cpuset: Option<Vec<usize>>,
    pin: bool,
    backend: Option<BackendKind>,
    poll_mode: bool,
    idle_poll: Duration,
    smp_poll: Duration,
    task_quota: Duration,
    manual_clock: bool,
    handle_signals: bool,
    stop_deadline: Option<Duration>,
    ring_entries: u32,
    file_submit_batch: u32,
    sleep_batch: u32,
    sleep_batch_wait: Duration,
    ring_capacity: usize,
    memory: Option<u64>,
    blocked_reactor_notify: Duration,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            shards: None,
            cpuset: None,
            pin: true,
            backend: None,
            poll_mode: false,
            idle_poll: Duration::ZERO,
            smp_poll: Duration::from_micros(DEFAULT_SMP_POLL_US),
            task_quota: Duration::from_micros(500),
            manual_clock: false,
            handle_signals: true,
            stop_deadline: None,
            ring_entries: 1024,
            file_submit_batch: DEFAULT_FILE_SUBMIT_BATCH,
            sleep_batch: DEFAULT_SLEEP_BATCH,
            sleep_batch_wait: Duration::from_micros(DEFAULT_SLEEP_BATCH_WAIT_US),
            ring_capacity: 512,
            memory: None,
            blocked_reactor_notify: Duration::from_millis(25),
        }
    }
}

impl RuntimeBuilder {
    /// Number of shards (`--smp`). Default: one per CPU of the cpuset (or of
    /// the process affinity mask). More shards than CPUs share CPUs.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// CPUs to run on (`--cpuset`), shard `i` pinned to the `i`-th.
    pub fn cpuset(mut self, cpus: impl IntoIterator<Item = usize>) -> Self {
        self.cpuset = Some(cpus.into_iter().collect());
        self
    }

    /// Whether to pin each shard thread to its CPU (default true).
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// Forces a backend (`--reactor-backend`); `None` is `auto`.
    pub fn backend(mut self, backend: impl Into<Option<BackendKind>>) -> Self {
        self.backend = backend.into();
        self
    }

    /// Never sleep in the kernel (`--poll-mode`): lowest latency, a full core.
    pub fn poll_mode(mut self, on: bool) -> Self {
        self.poll_mode = on;
        self
    }

    /// Keep polling this long after the shard runs out of work before
    /// sleeping (`--idle-poll-time-us`; default 0: sleep at once, which
    /// spends the least CPU per request).
    pub fn idle_poll(mut self, d: Duration) -> Self {
        self.idle_poll = d;
        self
    }

    /// Keep polling this long after the shard last sent or received a
    /// cross-shard message before sleeping (`--smp-poll-time-us`; default
    /// 20 µs). A call's reply, or the next call of a burst, usually comes
    /// within microseconds, while waking a sleeping shard costs both sides
    /// tens of them; a shard that only does I/O is not affected. While it
    /// polls this way the shard yields its CPU to any other runnable thread
    /// between polls. Zero sleeps at once.
    pub fn smp_poll(mut self, d: Duration) -> Self {
        self.smp_poll = d;
        self
    }

    /// File reads and writes on io_uring enter the kernel in groups of `n`
    /// as they are issued (`--file-submit-batch`, default 4), the rest of a
    /// group with the other submissions at the end of the loop iteration;
    /// 0 leaves all of them to the end of the iteration, like socket I/O.
    ///
    /// Measured on this project's reference machine (virtio disk, 4 KiB
    /// random reads, `cargo xtask bench io` and ad hoc runs against fio):
    /// leaving them all to the end of the iteration lost 15-25% of the IOPS
    /// at depth 32 whenever the disk was fast (the device served large
    /// batches more slowly than the same requests a few at a time);
    /// submitting each one at once recovered that at one system call per
    /// I/O (as much CPU per I/O as fio); groups of 4 kept the IOPS for
    /// 10-20% less CPU than either.
    ///
    /// ```
    /// let rt = seastar_core::Runtime::builder().shards(1).file_submit_batch(1).build().unwrap();
    /// assert_eq!(rt.shards(), 1);
    /// ```
    pub fn file_submit_batch(mut self, n: u32) -> Self {
        self.file_submit_batch = n;
        self
    }

    /// A loaded shard's sleeps wait for a batch of up to `max` completions
    /// for at most `wait` before handling the first one (io_uring on Linux
    /// 6.12 or later; `--sleep-batch`, `--sleep-batch-wait-us`; default 64
    /// completions, 50 µs). Each wake-up of a sleeping core costs a context
    /// switch (and in a virtual machine an exit to the hypervisor), so a
    /// shard serving many connections handles a burst with one wake-up
    /// instead of several: measured 8.56 against 7.03 µs of server CPU per
    /// HTTPS request with a 50 µs wait (64 connections; 7.81 with 20 µs).
    /// The batch follows the load: only a sleep after one that ended with
    /// 16 completions or more waits for a batch, so a shard answering a few
    /// requests at a time sleeps as before; under load the first
    /// completion of a burst may wait up to `wait`, and so may a
    /// cross-shard message reaching a sleeping shard. A `max` under 16 or
    /// a zero `wait` turns it off; the epoll backend never batches.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = seastar_core::Runtime::builder()
    ///     .shards(1)
    ///     .sleep_batch(32, Duration::from_micros(20))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.shards(), 1);
    /// ```
    pub fn sleep_batch(mut self, max: u32, wait: Duration) -> Self {
        self.sleep_batch = max;
        self.sleep_batch_wait = wait;
        self
    }

    /// How long a batch of tasks runs before `need_preempt()` turns true
    /// (`--task-quota-ms`, default 0.5 ms).
    pub fn task_quota(mut self, d: Duration) -> Self {
        self.task_quota = d;
        self
    }

    /// Use a [`ManualClock`](crate::timer::ManualClock) instead of the real
    /// one: time moves only when a test advances it.
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// Turn SIGINT/SIGTERM into a graceful stop request (default true).
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// The last resort of a graceful stop: if the process is still running
    /// this long after the stop signal (SIGINT/SIGTERM), it logs an error
    /// and exits with status 1, whatever its tasks are waiting for. Apps
    /// bound their own stop first (drop the connections left after their
    /// shutdown timeout); this catches what they missed. Off by default;
    /// [`RuntimeArgs`](crate::runtime::RuntimeArgs) sets it to
    /// `--shutdown-timeout` plus 1.5 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = seastar_core::Runtime::builder()
    ///     .stop_deadline(Duration::from_secs(31))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn stop_deadline(mut self, d: Duration) -> Self {
        self.stop_deadline = Some(d);
        self
    }

    /// io_uring submission queue size (default 1024).
    pub fn ring_entries(mut self, n: u32) -> Self {
        self.ring_entries = n.max(8);
        self
    }

    /// Capacity of each cross-shard ring (default 512 tasks, 4 KiB per
    /// ordered pair of shards; rounded up to
    /// a power of two). A full ring makes `submit_to` wait for room.
    pub fn smp_ring_capacity(mut self, n: usize) -> Self {
        self.ring_capacity = n.max(2);
        self
    }

    /// Total memory budget in bytes (`--memory`), split evenly between the
    /// shards as each one's soft limit. Takes effect with feature `alloc`
    /// and `alloc::ShardAllocator` as the global allocator (see the `alloc`
    /// module); ignored otherwise.
    ///
    /// ```
    /// let rt = seastar_core::Runtime::builder().shards(2).memory(1 << 30).build();
    /// assert!(rt.is_ok());
    /// ```
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// Report (a `tracing` warning naming the shard, the scheduling group
    /// and the stall's length) any task that runs this long without
    /// yielding (`--blocked-reactor-notify-ms`, default 25 ms).
    pub fn blocked_reactor_notify(mut self, d: Duration) -> Self {
        self.blocked_reactor_notify = d;
        self
    }

    /// Validates the options. `SEASTAR_REACTOR_BACKEND=io_uring|epoll`
    /// overrides the backend.
    pub fn build(self) -> Result<Runtime, RuntimeError> {
        let base = match self.cpuset {
            Some(c) if c.is_empty() => return Err(RuntimeError::BadCpuset(String::new())),
            Some(c) => c,
            None => crate::sys::affinity().map_err(RuntimeError::Affinity)?,
        };
        let n = self.shards.unwrap_or(base.len());
        if n == 0 {
            return Err(RuntimeError::NoShards);
        }
        let cpus = (0..n).map(|i| base[i % base.len()]).collect();
        if self.pin && n > base.len() {
            // Typically a process started under `taskset -c 0` asking for
            // two shards: they would share a core and wake each other
            // through the scheduler instead of running side by side.
            tracing::warn!(
                shards = n,
                cpus = ?base,
                "more shards than CPUs in the cpuset: pinned shards will share cores (pass a cpuset)"
            );
        }
        let backend = match std::env::var("SEASTAR_REACTOR_BACKEND") {
            Ok(v) if !v.is_empty() && v != "auto" => Some(v.parse()?),
            _ => self.backend,
        };
        Ok(Runtime {
            config: Config {
                cpus,
                pin: self.pin,
                backend,
                poll_mode: self.poll_mode,
                idle_poll: self.idle_poll,
                smp_poll: self.smp_poll,
                task_quota: self.task_quota.max(Duration::from_micros(10)),
                manual_clock: self.manual_clock,
                handle_signals: self.handle_signals,
                stop_deadline: self.stop_deadline,
                ring_entries: self.ring_entries,
                file_submit_batch: self.file_submit_batch,
                sleep_batch: self.sleep_batch,
                sleep_batch_wait: self.sleep_batch_wait,
                ring_capacity: self.ring_capacity,
                memory: self.memory,
                blocked_reactor_notify: self.blocked_reactor_notify,
            },
        })
    }
}

/// Parses a cpuset such as `0-3,6,8-9`.
///
/// ```
/// assert_eq!(seastar_core::runtime::parse_cpuset("0-2,5").unwrap(), vec![0, 1, 2, 5]);
/// assert!(seastar_core::runtime::parse_cpuset("3-1").is_err());
/// ```
pub fn parse_cpuset(s: &str) -> Result<Vec<usize>, RuntimeError> {
    let bad = || RuntimeError::BadCpuset(s.to_owned());
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= libc::CPU_SETSIZE as usize {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cpus.is_empty() {
        return Err(bad());
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}
