//! Errors of calls, connections and the server.

use thiserror::Error;

use crate::frame::FrameError;

/// Why a call, a stream or a connection failed.
#[derive(Debug, Error)]
pub enum RpcError {
    /// Connecting, reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer is not a seastar-rpc peer, or no version is shared.
    #[error("negotiation failed: {0}")]
    Negotiation(FrameError),
    /// The peer broke the protocol (bad frame, oversized frame, ...).
    #[error("protocol error: {0}")]
    Protocol(#[from] FrameError),
    /// The connection ended while the call was in flight (its outcome is unknown).
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// No handler for this verb on the server.
    #[error("unknown verb {0}")]
    UnknownVerb(u32),
    /// The call's timeout passed (on either side).
    #[error("timed out")]
    Timeout,
    /// The call was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A payload did not (de)serialize.
    #[error("serialization: {0}")]
    Codec(String),
    /// The server refused the argument or failed outside the handler.
    #[error("server error: {0}")]
    Server(String),
    /// The feature needed is not negotiated on this connection.
    #[error("{0} was not negotiated with the server")]
    NotNegotiated(&'static str),
    /// The stream was closed by the other side.
    #[error("stream closed")]
    StreamClosed,
    /// The TLS handshake failed (feature `tls`): the server's certificate
    /// did not verify, the server refused ours, no common version, ...
    #[cfg(feature = "tls")]
    #[error("TLS: {0}")]
    Tls(#[from] seastar_net::tls::TlsError),
}

/// The outcome of a failed call: the handler's own typed error, or the RPC
/// layer's.
///
/// ```
/// use seastar_rpc::{CallError, RpcError};
/// let e: CallError<String> = CallError::Handler("no such key".into());
/// assert_eq!(e.to_string(), "handler error: \"no such key\"");
/// let e: CallError<String> = RpcError::Timeout.into();
/// assert!(matches!(e, CallError::Rpc(RpcError::Timeout)));
/// ```
#[derive(Debug, Error)]
pub enum CallError<E> {
    /// The handler returned `Err(e)`.
    #[error("handler error: {0:?}")]
    Handler(E),
    /// The call failed in the RPC layer.
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

impl<E> CallError<E> {
    /// The handler's error, if that is what this is.
    pub fn handler(self) -> Option<E> {
        match self {
            CallError::Handler(e) => Some(e),
            CallError::Rpc(_) => None,
        }
    }
}

impl RpcError {
    /// The error a non-OK, non-handler status stands for; `msg` is the
    /// UTF-8 payload that came with it.
    pub(crate) fn from_status(status: crate::frame::Status, verb: u32, msg: String) -> RpcError {
        use crate::frame::Status;
        match status {
            Status::UnknownVerb => RpcError::UnknownVerb(verb),
            Status::Timeout => RpcError::Timeout,
            Status::Cancelled => RpcError::Cancelled,
            Status::Ok
            | Status::Handler
            | Status::BadRequest
            | Status::FrameTooLarge
            | Status::Internal => RpcError::Server(msg),
        }
    }
}
