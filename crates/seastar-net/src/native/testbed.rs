//! A test bed for the native stack: two network namespaces joined by a
//! veth pair, built with `ip` and torn down on drop.
//!
//! ```text
//!   namespace `a` (our stack)             namespace `b` (the kernel's stack)
//!   veth_a  ── AF_XDP ──┐               ┌── veth_b  addr_b/24, offloads off
//!                       └─── veth pair ─┘
//!                                           tap (optional)  tap_addr_b/24
//! ```
//!
//! Our stack runs in namespace `a` with [`TestBed::addr_a`] (the kernel of
//! `a` has no address on `veth_a` unless [`BedOptions::kernel_addr_a`] asks
//! for it, for the posix stack); the kernel of namespace `b` answers on
//! [`TestBed::addr_b`]. The peer's transmit offloads are off so the kernel's
//! frames carry full checksums; IPv6 is off in both namespaces so no
//! neighbour discovery or MLD frames show up in tests.
//!
//! With [`BedOptions::tap`], a persistent multi-queue TAP interface lives
//! in namespace `b` with [`TestBed::tap_addr_b`]: a TAP device opened from a
//! thread in `b` ([`TestBed::run_in_b`]) gets the other end of it, and our
//! stack uses [`TestBed::tap_addr_a`].
//!
//! Names carry the process id and a counter (`ssrs-<pid>-<n>-a`), so beds
//! of concurrent tests and processes never collide; [`TestBed::new`] first
//! removes the beds of processes that no longer exist (a test killed
//! before its drop ran). Deleting a namespace deletes its interfaces.
//! Everything needs root (`CAP_NET_ADMIN`, `CAP_SYS_ADMIN`) and `ip`
//! (iproute2); [`TestBed::new_or_skip`] prints `SKIPPED: <why>` and returns
//! `None` elsewhere (or panics with `SEASTAR_REQUIRE_TESTBED=1`, for CI).

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::device::iface;

/// Prefix of every namespace a bed creates.
const PREFIX: &str = "ssrs-";

/// Why a bed could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BedError {
    /// Not root: namespaces and interfaces cannot be created.
    #[error("the test bed needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")]
    NotRoot,
    /// `ip` (iproute2) is not installed.
    #[error("the test bed needs `ip` (iproute2): {0}")]
    NoIp(io::Error),
    /// A command failed.
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Another step failed.
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct BedOptions {
    /// Give the kernel of namespace `a` the address [`TestBed::addr_a`] on
    /// `veth_a` (for a server on the kernel's stack in `a`).
    pub kernel_addr_a: bool,
    /// Also create a persistent multi-queue TAP interface in namespace `b`.
    pub tap: bool,
    /// Receive queues of the veth pair (default 1).
    pub queues: Option<u32>,
}

/// Two namespaces joined by a veth pair (and optionally a TAP); deleted on drop.
#[derive(Debug)]
pub struct TestBed {
    /// The namespace our stack runs in.
    pub ns_a: String,
    /// The namespace of the kernel's stack.
    pub ns_b: String,
    /// The veth end in `a`.
    pub veth_a: String,
    /// The veth end in `b` (offloads off).
    pub veth_b: String,
    /// `veth_a`'s hardware address.
    pub mac_a: [u8; 6],
    /// `veth_b`'s hardware address.
    pub mac_b: [u8; 6],
    /// Our stack's address on the veth link.
    pub addr_a: Ipv4Addr,
    /// The kernel's address on `veth_b`.
    pub addr_b: Ipv4Addr,
    /// The TAP interface in `b`, if asked for.
    pub tap: Option<String>,
    /// Our stack's address on the TAP link.
    pub tap_addr_a: Ipv4Addr,
    /// The kernel's address on the TAP interface.
    pub tap_addr_b: Ipv4Addr,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip args...`.
fn ip(args: &[&str]) -> Result<(), BedError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(BedError::NoIp)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BedError::Command {
            cmd: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs `f` on a new thread that has entered network namespace `ns`.
pub fn run_in_ns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    let file = File::open(format!("/run/netns/{ns}"))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns(2) on a namespace file we opened; it changes
            // only this (scoped, short-lived) thread's network namespace.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Moves the calling thread into network namespace `ns` for good (for a
/// thread spawned to run a runtime there: its shard threads inherit it).
pub fn enter_ns(ns: &str) -> io::Result<()> {
    let file = File::open(format!("/run/netns/{ns}"))?;
    // SAFETY: setns(2) on a namespace file we opened; only the calling
    // thread's network namespace changes.
    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Deletes the namespaces of beds whose process is gone.
pub fn remove_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

fn disable_ipv6(ns: &str) -> Result<(), BedError> {
    let r = run_in_ns(ns, || {
        for p in ["all", "default"] {
            std::fs::write(format!("/proc/sys/net/ipv6/conf/{p}/disable_ipv6"), "1")?;
        }
        Ok::<_, io::Error>(())
    });
    match r {
        Ok(Ok(())) => Ok(()),
        // No IPv6 in this kernel: nothing to silence.
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Ok(Err(e)) | Err(e) => Err(BedError::Io {
            what: format!("disabling IPv6 in {ns}"),
            source: e,
        }),
    }
}

impl TestBed {
    /// Builds a bed with default options.
    pub fn new() -> Result<TestBed, BedError> {
        Self::with(&BedOptions::default())
    }

    /// Builds a bed, or prints `SKIPPED: <test>: <why>` and returns `None`
    /// when this machine cannot (not root, no `ip`, namespaces refused).
    ///
    /// # Panics
    ///
    /// Instead of skipping, when `SEASTAR_REQUIRE_TESTBED=1` is set (for CI,
    /// where a bed that cannot be built is a broken setup, not a reason to
    /// pass).
    pub fn new_or_skip(test: &str, opts: &BedOptions) -> Option<TestBed> {
        match Self::with(opts) {
            Ok(b) => Some(b),
            Err(e) if std::env::var_os("SEASTAR_REQUIRE_TESTBED").is_some_and(|v| v == "1") => {
                panic!("{test}: the test bed is required (SEASTAR_REQUIRE_TESTBED=1): {e}")
            }
            Err(e) => {
                // Written to the process's stderr directly, past the test
                // harness's capture of `eprintln!`, so the skip shows.
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {e}");
                None
            }
        }
    }

    /// Builds a bed.
    pub fn with(opts: &BedOptions) -> Result<TestBed, BedError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(BedError::NotRoot);
        }
        remove_stale();
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut bed = TestBed {
            ns_a: format!("{PREFIX}{pid}-{n}-a"),
            ns_b: format!("{PREFIX}{pid}-{n}-b"),
            // Interface names: at most 15 bytes.
            veth_a: format!("sa{pid}x{n}"),
            veth_b: format!("sb{pid}x{n}"),
            mac_a: [0; 6],
            mac_b: [0; 6],
            addr_a: Ipv4Addr::new(10, 200, 0, 1),
            addr_b: Ipv4Addr::new(10, 200, 0, 2),
            tap: opts.tap.then(|| format!("st{pid}x{n}")),
            tap_addr_a: Ipv4Addr::new(10, 201, 0, 1),
            tap_addr_b: Ipv4Addr::new(10, 201, 0, 2),
        };
        // From here on, drop deletes whatever was made.
        ip(&["netns", "add", &bed.ns_a])?;
        ip(&["netns", "add", &bed.ns_b])?;
        disable_ipv6(&bed.ns_a)?;
        disable_ipv6(&bed.ns_b)?;
        let q = opts.queues.unwrap_or(1).max(1).to_string();
        ip(&[
            "link",
            "add",
            "name",
            &bed.veth_a,
            "netns",
            &bed.ns_a,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            &bed.veth_b,
            "netns",
            &bed.ns_b,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
        ])?;
        let (a, b) = (bed.ns_a.clone(), bed.ns_b.clone());
        let (va, vb) = (bed.veth_a.clone(), bed.veth_b.clone());
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| BedError::Io { what, source }
        };
        run_in_ns(&b, || iface::offloads_off(&vb))
            .map_err(io("entering namespace b"))?
            .map_err(|e| BedError::Io {
                what: format!("turning offloads off on {vb}"),
                source: io::Error::other(e.to_string()),
            })?;
        let addr_b = format!("{}/24", bed.addr_b);
        ip(&["-n", &b, "addr", "add", &addr_b, "dev", &vb])?;
        if opts.kernel_addr_a {
            let addr_a = format!("{}/24", bed.addr_a);
            ip(&["-n", &a, "addr", "add", &addr_a, "dev", &va])?;
        }
        for (ns, dev) in [(&a, "lo"), (&b, "lo"), (&a, va.as_str()), (&b, vb.as_str())] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        bed.mac_a = run_in_ns(&a, || iface::mac(&va))
            .map_err(io("entering namespace a"))?
            .map_err(|e| BedError::Io {
                what: format!("reading {va}'s address"),
                source: io::Error::other(e.to_string()),
            })?;
        bed.mac_b = run_in_ns(&b, || iface::mac(&vb))
            .map_err(io("entering namespace b"))?
            .map_err(|e| BedError::Io {
                what: format!("reading {vb}'s address"),
                source: io::Error::other(e.to_string()),
            })?;
        if let Some(tap) = bed.tap.clone() {
            ip(&[
                "-n",
                &b,
                "tuntap",
                "add",
                "dev",
                &tap,
                "mode",
                "tap",
                "multi_queue",
            ])?;
            let addr = format!("{}/24", bed.tap_addr_b);
            ip(&["-n", &b, "addr", "add", &addr, "dev", &tap])?;
            ip(&["-n", &b, "link", "set", &tap, "up"])?;
        }
        Ok(bed)
    }

    /// Runs `f` on a thread inside namespace `a`.
    pub fn run_in_a<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        run_in_ns(&self.ns_a, f).expect("entering namespace a")
    }

    /// Runs `f` on a thread inside namespace `b`.
    pub fn run_in_b<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        run_in_ns(&self.ns_b, f).expect("entering namespace b")
    }

    /// Adds a permanent neighbour entry in namespace `b`: `addr` is at
    /// `mac` on interface `dev` (so the kernel sends to our stack without
    /// asking ARP first).
    pub fn neigh_b(&self, addr: Ipv4Addr, mac: [u8; 6], dev: &str) -> Result<(), BedError> {
        let mac = mac.map(|b| format!("{b:02x}")).join(":");
        ip(&[
            "-n",
            &self.ns_b,
            "neigh",
            "replace",
            &addr.to_string(),
            "lladdr",
            &mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ])
    }

    /// A command that runs `program` inside namespace `ns` (through `ip
    /// netns exec`).
    pub fn command_in(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("test bed: {e}");
            }
        }
    }
}
