//! Shared test helpers: a per-test directory and a one-shard runtime.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, removed on drop. Files
/// here use O_DIRECT where the file system allows it (ext4, xfs, tmpfs on
/// Linux >= 6.6) and the buffered fallback elsewhere; the tests pass on both.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let dir =
            std::env::temp_dir().join(format!("seastar-io-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn root(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` on a fresh single-shard runtime (backend from the environment).
pub fn run<F: std::future::Future + 'static>(f: F) -> F::Output
where
    F::Output: 'static,
{
    seastar_core::Runtime::builder()
        .shards(1)
        .pin(false)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(f)
}

/// `n` bytes of a position-dependent pattern starting at file offset `at`.
pub fn pattern(at: u64, n: usize) -> Vec<u8> {
    (at..at + n as u64)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// A small file system (tmpfs, ramfs) mounted for a test, unmounted on drop.
pub struct SmallFs(pub PathBuf);

impl SmallFs {
    /// Mounts a tmpfs of `size` (e.g. "256k"); `Err(reason)` where mounting
    /// is impossible (not root, no mount namespace permission).
    pub fn mount(name: &str, size: &str) -> Result<SmallFs, String> {
        Self::mount_fs(name, "tmpfs", &format!("size={size}"))
    }

    /// Mounts a file system of type `fstype` with `options`.
    pub fn mount_fs(name: &str, fstype: &str, options: &str) -> Result<SmallFs, String> {
        let dir = std::env::temp_dir().join(format!("seastar-io-fs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", fstype, "-o", options, fstype])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
