//! The idle timeout on the manual clock: a connection whose last request
//! is older than the timeout is closed, one that asked since is not.

mod support;

use std::io::Read;
use std::time::Duration;

use support::{Server, config};

#[test]
fn idle_connections_close_after_the_timeout() {
    let mut cfg = config();
    cfg.idle_timeout = Some(Duration::from_secs(10));
    let server = Server::start(1, cfg);
    let mut idle = server.client();
    let mut busy = server.client();
    idle.expect("mn\r\n", "MN\r\n");
    busy.expect("mn\r\n", "MN\r\n");
    server.advance(Duration::from_secs(6));
    busy.expect("mn\r\n", "MN\r\n");
    // 12 s after idle's last request, 6 s after busy's.
    server.advance(Duration::from_secs(6));
    let mut b = [0u8; 16];
    assert_eq!(
        idle.stream.read(&mut b).unwrap(),
        0,
        "idle connection closed"
    );
    busy.expect("mn\r\n", "MN\r\n");
    server.advance(Duration::from_secs(11));
    assert_eq!(busy.stream.read(&mut b).unwrap(), 0, "now idle too");
    // New connections are served.
    server.client().expect("mn\r\n", "MN\r\n");
}

#[test]
fn without_a_timeout_idle_connections_stay() {
    let server = Server::start(1, config());
    let mut c = server.client();
    c.expect("mn\r\n", "MN\r\n");
    server.advance(Duration::from_secs(100_000));
    c.expect("mn\r\n", "MN\r\n");
}
