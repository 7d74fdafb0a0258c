//! `cargo xtask apps` and `cargo xtask run <app>`: release builds of the apps under apps/.

use crate::cmd;
use crate::metadata::{Metadata, Package};
use anyhow::{Context, Result, bail};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// An app: a binary target of a package under apps/.
#[derive(Debug, Clone)]
pub struct App {
    /// Package name.
    pub package: String,
    /// Binary target name.
    pub bin: String,
}

/// Every binary of every package under apps/.
pub fn discover(meta: &Metadata) -> Vec<App> {
    meta.packages_under("apps")
        .flat_map(|p: &Package| {
            p.targets_of("bin").map(|bin| App {
                package: p.name.clone(),
                bin: bin.to_string(),
            })
        })
        .collect()
}

/// Finds an app by binary or package name; the error lists the available apps.
pub fn find(meta: &Metadata, name: &str) -> Result<App> {
    let apps = discover(meta);
    apps.iter()
        .find(|a| a.bin == name)
        .or_else(|| apps.iter().find(|a| a.package == name))
        .cloned()
        .with_context(|| {
            let list: Vec<_> = apps.iter().map(|a| a.bin.as_str()).collect();
            if list.is_empty() {
                format!("no app `{name}`: there are no apps under apps/ yet")
            } else {
                format!("no app `{name}`; available apps: {}", list.join(", "))
            }
        })
}

/// Builds one app in release and returns the path of its binary.
pub fn build(meta: &Metadata, app: &App) -> Result<PathBuf> {
    cmd::run(&mut cmd::cargo([
        "build",
        "--release",
        "-p",
        &app.package,
        "--bin",
        &app.bin,
    ]))?;
    Ok(meta.release_dir().join(&app.bin))
}

/// Builds every app and copies the binaries to `target/apps/`; returns their paths.
pub fn build_all() -> Result<Vec<PathBuf>> {
    let meta = Metadata::load()?;
    let apps = discover(&meta);
    if apps.is_empty() {
        eprintln!("xtask: no binary packages under apps/; nothing to build");
        return Ok(vec![]);
    }
    let mut packages: Vec<&str> = apps.iter().map(|a| a.package.as_str()).collect();
    packages.dedup();
    for package in packages {
        cmd::run(&mut cmd::cargo(["build", "--release", "-p", package]))?;
    }
    let dest = meta.target_directory.join("apps");
    std::fs::create_dir_all(&dest)?;
    let mut out = Vec::new();
    for app in &apps {
        let from = meta.release_dir().join(&app.bin);
        let to = dest.join(&app.bin);
        // Remove first: copying over a running executable fails with ETXTBSY.
        let _ = std::fs::remove_file(&to);
        std::fs::copy(&from, &to)
            .with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
        println!("{}", to.display());
        out.push(to);
    }
    Ok(out)
}

/// Builds an app and replaces this process with it (same pid, same process group),
/// so signals reach it directly and its exit code is ours.
pub fn run(name: &str, args: &[String]) -> Result<()> {
    let meta = Metadata::load()?;
    let app = find(&meta, name)?;
    let bin = build(&meta, &app)?;
    let err = Command::new(&bin).args(args).exec();
    bail!("cannot exec {}: {err}", bin.display())
}
