//! A message about a cross-shard call, packed into three words so that
//! with its stamp it fills a ring slot's 32 bytes (`ring.rs`): the cell
//! pointer with the step in its low bits (cells are 64-byte aligned,
//! `call/`), the target's entry point for an inline start, and one word
//! of payload (the inline closure of a start, or the output of a reply).
//! A plain enum of these steps takes four words (its tag a word of its
//! own), which would double the ring's slots.

use std::ptr::NonNull;

use super::call::{CallPtr, OriginSide, Payload, StartFn};

/// The step of a call a [`CallMsg`] carries; see the module doc of
/// `call/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Origin to target: run the call, whose closure is in the cell.
    Start = 0,
    /// Origin to target: run the call, whose closure is in the message.
    StartInline = 1,
    /// Target to origin: the call is back, its outcome in the cell.
    Return = 2,
    /// Target to origin: the call is back, its output in the message.
    Reply = 3,
    /// Origin to target: the caller left before the return.
    Cancel = 4,
    /// Target to origin: the cancel was seen (after the return).
    CancelAck = 5,
}

/// The low bits of a cell pointer that carry the [`Op`].
const OP_BITS: usize = 0b111;
const _: () = assert!(std::mem::align_of::<OriginSide>() > OP_BITS);

/// The step of each value of the tag bits (by table: one load, no
/// branch; 6 and 7 are never written, see [`CallMsg::pack`]).
const OPS: [Op; OP_BITS + 1] = [
    Op::Start,
    Op::StartInline,
    Op::Return,
    Op::Reply,
    Op::Cancel,
    Op::CancelAck,
    Op::CancelAck,
    Op::CancelAck,
];

/// One step of a call, as it travels (see the module doc).
pub(crate) struct CallMsg {
    /// The cell, its low bits the step.
    tagged: NonNull<OriginSide>,
    /// `StartInline`: the target's entry point for the inline closure.
    start: Option<StartFn>,
    /// `StartInline`: the closure; `Reply`: the output; else unused.
    payload: Payload,
}

// SAFETY: the cell pointer is sent between its two shards as `CallPtr` is
// (see its `Send`); the payload holds the call's closure (`F: Send`) or
// output (`T: Send`), moved to the other shard and read there once.
unsafe impl Send for CallMsg {}

/// A call message taken apart.
pub(crate) struct Opened {
    pub(crate) call: CallPtr,
    pub(crate) op: Op,
    pub(crate) start: Option<StartFn>,
    pub(crate) payload: Payload,
}

impl CallMsg {
    #[inline]
    fn pack(call: CallPtr, op: Op, start: Option<StartFn>, payload: Payload) -> CallMsg {
        CallMsg {
            // SAFETY: the cell is 64-byte aligned and at least a line long,
            // so its address plus the step (< 8) is in bounds, with the
            // step in the low bits (`call` takes it off again).
            tagged: unsafe { call.raw().byte_add(op as usize) },
            start,
            payload,
        }
    }

    /// The step `op` of `call`, with nothing inline (`Start`, `Return`,
    /// `Cancel`, `CancelAck`).
    pub(crate) fn step(call: CallPtr, op: Op) -> CallMsg {
        debug_assert!(!matches!(op, Op::StartInline | Op::Reply));
        CallMsg::pack(call, op, None, Payload::uninit())
    }

    /// The start of `call` with its closure inline, which `start` runs.
    pub(crate) fn start_inline(call: CallPtr, start: StartFn, closure: Payload) -> CallMsg {
        CallMsg::pack(call, Op::StartInline, Some(start), closure)
    }

    /// The return of `call` with its output inline.
    pub(crate) fn reply(call: CallPtr, output: Payload) -> CallMsg {
        CallMsg::pack(call, Op::Reply, None, output)
    }

    /// The step this message carries.
    #[inline]
    pub(crate) fn op(&self) -> Op {
        OPS[self.tagged.addr().get() & OP_BITS]
    }

    /// The call this message is about.
    #[inline]
    pub(crate) fn call(&self) -> CallPtr {
        let tag = self.tagged.addr().get() & OP_BITS;
        // SAFETY: `tagged` is the cell's address plus `tag` (< 8, within
        // the cell, which is at least a line long), so this is the cell's
        // address, in bounds of the same allocation.
        CallPtr::from_raw(unsafe { self.tagged.byte_sub(tag) })
    }

    /// Takes the message apart.
    #[inline]
    pub(crate) fn open(self) -> Opened {
        Opened {
            call: self.call(),
            op: self.op(),
            start: self.start,
            payload: self.payload,
        }
    }
}
