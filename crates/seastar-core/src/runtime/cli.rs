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
/// let args = Args::parse_from(["app", "--smp", "2", "--reactor-backend", "epoll"]);
/// assert_eq!(args.runtime.smp, Some(2));
/// let rt = args.runtime.builder().unwrap().build().unwrap();
/// assert_eq!(rt.shards(), 2);
/// ```
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RuntimeArgs {
    /// Number of shards (threads); default: one per CPU available.
    #[arg(long)]
    pub smp: Option<usize>,
    /// CPUs to run on, e.g. `0-3,6`.
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
    /// Task quota in milliseconds before `need_preempt()` turns true.
    #[arg(long, default_value_t = 0.5)]
    pub task_quota_ms: f64,
}

impl RuntimeArgs {
    /// A [`RuntimeBuilder`] configured from these options.
    pub fn builder(&self) -> Result<RuntimeBuilder, super::RuntimeError> {
        let mut b = RuntimeBuilder::default()
            .poll_mode(self.poll_mode)
            .idle_poll(Duration::from_micros(self.idle_poll_time_us))
            .task_quota(Duration::from_secs_f64(
                self.task_quota_ms.max(0.01) / 1000.0,
            ));
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
