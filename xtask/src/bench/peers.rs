//! Peers and load generators: Debian packages on demand, crate peers from the
//! bench-only workspace member `bench/peers`.

use crate::cmd;
use crate::metadata::Metadata;
use anyhow::Result;
use std::path::PathBuf;

/// The package holding tokio-based peer servers and our load clients.
pub const PEERS_PACKAGE: &str = "bench-peers";

/// The package holding the TLS peers (rustls-based; built only by the
/// suites that need them).
pub const TLS_PEERS_PACKAGE: &str = "bench-tls-peers";

/// Builds `bench-peers` in release; returns the directory holding its binaries.
pub fn build(meta: &Metadata) -> Result<PathBuf> {
    cmd::run(&mut cmd::cargo(["build", "--release", "-p", PEERS_PACKAGE]))?;
    Ok(meta.release_dir())
}

/// `taskset`, used to pin servers, loads and criterion benches.
pub fn ensure_taskset() -> Result<()> {
    cmd::ensure_tool("taskset", "util-linux").map(|_| ())
}
