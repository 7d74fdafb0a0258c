//! UDP on the native stack (`--network-stack native`): every shard binds
//! the `-U` port on seastar-net's user-space stack, which runs on an
//! AF_XDP (`--xdp-device`) or TAP (`--tap-device`) device with its own
//! address (`--host-ipv4-addr`). The UDP loop is the kernel path's
//! (`udp::serve_udp`), on the native socket.
//!
//! TCP on the native stack comes with the stack's TCP (part 2 of the
//! native stack): until then `-p 0` is required (it turns TCP off, as in
//! stock memcached) and any other `-p` is refused with
//! [`CliError::NativeTcp`](crate::cli::CliError::NativeTcp).

use std::net::{Ipv4Addr, SocketAddr};

use seastar_core::smp::Sharded;
use seastar_net::native::config::NativeConfig;

use super::shard::ShardState;
use super::udp::Socket;
use super::{Bound, Config, Report, ServeError};

/// The native stack's configuration, comparable (for [`Config`]'s `Eq`).
#[derive(Clone, Debug)]
pub struct NativeNet(pub NativeConfig);

impl PartialEq for NativeNet {
    fn eq(&self, o: &Self) -> bool {
        let (a, b) = (&self.0, &o.0);
        a.device == b.device && a.iface == b.iface && a.queues == b.queues && a.options == b.options
    }
}

impl Eq for NativeNet {}

/// Starts the native stack, binds the UDP port on every shard, serves
/// until stopped, then stops the stack.
pub(crate) async fn run(
    service: &Sharded<ShardState>,
    config: &Config,
    net: &NativeNet,
    on_ready: impl FnOnce(&Bound),
) -> Result<Report, ServeError> {
    let port = config.udp.map_or(0, |a| a.port());
    if port == 0 {
        return Err(ServeError::Native(
            "UDP needs a port (-U PORT): ephemeral ports differ between shards".into(),
        ));
    }
    seastar_net::native::start(&net.0)
        .await
        .map_err(|e| ServeError::Native(e.to_string()))?;
    let addr = SocketAddr::from((net.0.iface.addr, port));
    let bound = service
        .invoke_on_all(move |st| async move {
            let s = seastar_net::native::UdpSocket::bind(addr)?;
            *st.udp.borrow_mut() = Some(Socket::Native(s));
            Ok::<_, std::io::Error>(())
        })
        .await;
    let bound = match bound {
        Ok(v) => v.into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| {
            ServeError::Native(format!(
                "binding UDP port {port} on {}: {e}",
                net.0.iface.addr
            ))
        }),
        Err(e) => Err(ServeError::Shard(e)),
    };
    let result = match bound {
        Ok(_) => {
            let tcp_off = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
            super::serve_bound(service, config, tcp_off, None, Some(addr), on_ready).await
        }
        Err(e) => Err(e),
    };
    // Sockets left unserved (a failed bind) go before the stack does.
    let _ = service
        .invoke_on_all(|st| async move { drop(st.udp.borrow_mut().take()) })
        .await;
    seastar_net::native::stop().await;
    result
}
