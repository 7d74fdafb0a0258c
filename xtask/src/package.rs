//! `cargo xtask package`: publish readiness of every publishable crate.

use crate::cmd;
use crate::metadata::{Metadata, Package};
use anyhow::{Result, bail};

/// What crates.io needs (or we want) that the package lacks.
pub fn missing_metadata(p: &Package) -> Vec<String> {
    let mut missing = Vec::new();
    let empty = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
    if empty(&p.license) && empty(&p.license_file) {
        missing.push("license".to_string());
    }
    for (field, value) in [
        ("description", &p.description),
        ("repository", &p.repository),
        ("readme", &p.readme),
    ] {
        if empty(value) {
            missing.push(field.to_string());
        }
    }
    if let Some(readme) = p.readme.as_deref().filter(|r| !r.trim().is_empty()) {
        if !p.dir().join(readme).is_file() {
            missing.push(format!("readme file {readme} (not found)"));
        }
    }
    if p.keywords.is_empty() {
        missing.push("keywords".to_string());
    }
    if p.categories.is_empty() {
        missing.push("categories".to_string());
    }
    missing
}

/// Path dependencies on workspace siblings (these are not on crates.io yet).
fn sibling_deps<'a>(meta: &'a Metadata, p: &'a Package) -> Vec<&'a str> {
    p.dependencies
        .iter()
        .filter(|d| d.path.is_some() && d.kind.as_deref() != Some("dev"))
        .filter(|d| meta.package(&d.name).is_some())
        .map(|d| d.name.as_str())
        .collect()
}

/// Checks metadata, packages, and documents every publishable package.
pub fn run() -> Result<()> {
    let meta = Metadata::load()?;
    let pkgs: Vec<&Package> = meta
        .packages
        .iter()
        .filter(|p| p.is_publishable())
        .collect();
    if pkgs.is_empty() {
        bail!("no publishable packages in the workspace");
    }
    let mut problems = Vec::new();
    for p in &pkgs {
        let missing = missing_metadata(p);
        if missing.is_empty() {
            println!("{}: metadata complete", p.name);
        } else {
            problems.push(format!("{}: missing {}", p.name, missing.join(", ")));
        }
        let siblings = sibling_deps(&meta, p);
        if !siblings.is_empty() {
            println!(
                "{}: depends on unpublished sibling(s) {}; it cannot be verified (built from \
                 its .crate) before they are on crates.io, so it is packaged with --no-verify",
                p.name,
                siblings.join(", ")
            );
        }
        let list = cmd::output(&mut cmd::cargo([
            "package",
            "--list",
            "--allow-dirty",
            "-p",
            &p.name,
        ]))?;
        println!("{}: {} files in the package:", p.name, list.lines().count());
        for file in list.lines() {
            println!("    {file}");
        }
    }
    // One invocation for all of them, so siblings resolve against each other.
    let mut package = cmd::cargo(["package", "--allow-dirty", "--no-verify"]);
    for p in &pkgs {
        package.args(["-p", &p.name]);
    }
    cmd::run(&mut package)?;
    for p in &pkgs {
        let mut doc = cmd::cargo(["doc", "--no-deps", "--all-features", "-p", &p.name]);
        doc.env("RUSTDOCFLAGS", "-D warnings");
        cmd::run(&mut doc)?;
    }
    if !problems.is_empty() {
        bail!("metadata incomplete:\n  {}", problems.join("\n  "));
    }
    println!(
        "packaged and documented: {}",
        pkgs.iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(json: &str) -> Package {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reports_each_missing_field() {
        let p = pkg(
            r#"{"name":"x","manifest_path":"/nonexistent/x/Cargo.toml","publish":null,
            "targets":[],"license":null,"license_file":null,"description":" ","repository":"r",
            "readme":"README.md","keywords":[],"categories":["c"]}"#,
        );
        assert_eq!(
            missing_metadata(&p),
            [
                "license",
                "description",
                "readme file README.md (not found)",
                "keywords"
            ]
        );
    }

    #[test]
    fn complete_metadata_passes() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let p = pkg(&format!(
            r#"{{"name":"x","manifest_path":"{dir}/Cargo.toml","publish":null,"targets":[],
            "license":null,"license_file":"Cargo.toml","description":"d","repository":"r",
            "readme":"Cargo.toml","keywords":["k"],"categories":["c"]}}"#
        ));
        assert!(missing_metadata(&p).is_empty());
    }
}
