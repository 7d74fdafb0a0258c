//! Bringing the stack up and down on every shard.

use std::error::Error;
use std::sync::Arc;

use super::config::NativeConfig;
use super::device::Device;
use super::ethernet::Mac;
use super::iface::{Iface, IfaceAddrs};
use super::stack;
use super::state::StackOptions;

/// Why the stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Opening a queue of the device failed.
    #[error("native stack: opening queue {queue}: {source}")]
    Open {
        /// The queue (and shard).
        queue: usize,
        /// Why.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    /// A shard stopped or panicked during the start.
    #[error("native stack: shard {0} did not start")]
    Shard(usize),
}

/// Opens the configured device on shards `0..queues` (one queue each,
/// with [`device::open`](super::device::open)) and starts the stack on
/// every shard. Call it on any shard of a running runtime.
pub async fn start(config: &NativeConfig) -> Result<(), StartError> {
    let spec = config.device.clone();
    start_with(config.iface, config.queues, config.options, move |queue| {
        super::device::open(&spec, queue as u32).map_err(|e| e.into())
    })
    .await
}

/// [`start`] with devices from `open(queue)`, called on shard `queue`
/// for queues `0..queues` (`None`: every shard); tests pass in-memory
/// devices this way.
pub async fn start_with<F>(
    addrs: IfaceAddrs,
    queues: Option<usize>,
    options: StackOptions,
    open: F,
) -> Result<(), StartError>
where
    F: Fn(usize) -> Result<Box<dyn Device>, Box<dyn Error + Send + Sync>> + Send + Sync + 'static,
{
    let shards = seastar_core::shard_count();
    let queues = queues.unwrap_or(shards).clamp(1, shards);
    let open = Arc::new(open);
    let iface = move |mac: [u8; 6]| Iface {
        addr: addrs.addr,
        netmask: addrs.netmask,
        gateway: addrs.gateway,
        mac: Mac(mac),
    };
    let mut mac = [0u8; 6];
    for queue in 0..queues {
        let open = open.clone();
        let r = seastar_core::smp::submit_to(queue, move || async move {
            let dev = open(queue)?;
            let mac = dev.mac();
            stack::install(iface(mac), options, Some(dev), queue);
            Ok::<_, Box<dyn Error + Send + Sync>>(mac)
        })
        .await;
        match r {
            Ok(Ok(m)) => mac = if queue == 0 { m } else { mac },
            Ok(Err(source)) => {
                stop().await;
                return Err(StartError::Open { queue, source });
            }
            Err(_) => return Err(StartError::Shard(queue)),
        }
    }
    for shard in queues..shards {
        seastar_core::smp::submit_to(shard, move || async move {
            stack::install(iface(mac), options, None, shard % queues);
        })
        .await
        .map_err(|_| StartError::Shard(shard))?;
    }
    Ok(())
}

/// Stops the stack on every shard (pollers removed; devices closed once
/// their last socket is dropped).
pub async fn stop() {
    let _ = seastar_core::smp::invoke_on_all(|| async { stack::uninstall() }).await;
}
