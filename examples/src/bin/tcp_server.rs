//! Chapter 7: a TCP server (echo) on every shard, and a client.
use seastar_core::{Runtime, smp, spawn_local};
use seastar_net::{ListenOptions, TcpListener, TcpStream};

async fn serve(conn: TcpStream) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (n, b) = conn.read(buf).await;
        match n {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let (r, b) = conn.write_all(b[..n].to_vec()).await;
                if r.is_err() {
                    return;
                }
                buf = b;
            }
        }
    }
}

fn main() {
    Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            // Port 0: the kernel picks a free port. Each shard binds its own listener.
            let addrs = smp::invoke_on_all(|| async {
                let addr = "127.0.0.1:0".parse().unwrap();
                let listener = TcpListener::bind(addr, ListenOptions::default())
                    .await
                    .unwrap();
                let local = listener.local_addr().unwrap();
                spawn_local(async move {
                    while let Ok((conn, _peer)) = listener.accept().await {
                        spawn_local(serve(conn)).detach();
                    }
                })
                .detach();
                local
            })
            .await
            .unwrap();

            let conn = TcpStream::connect(addrs[0]).await.unwrap();
            let (r, _) = conn.write_all(b"ping".to_vec()).await;
            r.unwrap();
            let (n, buf) = conn.read(Vec::with_capacity(16)).await;
            println!("echoed: {}", String::from_utf8_lossy(&buf[..n.unwrap()]));
            // Leaving `run` stops every shard, and with them the listeners.
        });
}
