//! The stall detector: which shard's task ran too long, for how long, and
//! where it was when caught.
//!
//! # Protocol
//!
//! A shard stamps [`StallState::started`] with the ticker's tick when a
//! task starts and with [`IDLE`] when its batch ends (`reactor/mod.rs`).
//! The ticker (watchdog) thread ([`watch`], once per tick) sees a shard
//! whose task started `threshold` ticks ago or more: it counts the stall
//! once, logs it (again each time it doubles), keeps the stall's length so
//! far in [`StallState::last_ns`], and asks the stalled thread where it is,
//! as Seastar does: it sends it a reserved real-time signal
//! ([`signal_number`], `SIGRTMIN + 1`) with `pthread_kill`.
//!
//! The signal handler runs on the stalled shard's own thread, on top of the
//! stalled task. It must be async-signal-safe: no allocation, no lock. It
//! walks the stack with libgcc's `_Unwind_Backtrace` (what Rust's own
//! panics use) and stores the raw instruction pointers into the thread's
//! preallocated slot (a `thread_local` with a constant initializer and no
//! destructor: a plain TLS address, nothing lazily allocated). Why this
//! unwinder is safe to call there:
//!
//! * it allocates nothing and takes no lock of its own once initialized:
//!   its one-time setup (a `pthread_once` and the dynamic linker's lazy
//!   binding of the symbol) is done when the shard starts, by a first walk
//!   outside any handler ([`Attached::new`]);
//! * it finds each frame's unwind tables with glibc's `_dl_find_object`
//!   (libgcc 12 and later on glibc 2.35 and later), which is lock-free; on
//!   older pairs it falls back to `dl_iterate_phdr`, which takes the loader
//!   lock, so a stall that is itself inside `dlopen` could deadlock there,
//!   the same caveat Seastar's stall reports carry;
//! * glibc's `backtrace()` would do the same walk but `dlopen`s libgcc on
//!   first use, and the `backtrace` crate's `trace_unsynchronized` is this
//!   walk behind a closure with no documented promise of signal safety.
//!
//! The handler skips its own frames: the unwinder marks the frame the
//! signal interrupted (`_Unwind_GetIPInfo`'s `ip_before_insn`), and the
//! slot keeps that frame and its callers. A sequence number, odd while the
//! handler writes, lets the same thread copy the slot out consistently
//! ([`stall_info`]).
//!
//! Addresses are turned into names only when asked, off the signal path
//! ([`StallBacktrace::resolve`], through the `backtrace` crate): reading
//! debug information allocates and may take a while the first time, so
//! callers on a shard run it through
//! [`spawn_blocking`](crate::io::spawn_blocking).
//!
//! # Coexisting with the app's signals
//!
//! The handler is installed once per process, with `SA_RESTART` (a system
//! call the signal interrupts resumes), on `SIGRTMIN + 1` only, and only if
//! nobody installed a handler there first; it chains to nothing. An app
//! that uses that signal itself keeps it (installed before the runtime, or
//! after: the ticker checks the handler is still ours before each signal),
//! and stalls are then counted and logged without backtraces.

use std::ffi::{c_int, c_void};
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, compiler_fence};
use std::time::Duration;

/// `StallState::started` of a shard running no task.
pub(crate) const IDLE: u64 = u64::MAX;

/// Frames kept per backtrace (the innermost ones).
pub const MAX_FRAMES: usize = 64;

/// What the ticker thread reads to detect a task stalling a shard.
///
/// On lines of its own (two, for the adjacent-line prefetcher): the shard
/// stamps it at every task, and the states of all shards sit side by side
/// in `Shared::stalls`, so unpadded two shards' stamps shared a line that
/// bounced between their cores on every task (and a cross-shard message
/// published after a stamp waited for that line first).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct StallState {
    /// `Shared::tick` when the running task started, or [`IDLE`].
    pub(crate) started: AtomicU64,
    /// Its scheduling group.
    pub(crate) group: AtomicUsize,
    /// Stalls detected (bumped by the ticker thread).
    pub(crate) count: AtomicU64,
    /// The length of the last stall detected so far, in nanoseconds,
    /// measured in ticks (a quarter of the threshold); 0 before any.
    pub(crate) last_ns: AtomicU64,
    /// The shard's thread while its reactor exists. The ticker holds the
    /// lock while it signals, the shard's thread takes it to leave, so no
    /// signal is sent to a thread that has exited.
    thread: Mutex<Option<libc::pthread_t>>,
}

impl StallState {
    /// A shard that runs no task.
    pub(crate) fn new() -> StallState {
        StallState {
            started: AtomicU64::new(IDLE),
            ..Default::default()
        }
    }

    /// Asks the shard's thread to record where it is.
    fn sample(&self) {
        if !INSTALLED.load(Ordering::Acquire) || !still_ours() {
            return;
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = *thread {
            // SAFETY: `t` is a live thread: it clears the slot (under this
            // lock) before its reactor goes away, long before it exits.
            unsafe { libc::pthread_kill(t, signal_number()) };
        }
    }
}

/// The ticker's view of one shard: the stall it is following (its
/// starting tick) and the length in ticks at which to report it next.
pub(crate) type Tracked = (u64, u64);

/// One ticker round over every shard (see the module doc): counts, logs
/// and samples the shards whose task has run `threshold` ticks or more.
pub(crate) fn watch(
    stalls: &[StallState],
    tracked: &mut [Tracked],
    tick: u64,
    period: Duration,
    threshold: u64,
) {
    for (shard, (state, track)) in stalls.iter().zip(tracked.iter_mut()).enumerate() {
        let started = state.started.load(Ordering::Relaxed);
        if started == IDLE {
            continue;
        }
        if track.0 != started {
            *track = (started, threshold);
        }
        let stalled = tick.saturating_sub(started);
        if stalled < threshold {
            continue;
        }
        let length = period.saturating_mul(stalled.min(u64::from(u32::MAX)) as u32);
        let ns = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
        state.last_ns.store(ns, Ordering::Relaxed);
        if stalled >= track.1 {
            if track.1 == threshold {
                state.count.fetch_add(1, Ordering::Relaxed);
            }
            state.sample();
            let group = crate::task::group::name_of(state.group.load(Ordering::Relaxed));
            let ms = length.as_secs_f64() * 1000.0;
            tracing::warn!(shard, group = %group, stalled_ms = ms, "reactor stalled: a task ran for {ms:.1} ms without yielding (scheduling group {group})");
            track.1 = stalled * 2;
        }
    }
}

/// The signal the stall detector sends a stalled shard's thread:
/// `SIGRTMIN + 1`, as in Seastar.
pub fn signal_number() -> c_int {
    libc::SIGRTMIN() + 1
}

/// Whether our handler is installed (see [`install`]).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the handler once per process, unless the app has one there.
fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let sig = signal_number();
        // SAFETY: an all-zero `sigaction` is a valid value to be filled in.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: querying (null new action) writes only into `old`.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
            return;
        }
        if old.sa_sigaction != libc::SIG_DFL {
            tracing::warn!(
                signal = sig,
                "the stall detector's signal has a handler already: stalls are reported without backtraces"
            );
            return;
        }
        // SAFETY: as above.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = handler();
        new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `sa_mask` is a valid set to empty; installing a handler
        // that is async-signal-safe (see `on_signal`) for a signal nobody
        // else handles.
        let ok = unsafe {
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(sig, &new, std::ptr::null_mut()) == 0
        };
        INSTALLED.store(ok, Ordering::Release);
    });
}

/// Whether the signal's handler is still ours (an app may install its own
/// later; it then gets no signal from us). One `sigaction` query, made
/// only when a stall is reported.
fn still_ours() -> bool {
    // SAFETY: an all-zero `sigaction` is a valid value to be filled in.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying (null new action) writes only into `cur`.
    let ok = unsafe { libc::sigaction(signal_number(), std::ptr::null(), &mut cur) } == 0;
    let ours = ok && cur.sa_sigaction == handler();
    if !ours {
        INSTALLED.store(false, Ordering::Release);
        tracing::warn!(
            signal = signal_number(),
            "the app took over the stall detector's signal: stalls are reported without backtraces"
        );
    }
    ours
}

/// [`on_signal`] as `sigaction` stores it.
fn handler() -> libc::sighandler_t {
    on_signal as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as libc::sighandler_t
}

/// A shard's registration with the stall detector, held by its reactor:
/// made on the shard's thread, it lets the ticker signal that thread until
/// dropped (on the same thread).
pub(crate) struct Attached {
    shared: std::sync::Arc<super::Shared>,
    id: usize,
}

impl Attached {
    /// Registers the calling thread as shard `id`'s, installs the handler
    /// (once per process) and walks the stack once so that the unwinder's
    /// lazy setup is done outside any signal handler.
    pub(crate) fn new(shared: std::sync::Arc<super::Shared>, id: usize) -> Attached {
        install();
        SLOT.with(|s| {
            s.record();
            s.clear();
        });
        let state = &shared.stalls[id];
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        *state.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(me);
        Attached { shared, id }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let state = &self.shared.stalls[self.id];
        *state.thread.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A thread's last stack sample. Written only by the signal handler on
/// that thread, read only by that thread.
struct Slot {
    /// Odd while the handler writes; bumped by two per sample.
    seq: AtomicU64,
    len: AtomicUsize,
    ips: [AtomicUsize; MAX_FRAMES],
}

thread_local! {
    // Constant initializer, no destructor: a plain TLS address, safe to
    // reach from a signal handler.
    static SLOT: Slot = const {
        Slot {
            seq: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            ips: [const { AtomicUsize::new(0) }; MAX_FRAMES],
        }
    };
}

/// `_Unwind_Reason_Code` values we use.
const URC_NO_REASON: c_int = 0;
const URC_NORMAL_STOP: c_int = 4;

type TraceFn = extern "C" fn(ctx: *mut c_void, arg: *mut c_void) -> c_int;

// libgcc's unwinder (libgcc_s), which the standard library links on
// linux-gnu for panics.
unsafe extern "C" {
    fn _Unwind_Backtrace(trace: TraceFn, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIPInfo(ctx: *mut c_void, ip_before_insn: *mut c_int) -> usize;
}

/// The walk's state, on the handler's stack.
struct Walk<'a> {
    slot: &'a Slot,
    n: usize,
    /// Index of the frame the signal interrupted, once seen.
    interrupted: Option<usize>,
}

extern "C" fn on_frame(ctx: *mut c_void, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Walk` that `Slot::record` passed, alive for the
    // whole `_Unwind_Backtrace` call.
    let walk = unsafe { &mut *arg.cast::<Walk<'_>>() };
    let mut exact: c_int = 0;
    // SAFETY: `ctx` is the unwinder's context for this callback.
    let ip = unsafe { _Unwind_GetIPInfo(ctx, &mut exact) };
    if ip == 0 || walk.n == MAX_FRAMES {
        return URC_NORMAL_STOP;
    }
    if exact != 0 && walk.interrupted.is_none() {
        walk.interrupted = Some(walk.n);
    }
    // A return address points after its call and symbolizers look one byte
    // back; the interrupted frame's address is the instruction itself, so
    // it is stored one byte on to land on it.
    let ip = if exact != 0 { ip + 1 } else { ip };
    walk.slot.ips[walk.n].store(ip, Ordering::Relaxed);
    walk.n += 1;
    URC_NO_REASON
}

impl Slot {
    /// Stores the calling thread's stack (from the interrupted frame on,
    /// when called in the handler). Async-signal-safe: stores to this
    /// thread's memory and the unwinder's walk.
    fn record(&self) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq | 1, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        let mut walk = Walk {
            slot: self,
            n: 0,
            interrupted: None,
        };
        // SAFETY: `on_frame` matches the callback signature and `walk`
        // outlives the call.
        unsafe { _Unwind_Backtrace(on_frame, (&raw mut walk).cast()) };
        // Drop the handler's own frames (up to the signal trampoline).
        let skip = walk.interrupted.unwrap_or(0);
        for i in skip..walk.n {
            let ip = self.ips[i].load(Ordering::Relaxed);
            self.ips[i - skip].store(ip, Ordering::Relaxed);
        }
        self.len.store(walk.n - skip, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        self.seq.store((seq | 1) + 1, Ordering::Relaxed);
    }

    /// Forgets the sample (a new shard on this thread starts clean).
    fn clear(&self) {
        self.len.store(0, Ordering::Relaxed);
    }

    /// A consistent copy of the sample, if any (retries if the handler ran
    /// meanwhile).
    fn read(&self) -> Option<Vec<usize>> {
        for _ in 0..8 {
            let before = self.seq.load(Ordering::Relaxed);
            compiler_fence(Ordering::SeqCst);
            let len = self.len.load(Ordering::Relaxed).min(MAX_FRAMES);
            let ips: Vec<usize> = (self.ips[..len].iter())
                .map(|a| a.load(Ordering::Relaxed))
                .collect();
            compiler_fence(Ordering::SeqCst);
            if before & 1 == 0 && self.seq.load(Ordering::Relaxed) == before {
                return (!ips.is_empty()).then_some(ips);
            }
        }
        None
    }
}

extern "C" fn on_signal(_sig: c_int, _info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    // SAFETY: errno is this thread's; saved and restored around the walk.
    let errno = unsafe { *libc::__errno_location() };
    let _ = SLOT.try_with(Slot::record);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The calling shard's stalls, from [`stall_info`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StallInfo {
    /// Tasks that ran past the blocked-reactor threshold
    /// ([`RuntimeBuilder::blocked_reactor_notify`](crate::RuntimeBuilder::blocked_reactor_notify))
    /// without yielding, since the shard started.
    pub count: u64,
    /// How long the last one ran, as far as the detector saw it (measured
    /// in its ticks, a quarter of the threshold); `None` before any.
    pub last_duration: Option<Duration>,
    /// Where the last one was when the detector caught it (`None` before
    /// any, or when the app owns the detector's signal).
    pub last_backtrace: Option<StallBacktrace>,
}

/// The raw stack of a stalled task, innermost frame first, as the signal
/// handler recorded it: addresses only, named by [`resolve`](Self::resolve).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StallBacktrace {
    ips: Vec<usize>,
}

/// One frame of a resolved [`StallBacktrace`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StallFrame {
    /// The instruction address.
    pub ip: usize,
    /// The function, demangled (without the hash), if known; inlined
    /// functions come as frames of their own with the same address.
    pub name: Option<String>,
    /// Its source file, if the binary has debug information.
    pub file: Option<PathBuf>,
    /// Its source line.
    pub line: Option<u32>,
}

impl fmt::Display for StallFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} {}", self.ip, self.name.as_deref().unwrap_or("?"))?;
        if let Some(file) = &self.file {
            write!(f, " at {}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
        }
        Ok(())
    }
}

impl StallBacktrace {
    /// The instruction addresses, innermost first (at most [`MAX_FRAMES`]).
    pub fn addresses(&self) -> &[usize] {
        &self.ips
    }

    /// Names each address from the binary's symbols and debug information.
    ///
    /// Allocates, and reads and parses the debug information the first
    /// time (tens to hundreds of milliseconds for a large binary; cached
    /// after that): on a shard, run it through
    /// [`spawn_blocking`](crate::io::spawn_blocking).
    pub fn resolve(&self) -> Vec<StallFrame> {
        let mut frames = Vec::with_capacity(self.ips.len());
        for &ip in &self.ips {
            let before = frames.len();
            backtrace::resolve(ip as *mut c_void, |s| {
                frames.push(StallFrame {
                    ip,
                    name: s.name().map(|n| format!("{n:#}")),
                    file: s.filename().map(PathBuf::from),
                    line: s.lineno(),
                });
            });
            if frames.len() == before {
                frames.push(StallFrame {
                    ip,
                    name: None,
                    file: None,
                    line: None,
                });
            }
        }
        frames
    }

    /// [`resolve`](Self::resolve)d and formatted, one numbered frame per
    /// line (same cost).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, frame) in self.resolve().iter().enumerate() {
            use fmt::Write;
            let _ = writeln!(out, "{i:>3}: {frame}");
        }
        out
    }
}

/// The calling shard's stall counts and its last stall's backtrace
/// (unresolved: see [`StallBacktrace::resolve`]). To see every shard, call
/// it through [`invoke_on_all`](crate::smp::invoke_on_all).
///
/// ```
/// use std::time::{Duration, Instant};
/// use seastar_core::{Runtime, introspect};
///
/// #[inline(never)]
/// fn spin(d: Duration) {
///     let t = Instant::now();
///     while t.elapsed() < d {
///         std::hint::spin_loop();
///     }
/// }
///
/// Runtime::builder()
///     .shards(1)
///     .handle_signals(false)
///     .task_quota(Duration::from_millis(1))
///     .blocked_reactor_notify(Duration::from_millis(10))
///     .build()
///     .unwrap()
///     .run(async {
///         let before = introspect::stall_info().count;
///         spin(Duration::from_millis(60));
///         seastar_core::yield_now().await;
///         let info = introspect::stall_info();
///         assert!(info.count > before);
///         assert!(info.last_duration.unwrap() >= Duration::from_millis(10));
///         if let Some(bt) = info.last_backtrace {
///             assert!(!bt.addresses().is_empty());
///         }
///     });
/// ```
///
/// # Panics
///
/// Outside a shard.
pub fn stall_info() -> StallInfo {
    let (count, last_ns) = super::with(|s| {
        let st = &s.shared.stalls[s.id];
        (
            st.count.load(Ordering::Relaxed),
            st.last_ns.load(Ordering::Relaxed),
        )
    });
    StallInfo {
        count,
        last_duration: (last_ns > 0).then(|| Duration::from_nanos(last_ns)),
        last_backtrace: SLOT
            .try_with(Slot::read)
            .ok()
            .flatten()
            .map(|ips| StallBacktrace { ips }),
    }
}
