//! Suite `native`: UDP memcached `get` over a veth pair between two network
//! namespaces (`crate::netns`): our memcached on the native stack (AF_XDP
//! on `veth_a`) against our memcached on the kernel's stack and against
//! stock memcached (`memcached -U`), each one shard pinned on CPU 0; the
//! load (a closed-loop memcached UDP client in this process, in namespace
//! `b`, pinned on CPU 1) keeps [`CLIENTS`] requests in flight.
//!
//! The figure that matters is operations per CPU-second of the server's
//! core, from `/proc/stat` of CPU 0 (user + nice + system + irq + softirq +
//! steal): with a native stack part of the per-packet work moves out of
//! the process into softirq (the copy into the UMEM), and the process's own
//! times would miss it. The process's times are reported beside it
//! (user/system µs per op), and each run's split of CPU 0 (user, system,
//! softirq) on stderr.
//!
//! A veth receives a frame on the core that sent it. The servers' receive
//! work (the clients' sends) thus runs on CPU 1 for every server alike,
//! and the clients' receive work (the servers' replies: IP, UDP, the
//! client socket's wake-up) on CPU 0, inside the server's send, also for
//! every server alike: with a real NIC it would be on the client machine.
//! The headline cases leave it there ("veth default"); the cases marked
//! "RPS" steer it to CPU 1 ([`Bed::steer_rx`]), identically for all three
//! servers, which in a VM costs the server core an IPI per batch instead.
//! Each case's notes give both cores' CPU per op.

use crate::bench::Ctx;
use crate::bench::proc;
use crate::bench::report::{CaseInfo, CaseReport, SideReport};
use crate::bench::stats::Stat;
use crate::cmd;
use crate::netns::{Bed, run_in};
use anyhow::{Context, Result, bail};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// UDP port of every server.
const PORT: u16 = 11411;
/// Requests in flight (one per client socket).
const CLIENTS: usize = 16;
/// The key every `get` asks for, and its value's size.
const KEY: &str = "bench:key";
const VALUE_LEN: usize = 32;

/// A server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cpu0`'s time fields from `/proc/stat` in seconds: user, nice, system,
/// idle, iowait, irq, softirq, steal.
fn cpu0_fields() -> Result<[f64; 8]> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu0 "))
        .context("no cpu0 line in /proc/stat")?;
    let mut out = [0.0; 8];
    for (o, x) in out.iter_mut().zip(line.split_whitespace().skip(1)) {
        *o = x.parse::<f64>().unwrap_or(0.0) / proc::clk_tck();
    }
    Ok(out)
}

/// `cpu0` and `cpu1` busy seconds from `/proc/stat`.
fn cpu_busy() -> Result<[f64; 2]> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let mut out = [0.0; 2];
    for (i, name) in ["cpu0 ", "cpu1 "].iter().enumerate() {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name}line in /proc/stat"))?;
        let n: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let busy = n.first().copied().unwrap_or(0)
            + n.get(1).copied().unwrap_or(0)
            + n.get(2).copied().unwrap_or(0)
            + n.get(5).copied().unwrap_or(0)
            + n.get(6).copied().unwrap_or(0)
            + n.get(7).copied().unwrap_or(0);
        out[i] = busy as f64 / proc::clk_tck();
    }
    Ok(out)
}

fn pin_this_thread(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity
    // get valid pointers to it for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn datagram(id: u16, body: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + body.len());
    for v in [id, 0, 1, 0] {
        d.extend_from_slice(&v.to_be_bytes());
    }
    d.extend_from_slice(body);
    d
}

/// One request/reply with retries (the first ones wait for ARP).
fn roundtrip(sock: &UdpSocket, server: SocketAddr, body: &[u8], want: &[u8]) -> Result<()> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = [0u8; 2048];
    for id in 1..=100u16 {
        sock.send_to(&datagram(id, body), server)?;
        if let Ok(n) = sock.recv(&mut buf)
            && n >= 8
            && buf[..2] == id.to_be_bytes()
        {
            if &buf[8..n] != want {
                bail!("unexpected reply {:?}", String::from_utf8_lossy(&buf[8..n]));
            }
            return Ok(());
        }
    }
    bail!("no reply from {server} in 20 s")
}

/// What one load run measured.
struct Load {
    ops: u64,
    lost: u64,
    secs: f64,
}

/// Closed loop: every client socket sends a `get`, waits for its reply
/// (resends after 50 ms), for `dur`. Runs on the calling thread.
fn load(socks: &[UdpSocket], server: SocketAddr, dur: Duration) -> Result<Load> {
    use std::os::fd::AsRawFd;
    let get = format!("get {KEY}\r\n");
    let mut ids = vec![0u16; socks.len()];
    let mut sent = vec![Instant::now(); socks.len()];
    let mut pfds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    for (i, s) in socks.iter().enumerate() {
        s.set_nonblocking(true)?;
        ids[i] = 1;
        s.send_to(&datagram(ids[i], get.as_bytes()), server)?;
    }
    let (mut ops, mut lost) = (0u64, 0u64);
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    while start.elapsed() < dur {
        // SAFETY: `pfds` is a valid array of pollfds for the call.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 10) };
        let now = Instant::now();
        for (i, s) in socks.iter().enumerate() {
            let mut answered = false;
            // Only the sockets poll found readable: a `recv` on each of the
            // others would only fail (EAGAIN) and slow the load core down.
            let readable = pfds[i].revents & libc::POLLIN != 0;
            while readable && let Ok(n) = s.recv(&mut buf) {
                if n >= 8 && buf[..2] == ids[i].to_be_bytes() {
                    answered = true;
                }
            }
            if !answered && now.duration_since(sent[i]) < Duration::from_millis(50) {
                continue;
            }
            if answered {
                ops += 1;
            } else {
                lost += 1;
            }
            ids[i] = ids[i].wrapping_add(1);
            sent[i] = now;
            let _ = s.send_to(&datagram(ids[i], get.as_bytes()), server);
        }
    }
    Ok(Load {
        ops,
        lost,
        secs: start.elapsed().as_secs_f64(),
    })
}

/// One side's measurements over its runs.
#[derive(Default)]
struct Side {
    throughput: Vec<f64>,
    per_core_cpu_s: Vec<f64>,
    cpu0_s: Vec<f64>,
    user_us: Vec<f64>,
    system_us: Vec<f64>,
    both_cores_us: Vec<f64>,
    lost: u64,
}

impl Side {
    fn report(&self, name: &str) -> SideReport {
        SideReport {
            name: name.into(),
            value: Stat::new(self.throughput.clone()),
            cpu_seconds: Stat::new(self.cpu0_s.clone()),
            per_cpu_second: Stat::new(self.per_core_cpu_s.clone()),
            user_us_per_op: Stat::new(self.user_us.clone()),
            system_us_per_op: Stat::new(self.system_us.clone()),
            ..SideReport::default()
        }
    }
}

/// Starts `argv` in namespace `a` pinned on CPU 0, waits until it answers
/// a `set`, runs the load and records the run into `side`.
fn measure(bed: &Bed, argv: &[String], dur: Duration, side: &mut Side) -> Result<()> {
    // The previous server's port is released only once the kernel has torn
    // its io_uring down, after the process died (slow on a loaded machine):
    // a server started before that cannot bind it.
    let addr_a = bed.addr_a;
    run_in(&bed.ns_a, || {
        let t = Instant::now();
        while UdpSocket::bind((addr_a, PORT)).is_err() && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
    })?;
    let mut c = Bed::exec(&bed.ns_a, "taskset");
    c.arg("-c").arg("0").args(argv);
    let server = Server(
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {argv:?}"))?,
    );
    let pid = server.0.id();
    let addr = SocketAddr::from((bed.addr_a, PORT));
    let addr_b = bed.addr_b;
    let socks: Vec<UdpSocket> = run_in(&bed.ns_b, || {
        (0..CLIENTS)
            .map(|_| UdpSocket::bind((addr_b, 0)))
            .collect::<std::io::Result<Vec<_>>>()
    })??;
    let value = "x".repeat(VALUE_LEN);
    roundtrip(
        &socks[0],
        addr,
        format!("set {KEY} 0 0 {VALUE_LEN}\r\n{value}\r\n").as_bytes(),
        b"STORED\r\n",
    )
    .with_context(|| format!("{argv:?} did not answer"))?;
    std::thread::sleep(Duration::from_millis(200));
    // `ip netns exec` and taskset exec the server: `pid` is the server.
    let p0 = proc::process_cpu(pid)?;
    let w0 = proc::voluntary_switches(pid)?;
    let f0 = cpu0_fields()?;
    let c0 = cpu_busy()?;
    let l = std::thread::scope(|s| {
        s.spawn(|| {
            pin_this_thread(1);
            load(&socks, addr, dur)
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })?;
    let c1 = cpu_busy()?;
    let f1 = cpu0_fields()?;
    let p1 = proc::process_cpu(pid)?;
    let w1 = proc::voluntary_switches(pid)?;
    drop(server);
    if l.ops == 0 {
        bail!("{argv:?}: no get answered");
    }
    let ops = l.ops as f64;
    let us = |i: usize| (f1[i] - f0[i]) * 1e6 / ops;
    eprintln!(
        "  {:.1}k gets/s; CPU 0 µs/get: {:.2} (user {:.2}, nice {:.2}, system {:.2}, softirq {:.2}, irq {:.2}, steal {:.2}); process user {:.2} system {:.2}; CPU 1 {:.2}; {:.3} sleeps per get",
        ops / l.secs / 1e3,
        (c1[0] - c0[0]) * 1e6 / ops,
        us(0),
        us(1),
        us(2),
        us(6),
        us(5),
        us(7),
        (p1 - p0).user_s * 1e6 / ops,
        (p1 - p0).system_s * 1e6 / ops,
        (c1[1] - c0[1]) * 1e6 / ops,
        w1.saturating_sub(w0) as f64 / ops,
    );
    let core0 = c1[0] - c0[0];
    let pc = p1 - p0;
    side.throughput.push(ops / l.secs);
    side.cpu0_s.push(core0);
    side.per_core_cpu_s.push(ops / core0.max(1e-9));
    side.user_us.push(pc.user_s * 1e6 / ops);
    side.system_us.push(pc.system_s * 1e6 / ops);
    side.both_cores_us.push((core0 + c1[1] - c0[1]) * 1e6 / ops);
    side.lost += l.lost;
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    Stat::new(v.to_vec()).median.unwrap_or(f64::NAN)
}

/// Runs the suite.
pub fn run(ctx: &Ctx, notes: &mut Vec<String>) -> Result<Vec<CaseReport>> {
    crate::bench::peers::ensure_taskset()?;
    let stock = cmd::ensure_tool("memcached", "memcached")?;
    // Knobs for experiments, honoured only by `--quick` runs (which never
    // write BENCHMARKS.md): `SSRS_NATIVE_BENCH_BIN` (another build of our
    // memcached, not rebuilt), `SSRS_NATIVE_BENCH_SECS` (seconds per run),
    // `SSRS_NATIVE_BENCH_SIDES` (e.g. `native,stock`).
    let knob = |name: &str| std::env::var(name).ok().filter(|_| ctx.quick);
    let bin = knob("SSRS_NATIVE_BENCH_BIN");
    if bin.is_none() {
        cmd::run(&mut cmd::cargo([
            "build",
            "--release",
            "-p",
            "memcached",
            "--bin",
            "memcached",
        ]))?;
    }
    // Experiments: another build of our memcached (not for the record).
    let ours = match bin {
        Some(p) => std::path::PathBuf::from(p),
        None => ctx.meta.release_dir().join("memcached"),
    };
    let pid = std::process::id();
    let bed = Bed::build(
        &format!("ssrs-bench-{pid}"),
        &format!("sbva{pid}"),
        &format!("sbvb{pid}"),
        1,
        false,
    )?;
    // Where the clients' receive work runs (see `Bed::steer_rx`): where a
    // veth puts it, on the server core (the headline), and, for
    // comparison, steered to the load core. `SSRS_NATIVE_BENCH_RPS=1|0`
    // (quick runs) keeps one.
    let steering: &[bool] = match knob("SSRS_NATIVE_BENCH_RPS").as_deref() {
        Some("1") => &[true],
        Some("0") => &[false],
        _ => &[false, true],
    };
    let dur = Duration::from_secs(
        knob("SSRS_NATIVE_BENCH_SECS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if ctx.quick { 2 } else { 10 }),
    );
    let only = knob("SSRS_NATIVE_BENCH_SIDES").unwrap_or_default();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let port = PORT.to_string();
    let addr = bed.addr_a.to_string();
    let ours_s = ours.to_string_lossy().into_owned();
    let native = s(&[
        &ours_s,
        "-p",
        "0",
        "-U",
        &port,
        "-t",
        "1",
        "-m",
        "64",
        "--network-stack",
        "native",
        "--xdp-device",
        &bed.veth_a,
        "--host-ipv4-addr",
        &addr,
    ]);
    let posix = s(&[
        &ours_s, "-p", "0", "-U", &port, "-t", "1", "-m", "64", "-l", &addr,
    ]);
    let stock_argv = s(&[
        &stock.to_string_lossy(),
        "-u",
        "root",
        "-p",
        "0",
        "-U",
        &port,
        "-t",
        "1",
        "-m",
        "64",
        "-l",
        &addr,
    ]);
    let sides = [&native, &posix, &stock_argv];
    let mut results: Vec<[Side; 3]> = steering.iter().map(|_| Default::default()).collect();
    for run in 0..ctx.runs {
        for (c, &steer) in steering.iter().enumerate() {
            bed.steer_rx(if steer { 1 << 1 } else { 0 })?;
            for (i, argv) in sides.iter().enumerate() {
                if !only.is_empty() && !only.contains(["native", "posix", "stock"][i]) {
                    continue;
                }
                eprintln!(
                    "native suite: run {} of {}, client receive on CPU {}: {}",
                    run + 1,
                    ctx.runs,
                    if steer { 1 } else { 0 },
                    argv.join(" ")
                );
                measure(&bed, argv, dur, &mut results[c][i])?;
            }
        }
    }
    let names = ["ours native (AF_XDP)", "ours posix", "stock memcached"];
    let place = |steer: bool| {
        if steer {
            "client receive on CPU 1 (RPS)"
        } else {
            "client receive on CPU 0 (veth default)"
        }
    };
    notes.push(
        "A veth runs the receive side of a frame on the core that sent it: a reply's IP/UDP \
         receive and the client socket's wake-up run in the server core's softirq, inside the \
         server's send, for every server alike; with a real NIC that work is on the client \
         machine. The headline cases (\"veth default\") leave it there. The cases marked \
         \"RPS\" steer it to the load core (`rps_cpus` = CPU 1 on the clients' veth end, the \
         same for all three servers): the server core then sends an inter-processor interrupt \
         per batch instead, which in this VM costs the server core more than the work it moves \
         (a VM exit per IPI), and throughput falls, so the headline stays without it. The \
         servers' own receive work (the XDP copy into the UMEM, the kernel's UDP receive) runs \
         on CPU 1 in both, as the clients' sends are received on their core."
            .into(),
    );
    for (c, &steer) in steering.iter().enumerate() {
        for (i, r) in results[c].iter().enumerate() {
            if r.throughput.is_empty() {
                continue;
            }
            notes.push(format!(
                "{}, {}: {:.2} µs of CPU 0 per get, {:.2} µs of CPU 0 + CPU 1 (server and load cores) per get, {} requests lost and resent",
                names[i],
                place(steer),
                1e6 / median(&r.per_core_cpu_s),
                median(&r.both_cores_us),
                r.lost
            ));
        }
    }
    let info = |peer: &str, steer: bool| CaseInfo {
        name: format!(
            "UDP get {VALUE_LEN} B, {CLIENTS} in flight, veth, {}: native vs {peer}",
            place(steer)
        ),
        metric: "throughput".into(),
        unit: "ops/s".into(),
        higher_is_better: true,
        pinned: true,
    };
    let commands = |peer: &[String], steer: bool| {
        let mut v = vec![
            format!(
                "ip netns exec {} taskset -c 0 {}",
                bed.ns_a,
                native.join(" ")
            ),
            format!("ip netns exec {} taskset -c 0 {}", bed.ns_a, peer.join(" ")),
            format!(
                "load: {CLIENTS} UDP sockets in {} pinned on CPU 1, closed loop, {} s",
                bed.ns_b,
                dur.as_secs()
            ),
        ];
        if steer {
            v.push(format!(
                "ip netns exec {} sh -c 'echo 2 > /sys/class/net/{}/queues/rx-0/rps_cpus'",
                bed.ns_b, bed.veth_b
            ));
        }
        v
    };
    let mut cases = Vec::new();
    for (c, &steer) in steering.iter().enumerate() {
        let r = &results[c];
        let ours_report = r[0].report(names[0]);
        cases.push(CaseReport::new(
            info("stock memcached", steer),
            ours_report.clone(),
            r[2].report(names[2]),
            commands(&stock_argv, steer),
        ));
        cases.push(CaseReport::new(
            info("our posix stack", steer),
            ours_report,
            r[1].report(names[1]),
            commands(&posix, steer),
        ));
    }
    Ok(cases)
}
