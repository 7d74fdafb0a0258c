//! collectd (feature `collectd`): push every shard's metrics to a collectd
//! server in its binary network protocol.
//!
//! A [`Client`] started on one shard wakes every [`Config::interval`],
//! gathers the metrics of every shard by message passing
//! ([`seastar_core::metrics::gather`]), encodes them ([`encode_snapshot`]:
//! plugin = the app's name, plugin instance = the shard, types from
//! collectd's stock types.db) into packets of at most 1452 bytes
//! ([`PacketWriter`]) and sends them over UDP to [`Config::address`].
//! Point it at a collectd with the network plugin listening:
//!
//! ```text
//! LoadPlugin network
//! <Plugin network>
//!   Listen "0.0.0.0" "25826"
//! </Plugin>
//! ```
//!
//! The encoder is pure (bytes in, bytes out; see `packet.rs` for the wire
//! format); the client owns the socket and the timer.

mod client;
mod convert;
mod packet;

pub use client::{Client, ClientStats, Config, ConfigError, hostname};
pub use convert::{PushInfo, encode_snapshot, fit};
pub use packet::{DataValue, Identifier, MAX_PACKET, MAX_STRING, PacketWriter, part, to_hr};
