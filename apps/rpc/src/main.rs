//! `rpc`: a native RPC and gRPC demo server, and its load client.
//!
//! ```text
//! cargo xtask run rpc -- server --port 10002 --grpc-port 50051 --smp 2
//! rpc bench --addr 127.0.0.1:10002 --protocol native --in-flight 128 --duration 5
//! grpcurl -plaintext -import-path apps/rpc/proto -proto helloworld.proto \
//!     -d '{"name":"you","num_greetings":3}' 127.0.0.1:50051 helloworld.Greeter/SayHelloStreamReply
//! ```

use clap::{Parser, Subcommand};
use rpc::bench::BenchArgs;
use rpc::server::ServerArgs;

#[derive(Parser, Debug)]
#[command(about = "Native RPC and gRPC demo on seastar-rs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the native verbs and the gRPC Greeter and Echo services.
    Server(ServerArgs),
    /// Load a server with echo calls and report calls/s and latency.
    Bench(BenchArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Plain text (no colour codes) into a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Server(args) => rpc::server::run(args),
        Command::Bench(args) => {
            let json = args.json;
            rpc::bench::run(args).map(|r| {
                if json {
                    println!("{}", r.json());
                } else {
                    println!(
                        "{:?}: {} calls in {:.2} s = {:.0} calls/s, p50 {:.1} µs, p99 {:.1} µs, {} errors",
                        r.protocol,
                        r.calls,
                        r.secs,
                        r.calls_per_sec(),
                        r.p50_us,
                        r.p99_us,
                        r.errors
                    );
                }
            })
        }
    };
    if let Err(e) = result {
        eprintln!("rpc: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    seastar_core::help_test!(super::Cli);
}
