//! `cargo xtask netns up|down|status`: the native stack's test bed by hand,
//! and the beds the `native` benchmark builds.
//!
//! A bed is two network namespaces joined by a veth pair: `a` for the
//! server (our native stack drives `veth_a` through AF_XDP; the kernel of
//! `a` also has [`Bed::addr_a`] for the posix stack and stock memcached),
//! `b` for the kernel's stack and the clients, with `veth_b`'s transmit
//! offloads off so its frames carry full checksums. IPv6 is off in both.
//! `up` builds the persistent bed `ssrs-bed-a`/`ssrs-bed-b` (replacing an
//! old one), `down` deletes it, `status` shows it. `up --queues 2` gives
//! each veth end two receive and two transmit queues, for a native stack
//! with one AF_XDP socket per shard (queue `i` on shard `i`): in native XDP
//! mode `veth_a` receives on queue `q` what `veth_b` sent on its transmit
//! queue `q`, which the kernel picks by flow hash (a veth has no XPS
//! maps), so flows spread over the queues; in generic mode every frame
//! arrives on queue 0 (seastar-net's `tests/native_multiqueue.rs`). Needs root and `ip`
//! (iproute2); the same layout as seastar-net's `native::testbed`, built
//! here with `ip` and one ethtool ioctl since xtask does not link the
//! framework.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;

/// `cargo xtask netns ...`.
#[derive(Debug, Subcommand)]
pub enum NetnsCmd {
    /// Build the bed `ssrs-bed-a` / `ssrs-bed-b` (veth `ssrs-va` / `ssrs-vb`, 10.200.0.1 / .2).
    Up {
        /// Receive and transmit queues of each veth end (one per shard of
        /// a native-stack server).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        queues: u32,
    },
    /// Delete the bed.
    Down,
    /// Show the bed's namespaces, interfaces and addresses.
    Status,
}

/// Two namespaces joined by a veth pair.
#[derive(Debug)]
pub struct Bed {
    /// The server's namespace.
    pub ns_a: String,
    /// The clients' namespace.
    pub ns_b: String,
    /// The veth end in `a`.
    pub veth_a: String,
    /// The veth end in `b`.
    pub veth_b: String,
    /// The server's address (the kernel's in `a`, and the native stack's).
    pub addr_a: Ipv4Addr,
    /// The clients' address.
    pub addr_b: Ipv4Addr,
    /// Kept on drop (`cargo xtask netns up`).
    persistent: bool,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `f` on a thread inside namespace `ns`.
pub fn run_in<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> Result<R> {
    let file = File::open(format!("/run/netns/{ns}")).with_context(|| format!("namespace {ns}"))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns(2) on a namespace file we opened; only this
            // scoped thread's network namespace changes.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error()).context("setns");
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// `ethtool -K dev tx off sg off tso off gso off`, by ioctl, in the
/// calling thread's namespace.
fn offloads_off(dev: &str) -> Result<()> {
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket");
    }
    // SAFETY: a new descriptor we own.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SSG, ETHTOOL_STXCSUM
    for cmd in [0x1f, 0x24, 0x19, 0x17] {
        let mut v = EthtoolValue { cmd, data: 0 };
        // SAFETY: all zeroes is a valid ifreq.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(dev.bytes().take(15)) {
            *d = s as libc::c_char;
        }
        req.ifr_ifru.ifru_data = &mut v as *mut EthtoolValue as *mut libc::c_char;
        // SAFETY: `req` names the device and points at `v`, alive for the call.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(e).with_context(|| format!("turning offloads off on {dev}"));
            }
        }
    }
    Ok(())
}

impl Bed {
    /// Builds a bed whose names start with `prefix` (namespaces
    /// `<prefix>-a`/`-b`) and veth ends `va`/`vb`, each with `queues`
    /// receive and transmit queues.
    pub fn build(prefix: &str, va: &str, vb: &str, queues: u32, persistent: bool) -> Result<Bed> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("the network namespace bed needs root");
        }
        let bed = Bed {
            ns_a: format!("{prefix}-a"),
            ns_b: format!("{prefix}-b"),
            veth_a: va.to_owned(),
            veth_b: vb.to_owned(),
            addr_a: Ipv4Addr::new(10, 200, 0, 1),
            addr_b: Ipv4Addr::new(10, 200, 0, 2),
            persistent,
        };
        bed.delete();
        let (a, b) = (bed.ns_a.as_str(), bed.ns_b.as_str());
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        for ns in [a, b] {
            run_in(ns, || {
                for p in ["all", "default"] {
                    let _ =
                        std::fs::write(format!("/proc/sys/net/ipv6/conf/{p}/disable_ipv6"), "1");
                }
            })?;
        }
        let q = queues.max(1).to_string();
        ip(&[
            "link",
            "add",
            "name",
            va,
            "netns",
            a,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            vb,
            "netns",
            b,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
        ])?;
        run_in(b, || offloads_off(vb))??;
        ip(&[
            "-n",
            a,
            "addr",
            "add",
            &format!("{}/24", bed.addr_a),
            "dev",
            va,
        ])?;
        ip(&[
            "-n",
            b,
            "addr",
            "add",
            &format!("{}/24", bed.addr_b),
            "dev",
            vb,
        ])?;
        for (ns, dev) in [(a, "lo"), (b, "lo"), (a, va), (b, vb)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(bed)
    }

    /// Steers the receive processing of frames arriving on `veth_b` (the
    /// clients' end) to the CPUs in `mask` (RPS: `rps_cpus` of each of its
    /// receive queues); `0` turns it off.
    ///
    /// On a veth a frame is received on the core that sent it: the
    /// kernel's receive work for a reply (IP, UDP, the client socket's
    /// wake-up) runs in the server core's softirq, inside the server's
    /// send, and the clients' receive work is charged to the server,
    /// whatever the server. Steering it to the clients' core keeps on the
    /// server core only what a server on a real NIC does (the send down
    /// to the driver; here the hand-over to the other core's backlog).
    pub fn steer_rx(&self, mask: u32) -> Result<()> {
        let script = format!(
            "for q in /sys/class/net/{}/queues/rx-*/rps_cpus; do echo {mask:x} > $q || exit 1; done",
            self.veth_b
        );
        let out = Self::exec(&self.ns_b, "sh")
            .args(["-c", &script])
            .output()
            .context("running sh")?;
        if !out.status.success() {
            bail!(
                "setting rps_cpus of {}: {}",
                self.veth_b,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// `ip netns exec <ns> program`.
    pub fn exec(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    fn delete(&self) {
        for ns in [&self.ns_a, &self.ns_b] {
            if std::path::Path::new(&format!("/run/netns/{ns}")).exists() {
                let _ = ip(&["netns", "del", ns]);
            }
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if !self.persistent {
            self.delete();
        }
    }
}

/// Runs `cargo xtask netns <cmd>`.
pub fn run(cmd: &NetnsCmd) -> Result<()> {
    let persistent = || Bed {
        ns_a: "ssrs-bed-a".into(),
        ns_b: "ssrs-bed-b".into(),
        veth_a: "ssrs-va".into(),
        veth_b: "ssrs-vb".into(),
        addr_a: Ipv4Addr::new(10, 200, 0, 1),
        addr_b: Ipv4Addr::new(10, 200, 0, 2),
        persistent: true,
    };
    match cmd {
        NetnsCmd::Up { queues } => {
            let bed = Bed::build("ssrs-bed", "ssrs-va", "ssrs-vb", *queues, true)?;
            println!(
                "bed up: {} ({} {}) <-> {} ({} {}), offloads off on {}, {queues} queue(s) per end",
                bed.ns_a, bed.veth_a, bed.addr_a, bed.ns_b, bed.veth_b, bed.addr_b, bed.veth_b
            );
            println!(
                "e.g. ip netns exec {} target/release/memcached -p 0 -U 11211 -t {queues} --network-stack native --xdp-device {} --host-ipv4-addr {}",
                bed.ns_a, bed.veth_a, bed.addr_a
            );
        }
        NetnsCmd::Down => {
            persistent().delete();
            println!("bed down");
        }
        NetnsCmd::Status => {
            let bed = persistent();
            for ns in [&bed.ns_a, &bed.ns_b] {
                if !std::path::Path::new(&format!("/run/netns/{ns}")).exists() {
                    println!("{ns}: absent");
                    continue;
                }
                let out = Command::new("ip")
                    .args(["-n", ns, "-br", "addr"])
                    .output()?;
                println!("{ns}:\n{}", String::from_utf8_lossy(&out.stdout).trim_end());
            }
        }
    }
    Ok(())
}
