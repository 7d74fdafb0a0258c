//! The native stack with two shards on two queues of a real device, each
//! shard owning its own queue (queue `i` on shard `i`), against the
//! kernel's stack in the other namespace (`native::testbed`).
//!
//! What the kernel does with the queues (measured on Linux 6.18, pinned by
//! these tests where it is the kernel's documented behaviour):
//!
//! * **veth, native XDP.** A frame sent by `veth_b` on its transmit queue
//!   `q` is received by `veth_a` on receive queue `q` (veth needs at least
//!   as many receive queues as its peer has transmit queues for native
//!   XDP). Without XPS maps (a veth has none), `veth_b` picks the transmit
//!   queue by the flow hash of each datagram, so UDP flows from many
//!   source ports land on both queues: 64 flows split 32/32 here.
//! * **veth, generic XDP.** Without native XDP the veth takes no NAPI
//!   path and the frame enters the stack with no receive queue recorded:
//!   every frame runs our program with `rx_queue_index` 0, so queue 0's
//!   socket gets all of them and queue 1's none. The stack still works:
//!   shard 0 hands shard 1's flows over (software RSS), shard 1 replies on
//!   its own queue.
//! * **TAP, `IFF_MULTI_QUEUE`.** The kernel picks the queue a frame goes to
//!   by the flow's symmetric hash, but it also remembers, per flow, the
//!   queue that last *wrote* a frame of that flow (`tun_flow_update`) and
//!   sends the flow's later frames there. Our replies leave from the
//!   owner's queue, so after one exchange every flow arrives at its owner
//!   and needs no hand-over.
//!
//! In every case, each datagram must be handled by the shard that owns its
//! flow ([`rss::udp_owner`]), a flow that lands on the other queue is
//! handed over, every reply goes out, and nothing is dropped. Needs root
//! and `ip`; elsewhere each test prints `SKIPPED: ...` and passes (or fails
//! with `SEASTAR_REQUIRE_TESTBED=1`).

#![cfg(feature = "native-testbed")]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use seastar_net::native::checksum::Checksum;
use seastar_net::native::config::NativeConfig;
use seastar_net::native::device::{DeviceSpec, XdpOptions};
use seastar_net::native::iface::IfaceAddrs;
use seastar_net::native::state::StackOptions;
use seastar_net::native::testbed::{self, BedOptions, TestBed};
use seastar_net::native::{self, NativeStats, UdpSocket as NativeUdp, rss};

const ECHO_PORT: u16 = 7;
const SHARDS: usize = 2;
/// Flows (kernel sockets, one source port each) per round.
const FLOWS: usize = 64;

/// What the test asks of the server's runtime.
enum Cmd {
    /// Every shard's counters, in shard order.
    Stats(mpsc::Sender<Vec<NativeStats>>),
    /// Stop the stack and the runtime.
    Stop,
}

/// A two-shard runtime in a namespace with the native stack on both
/// queues of a device and a UDP echo on port 7 of every shard that
/// appends its shard id to each datagram.
struct Server {
    cmds: mpsc::Sender<Cmd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(ns: &str, device: DeviceSpec, addr: Ipv4Addr) -> Server {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (cmds, cmd_rx) = mpsc::channel::<Cmd>();
        let ns = ns.to_owned();
        let thread = std::thread::spawn(move || {
            testbed::enter_ns(&ns).expect("entering the server's namespace");
            let rt = seastar_core::Runtime::builder()
                .shards(SHARDS)
                .handle_signals(false)
                .build()
                .unwrap();
            rt.run(async move {
                let config = NativeConfig {
                    device,
                    iface: IfaceAddrs {
                        addr,
                        netmask: Ipv4Addr::new(255, 255, 255, 0),
                        gateway: None,
                    },
                    // Every shard opens its own queue: queue i on shard i.
                    queues: None,
                    options: StackOptions::default(),
                };
                if let Err(e) = native::start(&config).await {
                    ready_tx.send(Err(e.to_string())).unwrap();
                    return;
                }
                let local = SocketAddr::from((addr, ECHO_PORT));
                seastar_core::smp::invoke_on_all(move || async move {
                    let sock = NativeUdp::bind(local).unwrap();
                    seastar_core::spawn_local(async move {
                        loop {
                            let (r, mut buf) = sock.recv_from(Vec::with_capacity(2048)).await;
                            let Ok((_, from)) = r else { break };
                            buf.push(seastar_core::shard_id() as u8);
                            sock.send_to(buf, from).await.0.unwrap();
                        }
                    })
                    .detach();
                })
                .await
                .unwrap();
                ready_tx.send(Ok(())).unwrap();
                loop {
                    match cmd_rx.try_recv() {
                        Ok(Cmd::Stats(to)) => {
                            let mut all = Vec::new();
                            for shard in 0..SHARDS {
                                let s = seastar_core::smp::submit_to(shard, || async {
                                    native::stats().expect("the stack runs")
                                })
                                .await
                                .unwrap();
                                all.push(s);
                            }
                            let _ = to.send(all);
                        }
                        Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => break,
                        // Poll for commands without blocking the shard.
                        Err(mpsc::TryRecvError::Empty) => {
                            seastar_core::timer::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                native::stop().await;
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the stack did not start in 20 s")
            .expect("native::start");
        Server {
            cmds,
            thread: Some(thread),
        }
    }

    fn stats(&self) -> Vec<NativeStats> {
        let (tx, rx) = mpsc::channel();
        self.cmds.send(Cmd::Stats(tx)).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).expect("stats")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let r = t.join();
            if r.is_err() && !std::thread::panicking() {
                panic!("the server's runtime panicked");
            }
        }
    }
}

/// One shard's counters over an interval.
#[derive(Debug, Default)]
struct Delta {
    udp_in: u64,
    udp_out: u64,
    drops: u64,
    rx_out: u64,
    rx_in: u64,
    tx_out: u64,
    tx_in: u64,
}

impl Delta {
    /// Every shard's counters from `before` to `after`.
    fn between(before: &[NativeStats], after: &[NativeStats]) -> Vec<Delta> {
        after
            .iter()
            .zip(before)
            .map(|(a, b)| Delta {
                udp_in: a.udp_in - b.udp_in,
                udp_out: a.udp_out - b.udp_out,
                drops: a.total_drops() - b.total_drops(),
                rx_out: a.handover_rx_out - b.handover_rx_out,
                rx_in: a.handover_rx_in - b.handover_rx_in,
                tx_out: a.handover_tx_out - b.handover_tx_out,
                tx_in: a.handover_tx_in - b.handover_tx_in,
            })
            .collect()
    }

    /// UDP frames this shard took from its own queue: those it served
    /// that were not handed to it, and those it handed over (only UDP is
    /// handed over; ARP or ICMP frames of the interval do not count).
    fn queue_frames(&self) -> u64 {
        self.udp_in - self.rx_in + self.rx_out
    }
}

/// One ICMP echo from the kernel of namespace `b` to `to` (a raw socket, as
/// `ping` does); true when the reply came within 500 ms.
fn kernel_ping(bed: &TestBed, to: Ipv4Addr, seq: u16) -> bool {
    bed.run_in_b(|| {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        assert!(
            fd >= 0,
            "raw ICMP socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a new descriptor we own.
        let sock = std::net::UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) });
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut req = vec![8, 0, 0, 0, 0x51, 0x51];
        req.extend_from_slice(&seq.to_be_bytes());
        req.extend_from_slice(b"multi-queue ping");
        let mut c = Checksum::new();
        c.add(&req);
        let sum = c.finish().to_be_bytes();
        req[2..4].copy_from_slice(&sum);
        sock.send_to(&req, SocketAddr::from((to, 0))).unwrap();
        let mut buf = [0u8; 1500];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            let icmp = &buf[20..n];
            if icmp[0] == 0 && icmp[4..] == req[4..] {
                return true;
            }
        }
        false
    })
}

/// The kernel's sockets of one round: `FLOWS` sockets in namespace `b`,
/// one source port each.
struct Flows {
    socks: Vec<UdpSocket>,
    /// The shard owning each socket's flow.
    owners: Vec<usize>,
}

impl Flows {
    fn new(bed: &TestBed, ours: Ipv4Addr, theirs: Ipv4Addr) -> Flows {
        let socks: Vec<UdpSocket> = bed.run_in_b(|| {
            (0..FLOWS)
                .map(|_| UdpSocket::bind((theirs, 0)).expect("bind in b"))
                .collect()
        });
        let owners = socks
            .iter()
            .map(|s| {
                let port = s.local_addr().unwrap().port();
                rss::udp_owner(theirs, ours, port, ECHO_PORT, SHARDS)
            })
            .collect();
        Flows { socks, owners }
    }

    /// Flows owned by `shard`.
    fn owned_by(&self, shard: usize) -> u64 {
        self.owners.iter().filter(|&&o| o == shard).count() as u64
    }

    /// Sends one datagram on every flow at once, then checks that every
    /// flow gets its echo, from the shard owning it.
    fn round(&self, server: SocketAddr, tag: u8) {
        for (i, s) in self.socks.iter().enumerate() {
            s.send_to(&[tag, i as u8, 0xa5, 0x5a], server).unwrap();
        }
        let mut buf = [0u8; 64];
        for (i, s) in self.socks.iter().enumerate() {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let (n, from) = s
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("flow {i} (round {tag}): no echo: {e}"));
            assert_eq!(from, server);
            assert_eq!(
                &buf[..n],
                &[tag, i as u8, 0xa5, 0x5a, self.owners[i] as u8],
                "flow {i} (port {}) served by its owner",
                s.local_addr().unwrap().port()
            );
        }
    }
}

/// Asserts what holds on every device: each shard served exactly its
/// flows, the hand-overs of one shard are the other's intake, and nothing
/// was dropped.
fn assert_served_by_owners(s: &[Delta], flows: &Flows) {
    for (shard, d) in s.iter().enumerate() {
        assert_eq!(
            d.udp_in,
            flows.owned_by(shard),
            "shard {shard} took exactly the datagrams of its flows: {d:?}"
        );
        assert_eq!(d.udp_out, d.udp_in, "shard {shard} answered each: {d:?}");
        assert_eq!(d.drops, 0, "shard {shard} dropped: {d:?}");
        // Each shard sends on its own queue: no transmit hand-overs.
        assert_eq!((d.tx_out, d.tx_in), (0, 0), "shard {shard}: {d:?}");
    }
    assert_eq!(s[0].rx_out, s[1].rx_in);
    assert_eq!(s[1].rx_out, s[0].rx_in);
    assert_eq!(s[0].queue_frames() + s[1].queue_frames(), FLOWS as u64);
}

/// The bed, the server on both queues, ARP and ping settled.
fn veth_bed(test: &str, generic: bool) -> Option<(TestBed, Server)> {
    let opts = BedOptions {
        queues: Some(2),
        ..BedOptions::default()
    };
    let bed = TestBed::new_or_skip(test, &opts)?;
    let device = DeviceSpec::Xdp {
        iface: bed.veth_a.clone(),
        options: XdpOptions {
            force_generic: generic,
            ..XdpOptions::default()
        },
    };
    let server = Server::start(&bed.ns_a, device, bed.addr_a);
    // The first ping makes the kernel ask ARP for our address; our stack
    // learns the kernel's address from that request.
    let answered = (1..=10).any(|seq| kernel_ping(&bed, bed.addr_a, seq));
    assert!(answered, "no ICMP echo reply from our stack in 10 tries");
    Some((bed, server))
}

#[test]
fn xdp_native_mode_spreads_flows_over_both_queues_and_owners_serve_them() {
    let Some((bed, server)) = veth_bed("multi-queue xdp native", false) else {
        return;
    };
    let flows = Flows::new(&bed, bed.addr_a, bed.addr_b);
    assert!(
        flows.owned_by(0) > 0 && flows.owned_by(1) > 0,
        "both shards own flows"
    );
    let before = server.stats();
    flows.round(SocketAddr::from((bed.addr_a, ECHO_PORT)), 1);
    let after = server.stats();
    let s = Delta::between(&before, &after);
    assert_served_by_owners(&s, &flows);
    // The kernel spread the flows over both queues, and some landed on
    // the queue of the shard that does not own them.
    assert!(
        s[0].queue_frames() > 0 && s[1].queue_frames() > 0,
        "both queues received: {} and {}",
        s[0].queue_frames(),
        s[1].queue_frames()
    );
    assert!(
        s[0].rx_out + s[1].rx_out > 0,
        "some flows landed on the other shard's queue"
    );
}

#[test]
fn xdp_generic_mode_delivers_all_to_queue_0_and_hands_shard_1_its_flows() {
    let Some((bed, server)) = veth_bed("multi-queue xdp generic", true) else {
        return;
    };
    let flows = Flows::new(&bed, bed.addr_a, bed.addr_b);
    let before = server.stats();
    flows.round(SocketAddr::from((bed.addr_a, ECHO_PORT)), 1);
    let after = server.stats();
    let s = Delta::between(&before, &after);
    assert_served_by_owners(&s, &flows);
    // Generic XDP on a veth sees every frame on receive queue 0.
    assert_eq!(
        (s[0].queue_frames(), s[1].queue_frames()),
        (FLOWS as u64, 0),
        "queue 0 takes every frame in generic mode"
    );
    assert_eq!(s[0].rx_out, flows.owned_by(1));
}

#[test]
fn tap_multi_queue_spreads_flows_and_learns_each_flows_owner_from_its_replies() {
    let opts = BedOptions {
        tap: true,
        ..BedOptions::default()
    };
    let Some(bed) = TestBed::new_or_skip("multi-queue tap", &opts) else {
        return;
    };
    // The TAP interface lives in namespace b: the runtime opens it there.
    let spec = DeviceSpec::tap(bed.tap.clone().unwrap());
    let server = Server::start(&bed.ns_b, spec, bed.tap_addr_a);
    let answered = (1..=10).any(|seq| kernel_ping(&bed, bed.tap_addr_a, seq));
    assert!(answered, "no ICMP echo reply from our stack in 10 tries");
    let flows = Flows::new(&bed, bed.tap_addr_a, bed.tap_addr_b);
    let to = SocketAddr::from((bed.tap_addr_a, ECHO_PORT));

    let s0 = server.stats();
    flows.round(to, 1);
    let s1 = server.stats();
    let first = Delta::between(&s0, &s1);
    assert_served_by_owners(&first, &flows);
    assert!(
        first[0].queue_frames() > 0 && first[1].queue_frames() > 0,
        "both queues received: {} and {}",
        first[0].queue_frames(),
        first[1].queue_frames()
    );
    assert!(
        first[0].rx_out + first[1].rx_out > 0,
        "some flows landed on the other shard's queue"
    );

    // Our replies went out on the owners' queues: the kernel now sends
    // each flow to its owner.
    flows.round(to, 2);
    let s2 = server.stats();
    let second = Delta::between(&s1, &s2);
    assert_served_by_owners(&second, &flows);
    assert_eq!(
        (second[0].rx_out, second[1].rx_out),
        (0, 0),
        "every flow arrives at its owner's queue"
    );
    for (shard, d) in second.iter().enumerate() {
        assert_eq!(d.queue_frames(), flows.owned_by(shard));
    }
}
