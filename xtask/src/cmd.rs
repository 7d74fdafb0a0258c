//! Running child processes: the workspace root, a `cargo` that uses the
//! workspace's normal target dir, echoing commands, and tools from apt.

use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// The workspace root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A `cargo` command run at the workspace root.
///
/// `CARGO_TARGET_DIR` is removed so the commands xtask runs build into the
/// workspace's normal `target/`, whatever target dir xtask itself was built in.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args)
        .current_dir(root())
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

/// The same command run under `taskset -c <cpu>` (program, args, env and dir kept).
pub fn pin(cpu: &str, cmd: &Command) -> Command {
    let mut pinned = Command::new("taskset");
    pinned
        .args(["-c", cpu])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => pinned.env(k, v),
            None => pinned.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        pinned.current_dir(dir);
    }
    pinned
}

/// Renders a command as a shell-like line (env assignments, program, args).
pub fn show(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), quote(v?))))
        .collect();
    let program = Path::new(cmd.get_program());
    // Show `cargo` rather than the full path of the toolchain's binary.
    let name = match program.file_name() {
        Some(f) if f == "cargo" => "cargo".into(),
        _ => program.to_string_lossy().into_owned(),
    };
    parts.push(name);
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%{}".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Echoes and runs a command with inherited stdio; errors unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = show(cmd);
    eprintln!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs a command quietly and returns its stdout; errors (with stderr) unless it exits 0.
pub fn output(cmd: &mut Command) -> Result<String> {
    let line = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Whether a command runs and exits 0 (all output discarded).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Finds an executable on `PATH`, like `which`.
pub fn which(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

static APT_UPDATED: AtomicBool = AtomicBool::new(false);

/// Makes sure `tool` is on `PATH`, installing Debian package `package` if it is not
/// (`apt-get update` runs once per xtask invocation, before the first install).
pub fn ensure_tool(tool: &str, package: &str) -> Result<PathBuf> {
    if let Some(path) = which(tool) {
        return Ok(path);
    }
    eprintln!("xtask: `{tool}` not found; installing Debian package `{package}`");
    if which("apt-get").is_none() {
        bail!("`{tool}` is missing and there is no apt-get to install `{package}` with");
    }
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        run(Command::new("apt-get").args(["update", "-q"]))?;
    }
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    which(tool).with_context(|| format!("installed `{package}` but `{tool}` is still not on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_quotes_what_needs_it() {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0", "echo hi", "it's"])
            .env("RUSTFLAGS", "--cfg loom");
        assert_eq!(
            show(&cmd),
            r"RUSTFLAGS='--cfg loom' taskset -c 0 'echo hi' 'it'\''s'"
        );
    }

    #[test]
    fn pin_keeps_everything() {
        let mut cmd = Command::new("echo");
        cmd.arg("x").env("A", "1").current_dir("/tmp");
        let pinned = pin("1", &cmd);
        assert_eq!(show(&pinned), "A=1 taskset -c 1 echo x");
        assert_eq!(pinned.get_current_dir(), Some(Path::new("/tmp")));
    }

    #[test]
    fn cargo_runs_at_root_without_target_dir_override() {
        let cmd = cargo(["build"]);
        assert_eq!(cmd.get_current_dir(), Some(root().as_path()));
        assert!(
            cmd.get_envs()
                .any(|(k, v)| k == "CARGO_TARGET_DIR" && v.is_none())
        );
    }
}
