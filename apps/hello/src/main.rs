//! `hello`: the smallest complete seastar app.
//!
//! Starts one shard per CPU (or `--smp N`), asks every shard for its id and
//! the CPU it runs on, ticks a periodic timer `--ticks` times, and exits.
//! On SIGINT/SIGTERM it stops early and says so; a second signal exits at
//! once.

use std::time::Duration;

use clap::Parser;
use futures_lite_select::select_stop;
use seastar_core::runtime::RuntimeArgs;
use seastar_core::{shard_id, smp, timer};

#[derive(Parser, Debug)]
#[command(about = "A multi-shard hello from seastar-core")]
struct Args {
    /// How many timer ticks to run before exiting (0: until a signal).
    #[arg(long, default_value_t = 3)]
    ticks: u64,
    /// Interval between ticks, in milliseconds.
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

mod futures_lite_select {
    use std::future::Future;

    /// Runs `work` until it finishes (`true`) or a stop is requested (`false`).
    pub async fn select_stop(work: impl Future<Output = ()>) -> bool {
        let work = std::pin::pin!(work);
        let stop = std::pin::pin!(seastar_core::stop_signal());
        let mut both = (work, stop);
        std::future::poll_fn(move |cx| {
            if both.0.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(true);
            }
            if both.1.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(false);
            }
            std::task::Poll::Pending
        })
        .await
    }
}

fn current_cpu() -> i32 {
    // SAFETY: sched_getcpu takes no arguments.
    unsafe { libc::sched_getcpu() }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        // Plain text when the logs go to a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let runtime = args.runtime.builder()?.build()?;
    let (ticks, interval) = (args.ticks, Duration::from_millis(args.interval_ms));
    let completed = runtime.run(async move {
        println!("backend: {}", seastar_core::runtime::backend());
        let shards = smp::invoke_on_all(|| async { (shard_id(), current_cpu()) })
            .await
            .expect("every shard answers");
        for (id, cpu) in shards {
            println!("hello from shard {id} on cpu {cpu}");
        }
        select_stop(async move {
            let mut n = 0;
            while ticks == 0 || n < ticks {
                timer::sleep(interval).await;
                n += 1;
                println!("tick {n}");
            }
        })
        .await
    });
    if completed {
        println!("done: all shards stopped cleanly");
    } else {
        println!("stop requested: all shards stopped cleanly");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    seastar_core::help_test!(super::Args);
}
