//! `rpc server --tls-cert --tls-key [--tls-client-ca]` as a user runs it (a
//! child process on the backend named by `SEASTAR_REACTOR_BACKEND`), with
//! certificates made at test time: a stock tonic client with its own TLS
//! (rustls) calls the Greeter, `rpc bench` calls both protocols over TLS,
//! mutual TLS accepts a good client certificate and refuses a missing or
//! rogue one, garbage and truncated records on both TLS ports leave the
//! server serving, and SIGTERM still stops it cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use rpc::proto::helloworld::HelloRequest;
use rpc::proto::helloworld::greeter_client::GreeterClient;
use tonic::transport::{Certificate as TonicCert, ClientTlsConfig, Endpoint, Identity};

/// A CA and what it signs.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A certificate for `name` and its key, PEM.
    fn leaf(&self, name: &str) -> (String, String) {
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The PEM files of one test, in a directory removed at the end.
struct Files {
    dir: PathBuf,
    server_ca: Ca,
    client_ca: Ca,
}

impl Files {
    fn new(tag: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("rpc-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = Files {
            dir,
            server_ca: Ca::new("server CA"),
            client_ca: Ca::new("client CA"),
        };
        let (cert, key) = files.server_ca.leaf("localhost");
        files.write("server.pem", &cert);
        files.write("server.key", &key);
        files.write("ca.pem", &files.server_ca.cert.pem());
        files.write("client-ca.pem", &files.client_ca.cert.pem());
        let (cert, key) = files.client_ca.leaf("client");
        files.write("client.pem", &cert);
        files.write("client.key", &key);
        files
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server process, killed if a test fails before stopping it.
struct Server {
    child: Option<Child>,
    native: SocketAddr,
    grpc: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(files: &Files, mtls: bool) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rpc"));
    cmd.args(["server", "--port", "0", "--grpc-port", "0", "--smp", "1"])
        .args(["--shutdown-timeout", "2", "--first-bytes-timeout", "5"])
        .args(["--tls-cert", &files.path("server.pem")])
        .args(["--tls-key", &files.path("server.key")]);
    if mtls {
        cmd.args(["--tls-client-ca", &files.path("client-ca.pem")]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // "rpc: native on A, grpc on B, N shards, backend X, tls"
    assert!(line.trim_end().ends_with(", tls"), "{line:?}");
    let addr = |tag: &str| -> SocketAddr {
        let rest = line.split(tag).nth(1).unwrap_or_else(|| panic!("{line:?}"));
        rest.split(',').next().unwrap().trim().parse().unwrap()
    };
    let (native, grpc) = (addr("native on "), addr("grpc on "));
    child.stdout = Some(out.into_inner());
    Server {
        child: Some(child),
        native,
        grpc,
    }
}

impl Server {
    /// SIGTERM; the exit status, the time it took and what it printed.
    fn stop(mut self) -> (std::process::ExitStatus, Duration, String) {
        let mut child = self.child.take().unwrap();
        let t = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = child.wait().unwrap();
        (status, t.elapsed(), out)
    }
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// tonic's own TLS client (rustls on ring): trusting our CA, presenting
/// `identity` (PEM certificate and key) if given.
async fn greeter(
    files: &Files,
    addr: SocketAddr,
    identity: Option<(String, String)>,
) -> Result<GreeterClient<tonic::transport::Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(TonicCert::from_pem(files.read("ca.pem")))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(GreeterClient::new(channel))
}

async fn say_hello(
    c: &mut GreeterClient<tonic::transport::Channel>,
    name: &str,
) -> Result<String, tonic::Status> {
    let r = c
        .say_hello(HelloRequest {
            name: name.into(),
            num_greetings: 0,
            delay_ms: 0,
        })
        .await?;
    Ok(r.into_inner().message)
}

/// `rpc bench` over TLS with `extra` arguments; its output.
fn bench(files: &Files, addr: SocketAddr, protocol: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["bench", "--addr", &addr.to_string(), "--protocol", protocol])
        .args(["--in-flight", "4", "--duration", "0.3", "--json"])
        .args(["--tls-ca", &files.path("ca.pem")])
        .args(extra)
        .output()
        .unwrap()
}

fn bench_ok(files: &Files, addr: SocketAddr, protocol: &str, extra: &[&str]) -> String {
    let out = bench(files, addr, protocol, extra);
    assert!(out.status.success(), "{out:?}");
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(json.contains("\"errors\":0"), "{json}");
    assert!(!json.contains("\"calls\":0,"), "{json}");
    json
}

#[test]
fn tonic_with_tls_and_rpc_bench_call_the_tls_server() {
    let files = Files::new("plain");
    let server = start(&files, false);
    let rt = tokio();
    rt.block_on(async {
        let mut c = greeter(&files, server.grpc, None).await.unwrap();
        assert_eq!(say_hello(&mut c, "tls").await.unwrap(), "Hello tls!");
        // The native port is not gRPC: tonic's h2 over TLS fails there.
        let mut wrong = greeter(&files, server.native, None).await;
        if let Ok(c) = wrong.as_mut() {
            assert!(say_hello(c, "x").await.is_err());
        }
    });
    drop(rt);
    let native = bench_ok(&files, server.native, "native", &[]);
    assert!(native.contains("\"protocol\":\"Native\""), "{native}");
    let grpc = bench_ok(&files, server.grpc, "grpc", &[]);
    assert!(grpc.contains("\"protocol\":\"Grpc\""), "{grpc}");
    // Auto falls back to gRPC over TLS too.
    let auto = bench_ok(&files, server.grpc, "auto", &[]);
    assert!(auto.contains("\"protocol\":\"Grpc\""), "{auto}");
    // A client that does not trust the server's CA fails.
    let stranger = Ca::new("stranger");
    files.write("stranger.pem", &stranger.cert.pem());
    let out = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args([
            "bench",
            "--addr",
            &server.native.to_string(),
            "--protocol",
            "native",
        ])
        .args(["--duration", "0.1", "--tls-ca", &files.path("stranger.pem")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UnknownIssuer"), "{err}");
    let (status, took, out) = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(out.contains("rpc: stopped cleanly"), "{out}");
}

#[test]
fn mutual_tls_accepts_a_good_client_certificate_and_refuses_others() {
    let files = Files::new("mtls");
    let server = start(&files, true);
    let good = (files.read("client.pem"), files.read("client.key"));
    let rogue = Ca::new("rogue CA").leaf("client");
    let rt = tokio();
    rt.block_on(async {
        let mut c = greeter(&files, server.grpc, Some(good.clone()))
            .await
            .unwrap();
        assert_eq!(say_hello(&mut c, "mtls").await.unwrap(), "Hello mtls!");
        for identity in [None, Some(rogue.clone())] {
            let rogue_id = identity.is_some();
            // TLS 1.3: the refusal may come at connect or at the first call.
            match greeter(&files, server.grpc, identity).await {
                Err(_) => {}
                Ok(mut c) => {
                    let e = say_hello(&mut c, "nope").await.unwrap_err();
                    assert_ne!(e.code(), tonic::Code::Ok, "rogue={rogue_id}");
                }
            }
        }
        // The good client is still served.
        assert_eq!(say_hello(&mut c, "again").await.unwrap(), "Hello again!");
    });
    drop(rt);
    // Native: with the client certificate it works, without it fails.
    let cert = files.path("client.pem");
    let key = files.path("client.key");
    let with = [
        "--tls-client-cert",
        cert.as_str(),
        "--tls-client-key",
        key.as_str(),
    ];
    bench_ok(&files, server.native, "native", &with);
    let out = bench(&files, server.native, "native", &[]);
    assert!(!out.status.success(), "{out:?}");
    let (status, _, _) = server.stop();
    assert!(status.success(), "{status:?}");
}

/// Writes `bytes` to `addr` (plain TCP), optionally half-closes, and reads
/// until the server closes (bounded): what came back.
fn raw(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn garbage_and_truncated_records_on_the_tls_ports_leave_the_server_serving() {
    let files = Files::new("hostile");
    let server = start(&files, false);
    for addr in [server.native, server.grpc] {
        // Not TLS: an alert (content type 21), then the close.
        let got = raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false);
        assert_eq!(got.first(), Some(&21), "{addr}: {got:?}");
        // HTTP/2's preface in clear (a plaintext gRPC client): the same.
        let got = raw(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false);
        assert_eq!(got.first(), Some(&21), "{addr}: {got:?}");
        // A record announcing 512 bytes, 5 sent, then the client's end.
        let got = raw(addr, &[22, 3, 1, 2, 0, 1, 0, 1, 252, 3], true);
        assert!(got.is_empty() || got[0] == 21, "{addr}: {got:?}");
        // Random bytes.
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let got = raw(addr, &noise, false);
        assert!(got.is_empty() || got[0] == 21, "{addr}: {got:?}");
    }
    // Still serving both ports.
    bench_ok(&files, server.native, "native", &[]);
    let rt = tokio();
    rt.block_on(async {
        let mut c = greeter(&files, server.grpc, None).await.unwrap();
        assert_eq!(say_hello(&mut c, "after").await.unwrap(), "Hello after!");
    });
    drop(rt);
    let (status, took, _) = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn tls_options_are_checked() {
    let files = Files::new("args");
    // A certificate without its key: clap refuses.
    let out = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["server", "--port", "0", "--grpc-port", "0", "--smp", "1"])
        .args(["--tls-cert", &files.path("server.pem")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A key that is not one: the file is named.
    let out = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["server", "--port", "0", "--grpc-port", "0", "--smp", "1"])
        .args(["--tls-cert", &files.path("server.pem")])
        .args(["--tls-key", &files.path("ca.pem")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.pem"), "{err}");
}
