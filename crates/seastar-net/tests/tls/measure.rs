//! A measurement, ignored by default.

use crate::support::*;

/// A measurement, not a check (run it with `--release --ignored
/// --nocapture`): full and resumed handshakes per second and one-way
/// throughput, client and server on one shard (so both ends' CPU counts).
#[test]
#[ignore]
fn measure_handshakes_and_throughput() {
    const HANDSHAKES: usize = 300;
    const BULK: usize = 256 << 20;
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let full = TlsConnector::new(pki.client().resumption(false).build().unwrap());
    let resuming = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                spawn_local(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = Vec::with_capacity(64 * 1024);
                        loop {
                            let (n, b) = tls.read(buf).await;
                            if !matches!(n, Ok(1..)) {
                                let _ = tls.shutdown().await;
                                break;
                            }
                            buf = b;
                        }
                    }
                })
                .detach();
            }
        });
        for (what, connector) in [("full", &full), ("resumed", &resuming)] {
            let t0 = std::time::Instant::now();
            for _ in 0..HANDSHAKES {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let mut tls = connector.connect("localhost", tcp).await.unwrap();
                tls.shutdown().await.unwrap();
                let _ = tls.read(Vec::with_capacity(64)).await;
            }
            let rate = HANDSHAKES as f64 / t0.elapsed().as_secs_f64();
            eprintln!("{what} TLS 1.3 handshakes (both ends, one core): {rate:.0}/s");
        }
        let data = bytes::Bytes::from(pattern(1 << 20));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = full.connect("localhost", tcp).await.unwrap();
        let t0 = std::time::Instant::now();
        for _ in 0..BULK >> 20 {
            tls.write_all(data.clone()).await.0.unwrap();
        }
        tls.shutdown().await.unwrap();
        let _ = tls.read(Vec::with_capacity(64)).await;
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "256 MiB one way (encrypt + decrypt on one core): {:.0} MiB/s",
            256.0 / secs
        );
        server.abort();
    });
}
