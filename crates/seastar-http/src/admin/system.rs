//! Facts the kernel knows about the process and the calling thread: the
//! CPU it runs on, the CPUs it may run on, how long the process has run.

use std::time::Duration;

/// The CPU the calling thread runs on now (`None` if the kernel will not
/// say).
pub(crate) fn current_cpu() -> Option<usize> {
    // SAFETY: `sched_getcpu` takes no arguments and only returns a number.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// The CPUs the calling thread may run on (its affinity mask).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero `cpu_set_t` is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live `cpu_set_t` of the size passed; pid 0 is the
    // calling thread.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below `CPU_SETSIZE`, within the set.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// How long the process has run: its start time from `/proc/self/stat`
/// against the system's uptime (zero if either cannot be read).
pub(crate) fn uptime() -> Duration {
    let read = || -> Option<Duration> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces), from the
        // state (field 3); the start time is field 22.
        let rest = &stat[stat.rfind(')')? + 2..];
        let start_ticks: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
        let up: f64 = std::fs::read_to_string("/proc/uptime")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        // SAFETY: `sysconf` only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz <= 0 {
            return None;
        }
        Some(Duration::from_secs_f64(
            (up - start_ticks / hz as f64).max(0.0),
        ))
    };
    read().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calling_thread_runs_on_a_cpu_it_may_run_on() {
        let allowed = allowed_cpus();
        assert!(!allowed.is_empty());
        // The thread may migrate between the two calls, but only within
        // its mask.
        assert!(allowed.contains(&current_cpu().unwrap()));
    }

    #[test]
    fn uptime_is_that_of_this_process() {
        let up = uptime();
        // The test binary started less than an hour ago, and /proc works.
        assert!(up < Duration::from_secs(3600), "{up:?}");
        std::thread::sleep(Duration::from_millis(20));
        assert!(uptime() >= up);
    }
}
