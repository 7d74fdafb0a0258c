//! `rpc server`: the native verbs on `--port` and the gRPC services on
//! `--grpc-port`, on every shard (one `SO_REUSEPORT` listener per shard per
//! protocol). SIGINT/SIGTERM stops accepting, lets calls in flight answer,
//! and exits 0.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};

use seastar_core::runtime::RuntimeArgs;
use seastar_core::{shard_count, smp};
use seastar_net::ListenOptions;
use seastar_rpc::grpc::GrpcServer;
use seastar_rpc::{RpcServer, ServerOptions};

/// Options of `rpc server`.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Port of the native protocol (0: any free port).
    #[arg(long, default_value_t = 10002)]
    pub port: u16,
    /// Port of gRPC (0: any free port).
    #[arg(long, default_value_t = 50051)]
    pub grpc_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// Runtime options.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

thread_local! {
    static SERVERS: RefCell<Option<(RpcServer, GrpcServer)>> = const { RefCell::new(None) };
}

/// Binds both protocols on this shard (`ports` of 0 pick a port; shards
/// after the first reuse shard 0's).
async fn bind(
    address: IpAddr,
    native: u16,
    grpc: u16,
) -> std::io::Result<(SocketAddr, SocketAddr)> {
    let rpc = RpcServer::new(ServerOptions::default());
    crate::verbs::register(&rpc);
    let grpc_server = GrpcServer::new(crate::greeter::routes());
    let a = rpc
        .listen(SocketAddr::new(address, native), ListenOptions::default())
        .await?;
    let b = grpc_server
        .listen(SocketAddr::new(address, grpc), ListenOptions::default())
        .await?;
    SERVERS.with(|s| *s.borrow_mut() = Some((rpc, grpc_server)));
    Ok((a, b))
}

async fn stop_local() {
    let servers = SERVERS.with(|s| s.borrow_mut().take());
    if let Some((rpc, grpc)) = servers {
        futures::join!(rpc.stop(), grpc.stop());
    }
}

/// Runs the server until a stop signal; the error says what failed.
pub fn run(args: ServerArgs) -> Result<(), String> {
    let runtime = args
        .runtime
        .builder()
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    let address = args.address;
    let (port, grpc_port) = (args.port, args.grpc_port);
    runtime.run(async move {
        let (native, grpc) = bind(address, port, grpc_port)
            .await
            .map_err(|e| format!("cannot listen: {e}"))?;
        let (np, gp) = (native.port(), grpc.port());
        let others =
            smp::invoke_on_others(move || async move { bind(address, np, gp).await.map(|_| ()) })
                .await
                .map_err(|e| e.to_string())?;
        if let Some(Err(e)) = others.into_iter().find(Result::is_err) {
            let _ = smp::invoke_on_all(stop_local).await;
            return Err(format!("cannot listen on every shard: {e}"));
        }
        println!(
            "rpc: native on {native}, grpc on {grpc}, {} shards, backend {}",
            shard_count(),
            seastar_core::runtime::backend()
        );
        seastar_core::stop_signal().await;
        smp::invoke_on_all(stop_local)
            .await
            .map_err(|e| e.to_string())?;
        println!("rpc: stopped cleanly");
        Ok(())
    })
}
