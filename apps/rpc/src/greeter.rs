//! The gRPC services of `rpc server --grpc-port`.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tonic::{Request, Response, Status};

use crate::proto::echo::Payload;
use crate::proto::echo::echo_server::{Echo, EchoServer};
use crate::proto::helloworld::greeter_server::{Greeter, GreeterServer};
use crate::proto::helloworld::{HelloReply, HelloRequest};

/// `helloworld.Greeter` as `proto/helloworld.proto`'s header comment
/// specifies: `SayHello` answers `"Hello <name>!"` after `delay_ms`;
/// `SayHelloStreamReply` sends `max(num_greetings, 1)` replies, waiting
/// `delay_ms` before each.
#[derive(Debug, Default, Clone, Copy)]
pub struct GreeterService;

/// The delay a request asks for (negative counts as none).
fn delay(req: &HelloRequest) -> Option<Duration> {
    (req.delay_ms > 0).then(|| Duration::from_millis(req.delay_ms as u64))
}

fn greeting(name: &str) -> HelloReply {
    HelloReply {
        message: format!("Hello {name}!"),
    }
}

/// The stream type of `SayHelloStreamReply`.
pub type GreetingStream = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

#[tonic::async_trait]
impl Greeter for GreeterService {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        crate::verbs::count_hello_started();
        let req = request.into_inner();
        if let Some(d) = delay(&req) {
            seastar_core::timer::sleep(d).into_send().await;
        }
        Ok(Response::new(greeting(&req.name)))
    }

    type SayHelloStreamReplyStream = GreetingStream;

    async fn say_hello_stream_reply(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<GreetingStream>, Status> {
        let req = request.into_inner();
        let n = req.num_greetings.max(1);
        let d = delay(&req);
        let stream = futures::stream::unfold(0, move |i| {
            let name = req.name.clone();
            async move {
                if i >= n {
                    return None;
                }
                if let Some(d) = d {
                    seastar_core::timer::sleep(d).into_send().await;
                }
                Some((Ok(greeting(&name)), i + 1))
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// `echo.Echo`: the payload back.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Both services as tonic routes.
///
/// ```
/// let _routes = rpc::greeter::routes();
/// ```
pub fn routes() -> tonic::service::Routes {
    tonic::service::Routes::new(GreeterServer::new(GreeterService))
        .add_service(EchoServer::new(EchoService))
}
