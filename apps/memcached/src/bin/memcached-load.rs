//! `memcached-load`: a pipelining memcached load generator, for the
//! `memcached` bench suite (memaslap cannot pipeline).
//!
//! One thread drives `--connections` blocking connections in rounds: each
//! round writes `--depth` requests (90% `get`, 10% `set` of a 100-byte
//! value, keys drawn from `--keys`) to every connection with one write
//! each, then reads every connection's replies. Before the clock starts,
//! every key is set once. Prints one JSON line: operations, ops/s, and the
//! p50/p99 of a batch's round trip (write to last reply) in µs.
//!
//! ```text
//! memcached-load --addr 127.0.0.1:11211 --connections 50 --depth 16 --duration 10
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "pipelining memcached load generator (text protocol)")]
struct Args {
    /// Server address.
    #[arg(long)]
    addr: SocketAddr,
    /// Connections.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Requests per write on each connection.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Share of sets, in percent.
    #[arg(long, default_value_t = 10)]
    set_percent: u64,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

/// xorshift64*: deterministic, fast, good enough for key choice.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Counts complete replies (`END` or `STORED` lines) in a byte stream.
#[derive(Default)]
struct Replies {
    buf: Vec<u8>,
}

impl Replies {
    /// Appends `data`; returns how many replies it completed.
    fn feed(&mut self, data: &[u8]) -> usize {
        self.buf.extend_from_slice(data);
        let mut done = 0;
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &self.buf[start..]) {
            let line = &self.buf[start..start + i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match line {
                b"END" | b"STORED" => done += 1,
                l if l.starts_with(b"SERVER_ERROR") || l.starts_with(b"CLIENT_ERROR") => {
                    panic!("server error: {}", String::from_utf8_lossy(l))
                }
                _ => {}
            }
            start += i + 1;
        }
        self.buf.drain(..start);
        done
    }
}

fn main() {
    let args = Args::parse();
    let value = vec![b'x'; args.value_size];
    let mut conns: Vec<TcpStream> = (0..args.connections)
        .map(|_| {
            let s = TcpStream::connect(args.addr).expect("connect");
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s
        })
        .collect();
    let mut chunk = vec![0u8; 256 * 1024];
    // Preload every key, 100 per write.
    let mut parser = Replies::default();
    let keys: Vec<u64> = (0..args.keys).collect();
    for batch in keys.chunks(100) {
        let mut req = Vec::new();
        for k in batch {
            set(&mut req, *k, &value);
        }
        conns[0].write_all(&req).unwrap();
        let mut got = 0;
        while got < batch.len() {
            let n = conns[0].read(&mut chunk).unwrap();
            assert!(n > 0, "server closed");
            got += parser.feed(&chunk[..n]);
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsers: Vec<Replies> = conns.iter().map(|_| Replies::default()).collect();
    let mut lat_us: Vec<u32> = Vec::new();
    let mut ops: u64 = 0;
    let mut req = Vec::new();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.duration);
    while Instant::now() < end {
        let sent = Instant::now();
        for c in &mut conns {
            req.clear();
            for _ in 0..args.depth {
                let r = rng.next();
                let key = (r >> 8) % args.keys;
                if r % 100 < args.set_percent {
                    set(&mut req, key, &value);
                } else {
                    req.extend_from_slice(format!("get key:{key}\r\n").as_bytes());
                }
            }
            c.write_all(&req).unwrap();
        }
        for (c, p) in conns.iter_mut().zip(&mut parsers) {
            let mut got = 0;
            while got < args.depth {
                let n = c.read(&mut chunk).unwrap();
                assert!(n > 0, "server closed");
                got += p.feed(&chunk[..n]);
            }
            lat_us.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        }
        ops += (args.depth * args.connections) as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    lat_us.sort_unstable();
    let pct = |q: f64| {
        lat_us
            .get(((lat_us.len() as f64 * q) as usize).min(lat_us.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"connections\":{},\"depth\":{},\"duration_s\":{secs:.3},\"ops\":{ops},\"ops_per_sec\":{:.1},\"p50_us\":{},\"p99_us\":{}}}",
        args.connections,
        args.depth,
        ops as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}

fn set(req: &mut Vec<u8>, key: u64, value: &[u8]) {
    req.extend_from_slice(format!("set key:{key} 0 0 {}\r\n", value.len()).as_bytes());
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    seastar_core::help_test!(super::Args);
}
