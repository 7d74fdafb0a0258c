//! What a native connection runs over: a plain [`TcpStream`] or, with
//! feature `tls`, a TLS session shared by the connection's reader and
//! writer tasks ([`SharedTls`](super::tls::SharedTls)).

use std::io;
use std::net::Shutdown;
use std::rc::Rc;

use seastar_net::TcpStream;

/// A connection's byte stream.
pub(crate) enum Transport {
    /// Plain TCP (an `Rc` so the server's [`Connections`](seastar_net::Connections) can hold it).
    Tcp(Rc<TcpStream>),
    /// TLS over TCP (boxed: a session is large, a plain connection should not pay for it).
    #[cfg(feature = "tls")]
    Tls(Box<super::tls::SharedTls>),
}

impl Transport {
    /// Sends all of `data` and waits until it is sent.
    pub(crate) async fn write_all(&self, data: Vec<u8>) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.write_all(data).await.0,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.write_all(&data).await,
        }
    }

    /// Shuts the socket down (both ways: ends the connection's I/O).
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.shutdown(how),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.shutdown_tcp(how),
        }
    }
}
