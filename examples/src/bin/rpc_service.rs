//! Chapter 10: an RPC service.
use seastar_rpc::{RpcClient, RpcServer, ServerOptions};

const ADD: u32 = 1;

fn main() {
    seastar_core::block_on(async {
        let server = RpcServer::new(ServerOptions::default());
        server.register(ADD, |(a, b): (i64, i64)| async move {
            a.checked_add(b).ok_or_else(|| "overflow".to_string())
        });
        let addr = server
            .listen("127.0.0.1:0".parse().unwrap(), Default::default())
            .await
            .unwrap();

        let client = RpcClient::connect(addr).await.unwrap();
        let sum: i64 = client
            .call::<_, _, String>(ADD, &(40i64, 2i64))
            .await
            .unwrap();
        println!("40 + 2 = {sum}");
        let err = client
            .call::<_, i64, String>(ADD, &(i64::MAX, 1i64))
            .await
            .unwrap_err();
        println!("MAX + 1: {err}");
        drop(client);
        server.stop().await;
    });
}
