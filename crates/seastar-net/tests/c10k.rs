//! C10K: 10,000 concurrent connections against a per-shard echo server on
//! two shards, one message each, all held open at once; reports the
//! server's memory per connection.
//!
//! The clients run in a child process (this test binary again, in client
//! mode), so each side has its own descriptor limit and the server's
//! VmRSS counts only the server. Both raise `RLIMIT_NOFILE` as far as they
//! may. `SEASTAR_NET_C10K=N` changes the count (default 10,000; CI-sized
//! runs may use 2,000 or more).

mod common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Instant;

use common::{localhost0, rt};
use seastar_core::{JoinHandle, smp};
use seastar_net::{ListenOptions, ListenerStats, TcpListener, TcpStream};

const CLIENT_ENV: &str = "SEASTAR_NET_C10K_CLIENT";
const TEST_NAME: &str = "ten_thousand_concurrent_connections_each_echo_a_message";

thread_local! {
    static SERVER: RefCell<Option<(Rc<TcpListener>, JoinHandle<()>)>> = const { RefCell::new(None) };
    static CLIENTS: RefCell<Vec<TcpStream>> = const { RefCell::new(Vec::new()) };
}

/// Raises the soft (and if allowed the hard) descriptor limit towards
/// `want`; returns the soft limit in force afterwards.
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the live local `lim`.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur >= want {
        return lim.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: want.max(lim.rlim_max),
    };
    // SAFETY: setrlimit reads the live local `raised`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return want;
    }
    let soft = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) };
    lim.rlim_max
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

async fn server_stats() -> Vec<ListenerStats> {
    smp::invoke_on_all(|| async {
        SERVER.with(|s| {
            s.borrow()
                .as_ref()
                .map(|(l, _)| l.stats())
                .unwrap_or_default()
        })
    })
    .await
    .unwrap()
}

/// Connects `n` clients from this shard, `wave` at a time, each sending one
/// message and reading its echo; keeps them open.
async fn connect_clients(addr: SocketAddr, n: usize, wave: usize) -> usize {
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(wave);
        let conns = futures::future::join_all((0..batch).map(|i| async move {
            let c = TcpStream::connect(addr).await?;
            let msg = format!("hello from client {:>8}", done + i).into_bytes();
            let (r, msg) = c.write_all(msg).await;
            r?;
            let mut got = Vec::new();
            while got.len() < msg.len() {
                let (n, buf) = c.read(vec![0u8; 64]).await;
                match n? {
                    0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            assert_eq!(got, msg);
            Ok::<_, std::io::Error>(c)
        }))
        .await;
        for c in conns {
            let c = c.expect("connect and echo");
            CLIENTS.with(|cl| cl.borrow_mut().push(c));
        }
        done += batch;
    }
    CLIENTS.with(|cl| cl.borrow().len())
}

/// Client mode: connect, report, hold the connections until stdin closes.
fn run_clients(addr: SocketAddr, n: usize) {
    let limit = raise_nofile(n as u64 + 256);
    assert!(
        limit >= n as u64 + 64,
        "client: RLIMIT_NOFILE {limit} too low for {n} connections"
    );
    rt(2).run(async move {
        let per_shard = [n / 2, n - n / 2];
        let held = smp::invoke_on_all(move || async move {
            connect_clients(addr, per_shard[seastar_core::shard_id()], 256).await
        })
        .await
        .unwrap();
        println!("c10k-client: ready {}", held.iter().sum::<usize>());
        // Hold everything open until the server side has measured.
        seastar_core::io::spawn_blocking(|| {
            let mut rest = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut rest);
        })
        .await;
        smp::invoke_on_all(|| async { CLIENTS.with(|c| c.borrow_mut().clear()) })
            .await
            .unwrap();
    });
}

#[test]
fn ten_thousand_concurrent_connections_each_echo_a_message() {
    let n: usize = std::env::var("SEASTAR_NET_C10K")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    if let Ok(addr) = std::env::var(CLIENT_ENV) {
        run_clients(addr.parse().unwrap(), n);
        return;
    }
    let limit = raise_nofile(n as u64 + 256);
    assert!(
        limit >= n as u64 + 64,
        "RLIMIT_NOFILE {limit} too low for {n} connections"
    );
    rt(2).run(async move {
        let addr = smp::invoke_on_all(|| async {
            let l = TcpListener::bind(localhost0(), ListenOptions::default().backlog(4096))
                .await
                .unwrap();
            let addr = l.local_addr().unwrap();
            let l = Rc::new(l);
            let task = spawn_echo_server(l.clone());
            SERVER.with(|s| *s.borrow_mut() = Some((l, task)));
            addr
        })
        .await
        .unwrap()[0];
        let rss_before = vm_rss_kib();
        let start = Instant::now();

        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CLIENT_ENV, addr.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the client process");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        // Wait (off the shard) until the client holds every connection.
        let ready = seastar_core::io::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines.by_ref().map_while(Result::ok).find_map(|l| {
                // libtest prints the test's name first on the same line.
                l.split_once("c10k-client: ready ")
                    .map(|(_, n)| n.trim().to_owned())
            });
            // Keep draining so the client never writes into a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            ready
        })
        .await;
        assert_eq!(ready.as_deref(), Some(n.to_string().as_str()), "client did not connect all");
        let elapsed = start.elapsed();
        let stats = server_stats().await;
        assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), n as u64);
        assert_eq!(stats.iter().map(|s| s.open).sum::<u64>(), n as u64);
        let rss_after = vm_rss_kib();
        let per_conn = (rss_after.saturating_sub(rss_before) * 1024) as f64 / n as f64;
        println!(
            "c10k: {n} connections open at once ({} on shard 0, {} on shard 1), one echo each, \
             in {elapsed:.2?}; server VmRSS {rss_before} KiB -> {rss_after} KiB: {per_conn:.0} bytes \
             per connection (user space; includes each echo task's 4 KiB read buffer)",
            stats[0].open, stats[1].open,
        );

        // Let the client go: its connections close, the echo tasks see end
        // of stream and drop their streams, the open counts fall to zero.
        drop(stdin);
        let status = seastar_core::io::spawn_blocking(move || child.wait()).await.unwrap();
        assert!(status.success(), "client process: {status:?}");
        while server_stats().await.iter().map(|s| s.open).sum::<u64>() != 0 {
            seastar_core::yield_now().await;
        }
        smp::invoke_on_all(|| async {
            if let Some((l, task)) = SERVER.with(|s| s.borrow_mut().take()) {
                task.abort();
                let _ = task.await;
                drop(l);
            }
        })
        .await
        .unwrap();
    });
}

fn spawn_echo_server(l: Rc<TcpListener>) -> JoinHandle<()> {
    seastar_core::spawn_local(async move {
        while let Ok((conn, _)) = l.accept().await {
            seastar_core::spawn_local(common::echo(conn)).detach();
        }
    })
}
