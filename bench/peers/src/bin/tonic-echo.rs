//! The peer of `rpc server --grpc-port`: the `echo.Echo` gRPC service
//! (apps/rpc/proto/echo.proto) served by tonic's own transport on a tokio
//! current_thread runtime, what a user would otherwise pick.

use clap::Parser;
use tonic::{Request, Response, Status};

#[allow(clippy::all, missing_debug_implementations, dead_code)]
#[path = "../../../../apps/rpc/src/proto/echo.rs"]
mod echo;

use echo::Payload;
use echo::echo_server::{Echo, EchoServer};

/// gRPC echo server on tonic + tokio current_thread.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    listen: bench_peers::Listen,
}

#[derive(Debug, Default)]
struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    bench_peers::current_thread_runtime()?.block_on(async {
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(EchoServer::new(EchoService))
            .serve(args.listen.addr())
            .await
    })?;
    Ok(())
}
