//! A benchmark server process: started, awaited until its port accepts,
//! measured, and stopped with SIGTERM (SIGKILL after 5 s).

use super::proc;
use crate::cmd;
use anyhow::{Context, Result, bail};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept its first connection.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A running server; killed on drop if still running.
#[derive(Debug)]
pub struct Server {
    child: Child,
    log: std::path::PathBuf,
}

impl Server {
    /// Starts `command` (output to `log`) and waits until 127.0.0.1:`port` accepts.
    pub fn start(mut command: Command, port: u16, log: &Path) -> Result<Self> {
        let line = cmd::show(&command);
        let file =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start `{line}`"))?;
        let mut server = Server {
            child,
            log: log.to_path_buf(),
        };
        server
            .wait_ready(port)
            .with_context(|| format!("server `{line}`"))?;
        Ok(server)
    }

    fn wait_ready(&mut self, port: u16) -> Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "exited before accepting ({status}); log {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "port {port} not accepting after {READY_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// CPU the server has used so far (utime and stime, all threads).
    pub fn cpu(&self) -> Result<proc::ProcessCpu> {
        proc::process_cpu(self.child.id())
    }

    /// SIGTERM, then SIGKILL if it has not exited within 5 s.
    pub fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            bail!("server exited during the run; log:\n{}", self.log_tail());
        }
        let pid = libc::pid_t::try_from(self.child.id())?;
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < STOP_TIMEOUT {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("xtask: server {pid} ignored SIGTERM for {STOP_TIMEOUT:?}; killing it");
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        assert!(port > 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
