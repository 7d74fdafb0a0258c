//! CPU accounting from /proc: a process's utime + stime (all its threads), the
//! machine's busy time, and the CPU of reaped children.

use anyhow::{Context, Result, bail};

/// Clock ticks per second (`getconf CLK_TCK`), the unit of /proc's CPU times.
pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// (utime, stime) in ticks from the text of /proc/PID/stat.
///
/// Process-level stat covers all threads, including ones that have exited.
pub fn parse_pid_stat(text: &str) -> Result<(u64, u64)> {
    // Field 2 (comm) is parenthesised and may hold spaces or ')': split after the last ')'.
    let (_, rest) = text.rsplit_once(')').context("no ')' in /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let get = |n: usize| -> Result<u64> {
        let f = fields
            .get(n - 3)
            .with_context(|| format!("/proc/PID/stat has no field {n}"))?;
        f.parse()
            .with_context(|| format!("field {n} of /proc/PID/stat is not a number: {f}"))
    };
    Ok((get(14)?, get(15)?))
}

/// Busy ticks summed over all CPUs, from the `cpu` line of /proc/stat.
///
/// Busy = user + nice + system + irq + softirq + steal (everything but idle and
/// iowait). Per-process stime includes softirq work done in the process's
/// context (loopback TCP), so softirq must be counted here too; the two kinds
/// of accounting are tick-sampled, so "other processes" is approximate.
pub fn parse_proc_stat(text: &str) -> Result<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no `cpu` line in /proc/stat")?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("bad number in /proc/stat")?;
    if nums.len() < 8 {
        bail!("short `cpu` line in /proc/stat: {line}");
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    Ok(nums[0] + nums[1] + nums[2] + nums[5] + nums[6] + nums[7])
}

/// CPU a process has used so far (all threads), in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessCpu {
    /// Time in user space (utime).
    pub user_s: f64,
    /// Time in the kernel (stime), which for a network server includes the
    /// loopback TCP work done in its context.
    pub system_s: f64,
}

impl ProcessCpu {
    /// User plus kernel time.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.system_s
    }
}

impl std::ops::Sub for ProcessCpu {
    type Output = ProcessCpu;

    fn sub(self, earlier: ProcessCpu) -> ProcessCpu {
        ProcessCpu {
            user_s: self.user_s - earlier.user_s,
            system_s: self.system_s - earlier.system_s,
        }
    }
}

/// CPU used so far by process `pid` (all threads).
pub fn process_cpu(pid: u32) -> Result<ProcessCpu> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let (user, system) = parse_pid_stat(&text)?;
    Ok(ProcessCpu {
        user_s: user as f64 / clk_tck(),
        system_s: system as f64 / clk_tck(),
    })
}

/// Times process `pid` (all threads) gave up its CPU to wait so far: the
/// sum of `voluntary_ctxt_switches` of its threads, one per sleep of a
/// shard that blocked.
pub fn voluntary_switches(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0;
    for task in std::fs::read_dir(&dir).with_context(|| format!("read {dir}"))? {
        let path = task?.path().join("status");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // a thread that just ended
        };
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

/// Busy CPU seconds of the whole machine so far (see [`parse_proc_stat`]).
pub fn system_busy_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    Ok(parse_proc_stat(&text)? as f64 / clk_tck())
}

/// CPU seconds (user + system) of all children this process has reaped so far.
pub fn reaped_children_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the call to fill in.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_stat_with_awkward_comm() {
        let text = "4242 (my ) server) S 1 4242 4242 0 -1 4194560 1203 0 0 0 \
                    250 75 0 0 20 0 3 0 12345 0 0";
        assert_eq!(parse_pid_stat(text).unwrap(), (250, 75));
        assert!(parse_pid_stat("1 (x) S 1 2").is_err());
        assert!(parse_pid_stat("garbage").is_err());
    }

    #[test]
    fn proc_stat_busy() {
        let text = "cpu  100 5 40 1000 7 3 9 2 0 0\ncpu0 50 2 20 500 3 1 4 1 0 0\nintr 1\n";
        assert_eq!(parse_proc_stat(text).unwrap(), 159);
        assert!(parse_proc_stat("cpu0 1 2 3 4\n").is_err());
    }

    #[test]
    fn reads_own_process() {
        let cpu = process_cpu(std::process::id()).unwrap();
        assert!(cpu.user_s >= 0.0 && cpu.system_s >= 0.0);
        let later = process_cpu(std::process::id()).unwrap();
        assert!((later - cpu).total_s() >= 0.0);
        assert!(system_busy_seconds().unwrap() > 0.0);
    }
}
