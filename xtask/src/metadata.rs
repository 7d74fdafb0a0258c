//! The parts of `cargo metadata --no-deps` that xtask reads.

use crate::cmd;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The workspace as cargo describes it.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    /// Workspace members.
    pub packages: Vec<Package>,
    /// The workspace's target directory (as seen without `CARGO_TARGET_DIR`).
    pub target_directory: PathBuf,
    /// The workspace root.
    pub workspace_root: PathBuf,
}

/// One workspace package.
#[derive(Debug, Deserialize)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Path of its Cargo.toml.
    pub manifest_path: PathBuf,
    /// `None` = publishable anywhere; `Some([])` = `publish = false`.
    pub publish: Option<Vec<String>>,
    /// Its build targets.
    pub targets: Vec<Target>,
    /// SPDX license expression.
    pub license: Option<String>,
    /// Path of a license file, an alternative to `license`.
    pub license_file: Option<String>,
    /// One-line description.
    pub description: Option<String>,
    /// Source repository URL.
    pub repository: Option<String>,
    /// README path, relative to the package directory.
    pub readme: Option<String>,
    /// crates.io keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// crates.io categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Declared dependencies.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
}

/// A build target of a package.
#[derive(Debug, Deserialize)]
pub struct Target {
    /// Target name (binary name for bins).
    pub name: String,
    /// Kinds such as `lib`, `bin`, `bench`.
    pub kind: Vec<String>,
}

/// A dependency declaration.
#[derive(Debug, Deserialize)]
pub struct Dependency {
    /// Dependency package name.
    pub name: String,
    /// Set for path dependencies.
    pub path: Option<PathBuf>,
    /// `None` for normal dependencies, else `dev` or `build`.
    pub kind: Option<String>,
}

impl Metadata {
    /// Runs `cargo metadata --no-deps --format-version 1` at the workspace root.
    pub fn load() -> Result<Self> {
        let json = cmd::output(&mut cmd::cargo([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
        ]))?;
        serde_json::from_str(&json).context("cannot parse `cargo metadata` output")
    }

    /// Packages whose manifest lies under `<root>/<dir>/`.
    pub fn packages_under<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a Package> {
        let base = self.workspace_root.join(dir);
        self.packages
            .iter()
            .filter(move |p| p.manifest_path.starts_with(&base))
    }

    /// The package with this name.
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// The release output directory, `target/release`.
    pub fn release_dir(&self) -> PathBuf {
        self.target_directory.join("release")
    }
}

impl Package {
    /// The package's directory.
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }

    /// Whether `publish` is not false.
    pub fn is_publishable(&self) -> bool {
        self.publish
            .as_ref()
            .is_none_or(|registries| !registries.is_empty())
    }

    /// Names of targets of the given kind (`bin`, `bench`, ...).
    pub fn targets_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a str> {
        self.targets
            .iter()
            .filter(move |t| t.kind.iter().any(|k| k == kind))
            .map(|t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_publish_and_targets() {
        let json = r#"{"packages":[{"name":"a","manifest_path":"/w/apps/a/Cargo.toml",
            "publish":[],"targets":[{"name":"a","kind":["bin"]},{"name":"b1","kind":["bench"]}],
            "license":null,"license_file":null,"description":null,"repository":null,"readme":null,
            "keywords":[],"categories":[],"dependencies":[]},
            {"name":"c","manifest_path":"/w/crates/c/Cargo.toml","publish":null,"targets":[],
            "license":"MIT","license_file":null,"description":"d","repository":"r","readme":"README.md",
            "keywords":["k"],"categories":["c"],"dependencies":[{"name":"a","path":"/w/apps/a","kind":null}]}],
            "target_directory":"/w/target","workspace_root":"/w"}"#;
        let m: Metadata = serde_json::from_str(json).unwrap();
        assert!(!m.package("a").unwrap().is_publishable());
        assert!(m.package("c").unwrap().is_publishable());
        assert_eq!(m.packages_under("apps").count(), 1);
        let a = m.package("a").unwrap();
        assert_eq!(a.targets_of("bench").collect::<Vec<_>>(), ["b1"]);
        assert_eq!(a.dir(), Path::new("/w/apps/a"));
    }
}
