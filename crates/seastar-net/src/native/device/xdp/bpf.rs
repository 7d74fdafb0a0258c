//! The XDP program that steers an interface's frames to our AF_XDP
//! sockets, loaded and attached with raw `bpf()` system calls (no clang,
//! libbpf or libxdp: the program is five instructions, assembled here).
//!
//! The program is `r2 = ctx->rx_queue_index; return
//! bpf_redirect_map(xsks_map, r2, XDP_PASS)`: a frame goes to the socket
//! bound to its queue, or up the kernel's own stack when that queue has
//! no socket. It is attached through a BPF link (`BPF_LINK_CREATE`), so it
//! goes away with the last file descriptor of the link, at the latest when
//! the process dies: a crashed server leaves no program on the interface.
//!
//! One attachment serves every queue of an interface; [`attach`] shares it
//! between the devices of one process (one per shard) and detaches it when
//! the last of them is dropped.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, Weak};

use super::super::DeviceError;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;

/// `XDP_FLAGS_SKB_MODE`: generic XDP, run on the socket buffer path.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, run by the driver.
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Entries of the socket map: the queue indices we can serve.
pub(crate) const MAX_QUEUES: u32 = 64;

/// How the program ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode.
    Native,
    /// Generic (skb) mode: the fallback when the driver has no XDP.
    Generic,
}

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The program, with the socket map's file descriptor in its `ld_imm64`.
fn program(map_fd: RawFd) -> [Insn; 6] {
    [
        // r2 = *(u32 *)(r1 + 16): xdp_md.rx_queue_index (BPF_LDX|BPF_MEM|BPF_W)
        insn(0x61, 2, 1, 16, 0),
        // r1 = map (BPF_LD|BPF_DW|BPF_IMM with BPF_PSEUDO_MAP_FD), two slots
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // r3 = XDP_PASS: the action when the queue has no socket (BPF_ALU64|BPF_MOV|BPF_K)
        insn(0xb7, 3, 0, 0, XDP_PASS),
        // call bpf_redirect_map (BPF_JMP|BPF_CALL)
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        // exit (BPF_JMP|BPF_EXIT)
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// `union bpf_attr` for `BPF_MAP_CREATE` (the fields we set).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM`.
#[repr(C)]
#[derive(Default)]
struct MapUpdateAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_LINK_CREATE`.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// `bpf(cmd, attr, sizeof attr)`; a new file descriptor (or 0) on success.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // The kernel reads (and for some commands writes) only the bytes whose
    // size is passed; pointers inside `attr` point to memory the caller
    // keeps alive for the call.
    // SAFETY: `attr` is a live, initialised `#[repr(C)]` prefix of `union bpf_attr` for `cmd`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Wraps a file descriptor the kernel just returned.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful bpf() call that creates
    // a new descriptor; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// A program attached to an interface, with its socket map.
#[derive(Debug)]
pub(crate) struct Attachment {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
    mode: XdpMode,
}

impl Attachment {
    /// The mode the program runs in.
    pub(crate) fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Points the map's entry for `queue` at the AF_XDP socket `xsk`.
    pub(crate) fn insert(&self, queue: u32, xsk: RawFd) -> io::Result<()> {
        let key = queue;
        let value = xsk as u32;
        let mut attr = MapUpdateAttr {
            map_fd: self.map.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            ..Default::default()
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }
}

fn create_map() -> io::Result<OwnedFd> {
    let mut name = [0u8; 16];
    name[..8].copy_from_slice(b"ssrs_xsk");
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries: MAX_QUEUES,
        map_name: name,
        ..Default::default()
    };
    bpf(BPF_MAP_CREATE, &mut attr).map(owned)
}

fn load_program(map: &OwnedFd) -> io::Result<OwnedFd> {
    let insns = program(map.as_raw_fd());
    let license = b"Dual MIT/GPL\0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"ssrs_xdp\0");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_XDP,
        ..Default::default()
    };
    bpf(BPF_PROG_LOAD, &mut attr).map(owned)
}

fn link(prog: &OwnedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags,
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned)
}

/// Attachments of this process, by network namespace (the inode of
/// `/proc/thread-self/ns/net`) and interface index: interface indices are
/// per namespace, and threads of one process may be in different ones.
static ATTACHED: Mutex<Option<Attachments>> = Mutex::new(None);

/// Live attachments by (network namespace, interface index).
type Attachments = HashMap<(u64, u32), Weak<Attachment>>;

/// The calling thread's network namespace, as an inode number (0 if unknown).
fn netns_id() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").map_or(0, |m| m.ino())
}

/// The program attached to interface `ifindex` (named `iface`): the one
/// this process already attached, or a new one in native mode, falling
/// back to generic mode (`force_generic` skips native mode).
pub(crate) fn attach(
    iface: &str,
    ifindex: u32,
    force_generic: bool,
) -> Result<Arc<Attachment>, DeviceError> {
    let mut guard = ATTACHED.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    let key = (netns_id(), ifindex);
    if let Some(a) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(a);
    }
    let xsks = create_map().map_err(|source| DeviceError::Sys {
        what: "creating the XSKMAP (bpf BPF_MAP_CREATE)",
        source,
    })?;
    let prog = load_program(&xsks).map_err(|source| DeviceError::Sys {
        what: "loading the XDP program (bpf BPF_PROG_LOAD)",
        source,
    })?;
    let drv = if force_generic {
        Err(io::Error::other(
            "native mode not tried (generic mode forced)",
        ))
    } else {
        link(&prog, ifindex, XDP_FLAGS_DRV_MODE)
    };
    let (link_fd, mode) = match drv {
        Ok(l) => (l, XdpMode::Native),
        Err(drv) => match link(&prog, ifindex, XDP_FLAGS_SKB_MODE) {
            Ok(l) => (l, XdpMode::Generic),
            Err(skb) => {
                return Err(DeviceError::XdpRefused {
                    iface: iface.to_owned(),
                    drv,
                    skb,
                });
            }
        },
    };
    tracing::debug!(iface, ?mode, "XDP program attached");
    let a = Arc::new(Attachment {
        map: xsks,
        _prog: prog,
        _link: link_fd,
        mode,
    });
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key, Arc::downgrade(&a));
    Ok(a)
}
