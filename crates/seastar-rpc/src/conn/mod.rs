//! What client and server connections share: the negotiated parameters,
//! the outbox, frame reading and the table of open streams.

pub(crate) mod outbox;
pub(crate) mod reader;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod transport;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::codec;
use crate::decode::FrameDecoder;
pub(crate) use crate::decode::{BadHeader, Frame};
use crate::error::RpcError;
use crate::frame::Features;
use crate::frame::{FrameError, Header, Kind, Status, flags};
use crate::stream::StreamState;
use outbox::Outbox;
pub(crate) use reader::Reader;
pub(crate) use transport::Transport;

/// State of one negotiated connection, shared by its reader, writer,
/// calls and streams.
pub(crate) struct Core {
    pub(crate) outbox: Outbox,
    pub(crate) features: Features,
    /// The largest payload we accept.
    pub(crate) max_frame: u32,
    /// The largest payload the peer accepts.
    pub(crate) peer_max_frame: u32,
    /// Items a stream's receiver lets the sender have in flight.
    pub(crate) stream_window: u32,
    pub(crate) streams: RefCell<HashMap<u64, Rc<StreamState>>>,
}

impl Core {
    pub(crate) fn new(
        features: Features,
        max_frame: u32,
        peer_max_frame: u32,
        window: u32,
    ) -> Core {
        Core {
            outbox: Outbox::default(),
            features,
            max_frame,
            peer_max_frame,
            stream_window: window.max(1),
            streams: RefCell::default(),
        }
    }

    /// The decoder of frames sent to us on this connection.
    pub(crate) fn decoder(&self) -> FrameDecoder {
        FrameDecoder::new(self.max_frame, self.features.contains(Features::LZ4))
    }

    /// Sends a frame, compressing the payload when lz4 was negotiated and
    /// it helps. A payload over the peer's limit is refused here, unsent.
    pub(crate) fn send(&self, mut header: Header, payload: &[u8]) -> Result<(), RpcError> {
        if payload.len() > self.peer_max_frame as usize {
            return Err(FrameError::TooLarge {
                len: payload.len() as u64,
                max: self.peer_max_frame,
            }
            .into());
        }
        if self.outbox.is_closed() {
            return Err(RpcError::ConnectionLost("connection closed".into()));
        }
        if self.features.contains(Features::LZ4) {
            if let Some(c) = codec::compress(payload) {
                header.flags |= flags::COMPRESSED;
                header.len = c.len() as u32;
                self.outbox.push(&header, &c);
                return Ok(());
            }
        }
        header.len = payload.len() as u32;
        self.outbox.push(&header, payload);
        Ok(())
    }

    /// Sends a frame with a status and a UTF-8 message as payload.
    pub(crate) fn send_status(&self, kind: Kind, id: u64, status: Status, msg: &str) {
        let mut h = Header::new(kind, id);
        h.status = status as u16;
        let _ = self.send(h, msg.as_bytes());
    }

    /// Routes a stream frame (data, end, credit, or a cancel of a stream)
    /// to its stream; frames of streams no longer open are dropped.
    /// Returns false if the frame's id is no open stream.
    pub(crate) fn on_stream_frame(&self, frame: Frame) -> Result<bool, RpcError> {
        let Some(state) = self.streams.borrow().get(&frame.header.id).cloned() else {
            return Ok(false);
        };
        match frame.header.kind {
            Kind::StreamData => state.deliver(frame.payload, self.stream_window)?,
            Kind::StreamEnd => {
                let status = Status::from_u16(frame.header.status);
                let msg = String::from_utf8_lossy(&frame.payload).into_owned();
                state.remote_end(status, msg);
            }
            Kind::StreamCredit => state.add_credit(frame.header.verb),
            Kind::Cancel => state.remote_stopped_reading(),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Fails every open stream (the connection is gone).
    pub(crate) fn fail_streams(&self, why: &str) {
        for (_, s) in self.streams.take() {
            s.fail(why);
        }
    }
}

/// Why reading a frame failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    Header(BadHeader),
    Protocol(FrameError),
}

impl From<ReadError> for RpcError {
    fn from(e: ReadError) -> RpcError {
        match e {
            ReadError::Io(e) => RpcError::Io(e),
            ReadError::Header(h) => RpcError::Protocol(h.error),
            ReadError::Protocol(e) => RpcError::Protocol(e),
        }
    }
}
