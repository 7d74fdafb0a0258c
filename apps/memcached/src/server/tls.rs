//! TLS on the TCP port, as stock memcached offers it: `-Z` (`--enable-ssl`)
//! with `-o ssl_chain_cert=FILE,ssl_key=FILE`, optionally
//! `ssl_ca_cert=FILE` and `ssl_verify_mode=N` (0: no client certificate
//! asked, the default; 1: asked and checked if sent; 2 or 3: required).
//! Every TCP connection is then a TLS session (rustls, on its shard); UDP
//! stays plain, as in stock memcached. A TLS-capable memcached client
//! (pymemcache with an `ssl.SSLContext`, libmemcached built with TLS,
//! `openssl s_client`) works unchanged: the protocol inside is the same,
//! byte for byte.
//!
//! A connection: the handshake (within [`HANDSHAKE_TIMEOUT`]), then reads
//! of decrypted bytes, every complete request processed by the same
//! `Session` as a plain connection (same budget, same replies), and the
//! replies of each read written through the session. A failed handshake
//! (garbage, a truncated record, a refused client certificate) ends that
//! connection only, and is counted. At a stop the accept loop ends, each
//! connection finishes the requests it has (its next read sees the stop as
//! an end) and sends `close_notify`; after the shutdown timeout the ones
//! left are dropped.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::path::PathBuf;
use std::rc::Rc;
use std::task::{Poll, Waker, ready};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::future::{Either, select};
use seastar_core::smp::Sharded;
use seastar_core::sync::AbortSource;
use seastar_core::timer::{lowres_now, sleep, sleep_until};
use seastar_core::{shard_id, spawn_local};
use seastar_net::TcpListener;
use seastar_net::tls::{TlsAcceptor, TlsServerConfig, TlsStream};

use super::ShardReport;
use super::routing::Session;
use super::shard::ShardState;
use crate::protocol::Out;

/// How long a client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `-Z` / `-o ssl_*` settings (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SslOptions {
    /// `-Z`: TLS on the TCP port.
    pub enabled: bool,
    /// `ssl_chain_cert`: the certificate chain, PEM, leaf first.
    pub chain_cert: Option<PathBuf>,
    /// `ssl_key`: its private key, PEM.
    pub key: Option<PathBuf>,
    /// `ssl_ca_cert`: CAs whose client certificates are accepted, PEM.
    pub ca_cert: Option<PathBuf>,
    /// `ssl_verify_mode`: 0 none, 1 optional, 2 or 3 required.
    pub verify_mode: u8,
}

impl SslOptions {
    /// Takes one `-o` option if it is an `ssl_*` one: `Some(Ok)` taken,
    /// `Some(Err)` a bad value, `None` not TLS's.
    pub fn take(&mut self, name: &str, value: &str) -> Option<Result<(), String>> {
        match name {
            "ssl_chain_cert" => self.chain_cert = Some(value.into()),
            "ssl_key" => self.key = Some(value.into()),
            "ssl_ca_cert" => self.ca_cert = Some(value.into()),
            "ssl_verify_mode" => match value.parse::<u8>() {
                Ok(n) if n <= 3 => self.verify_mode = n,
                _ => return Some(Err(format!("ssl_verify_mode={value}: 0, 1, 2 or 3"))),
            },
            _ => return None,
        }
        Some(Ok(()))
    }

    /// The acceptor if `-Z` was given (reads the PEM files); the error says
    /// what is missing or which file is bad.
    pub fn acceptor(&self) -> Result<Option<TlsAcceptor>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&self.chain_cert, &self.key) else {
            return Err("-Z needs -o ssl_chain_cert=FILE,ssl_key=FILE".into());
        };
        let mut config = TlsServerConfig::from_pem_files(cert, key).map_err(|e| e.to_string())?;
        if self.verify_mode > 0 {
            let Some(ca) = &self.ca_cert else {
                return Err(format!(
                    "ssl_verify_mode={} needs -o ssl_ca_cert=FILE",
                    self.verify_mode
                ));
            };
            config = config
                .client_ca_pem_file(ca)
                .map_err(|e| e.to_string())?
                .client_auth_optional(self.verify_mode == 1);
        }
        let config = config.build().map_err(|e| e.to_string())?;
        Ok(Some(
            TlsAcceptor::new(config).handshake_timeout(HANDSHAKE_TIMEOUT),
        ))
    }
}

/// The shard's TLS connections: a count with a waiter for "none left",
/// and the signals that end them.
#[derive(Default)]
struct Conns {
    open: Cell<usize>,
    idle: RefCell<Option<Waker>>,
    /// Stop reading: finish what was asked, then close.
    stop: AbortSource,
    /// The shutdown timeout passed: drop at once.
    kill: AbortSource,
}

/// A connection's place in [`Conns`] and in `curr_connections`, released
/// when dropped (also by a panicking task).
struct Place {
    conns: Rc<Conns>,
    st: Rc<ShardState>,
}

impl Place {
    fn open(conns: &Rc<Conns>, st: &Rc<ShardState>) -> Place {
        conns.open.set(conns.open.get() + 1);
        {
            let mut h = st.handler.borrow_mut();
            let s = h.store_mut().stats_mut();
            s.curr_connections += 1;
            s.total_connections += 1;
        }
        Place {
            conns: conns.clone(),
            st: st.clone(),
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut h) = self.st.handler.try_borrow_mut() {
            h.store_mut().stats_mut().curr_connections -= 1;
        }
        let c = &self.conns;
        c.open.set(c.open.get() - 1);
        if c.open.get() == 0
            && let Some(w) = c.idle.take()
        {
            w.wake();
        }
    }
}

impl Conns {
    async fn wait_idle(&self) {
        poll_fn(|cx| {
            if self.open.get() == 0 {
                Poll::Ready(())
            } else {
                *self.idle.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Ends every connection after its current requests, waits for them
    /// up to `timeout`, then drops the rest; returns how many were dropped.
    async fn drain(&self, timeout: Duration) -> usize {
        self.stop.request_abort();
        let idle = std::pin::pin!(self.wait_idle());
        if let Either::Left(_) = select(idle, std::pin::pin!(sleep(timeout))).await {
            return 0;
        }
        let left = self.open.get();
        tracing::warn!(
            shard = shard_id(),
            connections = left,
            "shutdown timeout: dropping TLS connections"
        );
        self.kill.request_abort();
        self.wait_idle().await;
        left
    }
}

/// The accept loop of a shard whose TCP port speaks TLS (in place of the
/// plain one): until a stop, then the connections are drained.
pub(crate) async fn serve_tls(
    st: Rc<ShardState>,
    service: Sharded<ShardState>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> ShardReport {
    let conns = Rc::new(Conns::default());
    let mut report = ShardReport::default();
    let mut stop = std::pin::pin!(seastar_core::stop_signal());
    loop {
        let accept = std::pin::pin!(listener.accept());
        match select(accept, stop.as_mut()).await {
            Either::Left((Ok((conn, peer)), _)) => {
                if conns.open.get() >= st.max_conns {
                    report.rejected += 1;
                    let mut h = st.handler.borrow_mut();
                    h.store_mut().stats_mut().rejected_connections += 1;
                    tracing::debug!(shard = shard_id(), %peer, "too many open connections");
                    continue;
                }
                report.accepted += 1;
                let _ = conn.set_nodelay(true);
                let place = Place::open(&conns, &st);
                let (st, service, acceptor) = (st.clone(), service.clone(), acceptor.clone());
                spawn_local(async move {
                    let conns = place.conns.clone();
                    let serve = std::pin::pin!(async {
                        // A stop ends a handshake at once: no request was
                        // read yet (a stalled client cannot hold the stop).
                        let handshake = std::pin::pin!(acceptor.accept(conn));
                        let mut tls = match select(handshake, conns.stop.aborted()).await {
                            Either::Left((Ok(t), _)) => t,
                            Either::Left((Err(e), _)) => {
                                tracing::debug!(shard = shard_id(), %peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Either::Right(_) => {
                                tracing::debug!(shard = shard_id(), %peer, "stopping: TLS handshake abandoned");
                                return;
                            }
                        };
                        connection(&st, service, &mut tls, &conns.stop).await;
                    });
                    let kill = std::pin::pin!(conns.kill.aborted());
                    let _ = select(serve, kill).await;
                    drop(place);
                })
                .detach();
            }
            Either::Left((Err(e), _)) => {
                if TcpListener::is_closed_error(&e)
                    || futures::FutureExt::now_or_never(stop.as_mut()).is_some()
                {
                    break;
                }
                tracing::error!(shard = shard_id(), error = %e, "accept failed; no longer accepting");
                break;
            }
            Either::Right(((), _)) => break,
        }
    }
    drop(listener);
    report.aborted = conns.drain(st.shutdown_timeout).await as u64;
    report
}

/// How a read ended.
enum Read {
    /// This many bytes were appended.
    Got(usize),
    /// End of stream, an error, the stop, or the idle timeout.
    End,
}

/// Appends the next decrypted bytes to `rbuf`, unless the stop or the idle
/// timeout comes first.
async fn read(
    st: &ShardState,
    tls: &mut TlsStream,
    rbuf: &mut BytesMut,
    stop: &AbortSource,
    last_request: std::time::Instant,
) -> Read {
    let fill = poll_fn(|cx| {
        let data = ready!(tls.poll_fill_buf(cx))?;
        let n = data.len();
        rbuf.extend_from_slice(data);
        tls.consume(n);
        Poll::Ready(Ok::<usize, std::io::Error>(n))
    });
    let fill = std::pin::pin!(fill);
    let idle = std::pin::pin!(async {
        match st.idle_timeout {
            Some(t) => sleep_until(last_request + t).await,
            None => std::future::pending().await,
        }
    });
    let ended = std::pin::pin!(select(stop.aborted(), idle));
    match select(fill, ended).await {
        Either::Left((Ok(n), _)) if n > 0 => Read::Got(n),
        Either::Left((Ok(_), _)) => Read::End,
        Either::Left((Err(e), _)) => {
            tracing::debug!(shard = shard_id(), error = %e, "TLS read failed; closing");
            Read::End
        }
        Either::Right(_) => Read::End,
    }
}

/// Writes the replies in `out` through the session.
async fn write(tls: &mut TlsStream, out: &mut Out) -> std::io::Result<()> {
    if out.is_flat() {
        let r = tls.write_all(&out.buf_mut()[..]).await.0;
        out.buf_mut().clear();
        return r;
    }
    for chunk in out.take_chunks() {
        tls.write_all(chunk).await.0?;
    }
    Ok(())
}

/// Serves one TLS connection until the peer closes, an error, `quit`, the
/// idle timeout or a stop; then `close_notify`.
async fn connection(
    st: &Rc<ShardState>,
    service: Sharded<ShardState>,
    tls: &mut TlsStream,
    stop: &AbortSource,
) {
    let mut session = Session::new(st.clone(), service, st.output_budget);
    let mut rbuf = BytesMut::new();
    let mut out = Out::new();
    let mut last_request = lowres_now();
    loop {
        let n = match read(st, tls, &mut rbuf, stop, last_request).await {
            Read::Got(n) => n,
            Read::End => break,
        };
        let mut written = 0;
        let close = loop {
            let outcome = session.process(&rbuf, &mut out).await;
            rbuf.advance(outcome.consumed);
            if outcome.consumed > 0 {
                last_request = lowres_now();
            }
            if !out.is_empty() {
                written += out.len();
                if let Err(e) = write(tls, &mut out).await {
                    tracing::debug!(shard = shard_id(), error = %e, "TLS write failed; closing");
                    return;
                }
            }
            if outcome.close || !outcome.more {
                break outcome.close;
            }
            seastar_core::maybe_yield().await;
        };
        if rbuf.is_empty() {
            rbuf = BytesMut::new();
        }
        {
            let mut h = st.handler.borrow_mut();
            let s = h.store_mut().stats_mut();
            s.bytes_read += n as u64;
            s.bytes_written += written as u64;
        }
        if close {
            break;
        }
    }
    let _ = tls.shutdown().await;
}

/// The TLS acceptor in [`Config`](super::Config): two are equal when they
/// share one configuration (so `Config` stays comparable).
#[derive(Debug, Clone)]
pub struct TlsConfig(pub TlsAcceptor);

impl PartialEq for TlsConfig {
    fn eq(&self, other: &TlsConfig) -> bool {
        std::sync::Arc::ptr_eq(self.0.config(), other.0.config())
    }
}

impl Eq for TlsConfig {}

#[cfg(test)]
mod tests {
    use super::SslOptions;

    #[test]
    fn ssl_options_parse_like_stocks() {
        let mut o = SslOptions::default();
        assert_eq!(o.take("ssl_chain_cert", "/c.pem"), Some(Ok(())));
        assert_eq!(o.take("ssl_key", "/k.pem"), Some(Ok(())));
        assert_eq!(o.take("ssl_ca_cert", "/ca.pem"), Some(Ok(())));
        assert_eq!(o.take("ssl_verify_mode", "2"), Some(Ok(())));
        assert_eq!(o.take("idle_timeout", "3"), None);
        assert!(matches!(o.take("ssl_verify_mode", "4"), Some(Err(_))));
        assert!(matches!(o.take("ssl_verify_mode", "x"), Some(Err(_))));
        assert_eq!(o.verify_mode, 2);
        assert_eq!(
            o.chain_cert.as_deref(),
            Some(std::path::Path::new("/c.pem"))
        );
        // Not enabled: no acceptor, whatever the files.
        assert_eq!(o.acceptor().map(|a| a.is_none()), Ok(true));
        // Enabled without a key: the error names what is missing.
        let o = SslOptions {
            enabled: true,
            chain_cert: Some("/c.pem".into()),
            ..SslOptions::default()
        };
        assert!(o.acceptor().unwrap_err().contains("ssl_key"));
    }
}
