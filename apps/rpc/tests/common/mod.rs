//! What the tests that drive the `rpc` binary share: a spawned
//! `rpc server`, a negotiated blocking native client, and one call.
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use seastar_rpc::frame::{
    DEFAULT_MAX_FRAME, Features, HEADER_LEN, Header, Kind, Negotiation, Status,
};

/// A spawned `rpc server`, killed when dropped.
pub struct Server {
    pub child: Child,
    /// The native protocol's address.
    pub native: SocketAddr,
    /// The admin API's address, with `--admin-port`.
    pub admin: Option<SocketAddr>,
    /// The lines the server prints after its listening line.
    pub out: Receiver<String>,
}

impl Server {
    /// `rpc server --port 0 --grpc-port 0 --shutdown-timeout 2` with
    /// `args` after them, once its native port listens.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rpc"))
            .args(["server", "--port", "0", "--grpc-port", "0"])
            .args(["--shutdown-timeout", "2"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rpc");
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut admin = None;
        let native = loop {
            let line = out.next().expect("a listening line").unwrap();
            if let Some(rest) = line.strip_prefix("rpc: admin API and dashboard at http://") {
                admin = Some(rest.trim_end_matches('/').parse().unwrap());
            } else if let Some(rest) = line.split("native on ").nth(1) {
                break rest.split(',').next().unwrap().trim().parse().unwrap();
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Server {
            child,
            native,
            admin,
            out: rx,
        }
    }

    /// `VmRSS` of the server, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A negotiated blocking native client (timeouts and cancellation).
pub fn native_client(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    let ours = Negotiation {
        features: Features::TIMEOUTS | Features::CANCELLATION,
        max_frame: DEFAULT_MAX_FRAME,
    };
    s.write_all(&ours.encode()).unwrap();
    let mut b = [0u8; 16];
    s.read_exact(&mut b).unwrap();
    Negotiation::decode(&b).unwrap();
    s
}

/// One call of `verb` with `arg` (already serialized); the answer's
/// status and payload.
pub fn call(s: &mut TcpStream, verb: u32, id: u64, arg: &[u8]) -> (Status, Vec<u8>) {
    let mut req = Vec::new();
    Header::request(verb, id, arg.len() as u32, None).encode(&mut req);
    req.extend_from_slice(arg);
    s.write_all(&req).unwrap();
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).unwrap();
    let h = Header::decode(&h, u32::MAX).unwrap();
    let mut body = vec![0; h.len as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!((h.kind, h.id), (Kind::Response, id));
    (Status::from_u16(h.status), body)
}
