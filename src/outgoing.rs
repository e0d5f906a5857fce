//! The senders' side of the outgoing byte stream: a sender frames and masks its message on its
//! own thread (header, mask, payload) into [`Outgoing`], behind a short lock; the I/O thread's
//! writer (`io::wire`) only moves those bytes to the socket. So a send costs the caller what a
//! plain tungstenite write would, and the I/O thread almost nothing per message.
//!
//! With permessage-deflate agreed, messages from the threshold up are compressed with one
//! compressor per connection, in send order: a small one by its sender under the lock, a
//! large one by the I/O thread, and every compressed message behind a large one waits for
//! the I/O thread too, which holds the compressor until it has caught up. A compressed frame
//! keeps its message, so that a connection that dies before sending it hands back the
//! message, not bytes compressed against that connection's window.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::RngExt;
use rand::rngs::StdRng;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::deflate::Deflater;

/// A message at least this large is not encoded by its sender: the send stays O(1) for the
/// caller (a game or control loop), and the I/O thread encodes it when its turn comes.
pub(crate) const LARGE: usize = 16 << 10;

/// During a long burst of sends the I/O thread writes once this many payload bytes wait (or
/// 100 µs have passed), not after every few messages: the sender whose message brings the
/// queue to it rings.
pub(crate) const COALESCED: usize = 96 << 10;

/// The outgoing stream as the handle side sees it: the send queue, which belongs to the
/// handle and outlives every connection, and the gate of the current connection, which says
/// what that connection still accepts.
#[derive(Debug)]
pub(crate) struct Outgoing {
    queue: SendQueue,
    gate: Gate,
    /// Masking keys for the frames that senders encode: a ChaCha generator seeded from the
    /// OS, as unpredictable as RFC 6455 §5.3 asks, without a thread-local lookup per frame.
    masks: StdRng,
    /// Buffers of chunks the I/O thread has written, for the next chunks.
    spares: Arc<Spares>,
    /// How far the last chunk was filled (bytes, frames) before the I/O thread took it or a
    /// new one followed: a new chunk has about as much written through up front.
    last_fill: (usize, usize),
}

impl Default for Outgoing {
    fn default() -> Self {
        Outgoing {
            queue: SendQueue::default(),
            gate: Gate::default(),
            masks: rand::make_rng(),
            spares: Arc::default(),
            last_fill: (0, 0),
        }
    }
}

/// The buffers of senders' chunks that the I/O thread has written, back for senders to fill
/// again. Allocating a chunk on a sender's thread and freeing it on the I/O thread made the
/// two contend for the allocator's lock (four in five of the futex calls of a send burst) and
/// grew each chunk's frame list anew; a few spare buffers cost a lock per chunk instead.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    buffers: Mutex<Vec<(Vec<u8>, Vec<FrameMark>)>>,
}

/// The most spare buffers kept (about 36 KiB each): enough for a burst of sends, which the
/// I/O thread writes a few chunks at a time (with 2, the allocator's trimming and faulting
/// pages back in cost the outbound bench a quarter more page faults). On shared I/O threads
/// a quiet connection keeps none (see [`Spares::clear`]).
const MAX_SPARES: usize = 4;

/// A chunk's byte capacity: frames are added until it holds [`LARGE`] bytes, the last one
/// under [`LARGE`] itself.
const CHUNK_CAPACITY: usize = LARGE * 2;

/// Frame marks allocated up front: enough for a chunk of 64-byte messages.
const CHUNK_MARKS: usize = 256;

/// The most bytes of a chunk written through up front: a chunk takes frames until it holds
/// [`LARGE`] bytes.
const TOUCHED: usize = LARGE + 256;

impl Spares {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Vec<u8>, Vec<FrameMark>)>> {
        // A panic while it was held cannot leave the list half-updated: a push or a pop.
        self.buffers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets every spare buffer go: the connection is quiet.
    pub(crate) fn clear(&self) {
        let spares = std::mem::take(&mut *self.lock());
        drop(spares);
    }

    /// Empty frames for a new chunk, in a spare buffer if there is one, with room for `fill`
    /// (bytes, frames) written through.
    fn frames(self: &Arc<Self>, fill: (usize, usize)) -> Frames {
        let (mut bytes, mut marks) = self.lock().pop().unwrap_or_else(|| {
            (
                Vec::with_capacity(CHUNK_CAPACITY),
                Vec::with_capacity(CHUNK_MARKS),
            )
        });
        // Written once now, the lines come to this core in one go (the I/O thread's core
        // read them last, when the socket took them). Otherwise each send of a burst waited
        // for its own frame's lines as it unlocked: 88% of `send`'s samples sat on the
        // unlocking xchg. As much as the last chunk took: a lone send touches a few lines.
        bytes.resize((fill.0 * 2).min(TOUCHED), 0);
        bytes.clear();
        marks.resize((fill.1 * 2).min(CHUNK_MARKS), FrameMark::default());
        marks.clear();
        Frames {
            bytes,
            marks,
            originals: Vec::new(),
            spares: Some(self.clone()),
        }
    }
}

/// Messages accepted by `send*` and not yet taken by the I/O thread, in order. Per handle:
/// no connection's end discards it; what a dead connection did not write comes back to its
/// front.
#[derive(Debug, Default)]
struct SendQueue {
    chunks: VecDeque<Chunk>,
    /// Payload bytes in `chunks`.
    payload: usize,
}

/// What the current connection accepts. Per connection: set by
/// [`Outgoing::open_connection`] and reset by [`Outgoing::end_connection`].
#[derive(Debug, Default)]
struct Gate {
    /// No more data frames on this connection: a close frame went either way, or it is over
    /// and no other follows.
    closed: bool,
    /// Compression, while the connection has it.
    deflate: Compression,
}
/// The compression state of the outgoing stream, per connection.
#[derive(Debug, Default)]
struct Compression {
    /// permessage-deflate is agreed on the open connection.
    on: bool,
    /// Messages from this size up are compressed.
    threshold: usize,
    /// The compressor; away while the I/O thread compresses large messages with it.
    deflater: Option<Box<Deflater>>,
    /// Messages queued for the I/O thread to compress: later ones must wait behind them.
    waiting: usize,
    scratch: Vec<u8>,
}

/// What the I/O thread takes from [`Outgoing`] at a time: a window of the send queue.
#[derive(Debug)]
pub(crate) struct Window {
    pub(crate) chunks: VecDeque<Chunk>,
    /// Their payload bytes.
    pub(crate) payload: usize,
    /// The compressor, when some of the chunks are messages for the I/O thread to compress;
    /// handed back with [`Outgoing::give_back`] once they are.
    pub(crate) deflater: Option<Box<Deflater>>,
}

/// Part of the outgoing stream.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Whole frames, encoded and masked: by their senders, or taken back from a connection
    /// that died before writing them.
    Encoded(Frames),
    /// A message to be encoded by the I/O thread: a large one, one to compress behind one, or
    /// a compressed one taken back from a connection that died before writing it.
    Message {
        opcode: OpCode,
        payload: Bytes,
        /// Compress it if the connection agreed to permessage-deflate.
        compress: bool,
    },
}

/// Encoded frames and where each starts, so that a connection that dies mid-chunk can hand
/// back the frames the socket has not fully taken, whole, for the next connection.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    pub(crate) bytes: Vec<u8>,
    /// Each frame's start in `bytes`, and its payload length, in order.
    pub(crate) marks: Vec<FrameMark>,
    /// The messages of the compressed frames, by the index of their mark, in order: sent again
    /// (compressed anew) after a reconnect. Apart from the marks, so that a mark stays small.
    originals: Vec<(usize, OpCode, Bytes)>,
    /// Where its buffers go once written: a senders' chunk's spares.
    spares: Option<Arc<Spares>>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FrameMark {
    pub(crate) start: usize,
    /// The message's length (before compression), for `buffered_amount`.
    pub(crate) payload: usize,
}

impl Frames {
    /// Bytes that are not senders' frames (the message layer's own).
    pub(crate) fn unmarked(bytes: Vec<u8>) -> Self {
        Frames {
            bytes,
            ..Frames::default()
        }
    }

    /// Where its buffers go once written, if it is a senders' chunk.
    pub(crate) fn spares(&self) -> Option<&Arc<Spares>> {
        self.spares.as_ref()
    }

    /// Written whole: its buffers go back to the senders if they came from them (and are not
    /// outsized), and are dropped otherwise. Returns the byte buffer if it was not taken back.
    pub(crate) fn recycle(self) -> Option<Vec<u8>> {
        let Frames {
            mut bytes,
            mut marks,
            spares,
            ..
        } = self;
        let Some(spares) = spares else {
            return Some(bytes);
        };
        if bytes.capacity() > CHUNK_CAPACITY * 2 {
            return Some(bytes);
        }
        let mut buffers = spares.lock();
        if buffers.len() < MAX_SPARES {
            bytes.clear();
            marks.clear();
            buffers.push((bytes, marks));
        }
        None
    }

    fn push(&mut self, opcode: OpCode, payload: &[u8], mask: [u8; 4]) {
        self.marks.push(FrameMark {
            start: self.bytes.len(),
            payload: payload.len(),
        });
        encode(opcode, false, payload, mask, &mut self.bytes);
    }

    /// Appends the frame of `original` compressed into `compressed`.
    fn push_compressed(
        &mut self,
        opcode: OpCode,
        compressed: &[u8],
        original: Bytes,
        mask: [u8; 4],
    ) {
        self.marks.push(FrameMark {
            start: self.bytes.len(),
            payload: original.len(),
        });
        self.originals
            .push((self.marks.len() - 1, opcode, original));
        encode(opcode, true, compressed, mask, &mut self.bytes);
    }

    /// Whether some frame is compressed (against one connection's window).
    fn has_compressed(&self) -> bool {
        !self.originals.is_empty()
    }

    /// These frames as chunks for any connection: compressed frames go back to being their
    /// messages (to compress again), the others stay encoded.
    fn into_portable(self, out: &mut VecDeque<Chunk>) {
        if !self.has_compressed() {
            out.push_back(Chunk::Encoded(self));
            return;
        }
        let ends: Vec<usize> = self
            .marks
            .iter()
            .skip(1)
            .map(|mark| mark.start)
            .chain([self.bytes.len()])
            .collect();
        let mut plain = Frames::default();
        let mut originals = self.originals.into_iter().peekable();
        for (i, (mark, end)) in self.marks.into_iter().zip(ends).enumerate() {
            match originals.next_if(|(at, _, _)| *at == i) {
                Some((_, opcode, payload)) => {
                    if !plain.marks.is_empty() {
                        out.push_back(Chunk::Encoded(std::mem::take(&mut plain)));
                    }
                    out.push_back(Chunk::Message {
                        opcode,
                        payload,
                        compress: true,
                    });
                }
                None => {
                    plain.marks.push(FrameMark {
                        start: plain.bytes.len(),
                        payload: mark.payload,
                    });
                    plain.bytes.extend_from_slice(&self.bytes[mark.start..end]);
                }
            }
        }
        if !plain.marks.is_empty() {
            out.push_back(Chunk::Encoded(plain));
        }
    }

    /// The frames from the one that contains byte `offset` on, and the payload bytes of the
    /// frames before it (which the socket has taken whole).
    pub(crate) fn split_off_at_frame(mut self, offset: usize) -> (Frames, usize) {
        let keep_from = self
            .marks
            .partition_point(|mark| mark.start <= offset)
            .max(1)
            - 1;
        let done: usize = self.marks[..keep_from].iter().map(|m| m.payload).sum();
        let Some(first) = self.marks.get(keep_from).map(|mark| mark.start) else {
            return (Frames::default(), done);
        };
        let marks = self.marks[keep_from..]
            .iter()
            .map(|mark| FrameMark {
                start: mark.start - first,
                payload: mark.payload,
            })
            .collect();
        let originals = self
            .originals
            .into_iter()
            .filter(|(at, _, _)| *at >= keep_from)
            .map(|(at, opcode, payload)| (at - keep_from, opcode, payload))
            .collect();
        let bytes = self.bytes.split_off(first);
        (
            Frames {
                bytes,
                marks,
                originals,
                spares: None,
            },
            done,
        )
    }

    /// Splits before the first frame that the socket has not started on, `written` bytes
    /// having been written: the frames it started on (whole), and the rest.
    pub(crate) fn split_at_unstarted(mut self, written: usize) -> (Frames, Frames) {
        let first_unstarted = self.marks.partition_point(|mark| mark.start < written);
        let Some(cut) = self.marks.get(first_unstarted).map(|mark| mark.start) else {
            return (self, Frames::default());
        };
        let rest_marks = self.marks.split_off(first_unstarted);
        let kept_originals = self
            .originals
            .partition_point(|(at, _, _)| *at < first_unstarted);
        let rest_originals = self.originals.split_off(kept_originals);
        let rest = Frames {
            bytes: self.bytes.split_off(cut),
            marks: rest_marks
                .into_iter()
                .map(|mark| FrameMark {
                    start: mark.start - cut,
                    payload: mark.payload,
                })
                .collect(),
            originals: rest_originals
                .into_iter()
                .map(|(at, opcode, payload)| (at - first_unstarted, opcode, payload))
                .collect(),
            spares: None,
        };
        (self, rest)
    }

    /// The payload bytes of every frame.
    pub(crate) fn payload(&self) -> usize {
        self.marks.iter().map(|mark| mark.payload).sum()
    }
}

impl Chunk {
    /// The frames for the socket; encodes a large message (on the I/O thread) into `spare`'s
    /// allocation, if it has one, compressed with `deflater` if it is to be and there is one.
    pub(crate) fn into_frames(
        self,
        spare: &mut Option<Vec<u8>>,
        deflater: Option<&mut Deflater>,
    ) -> Frames {
        match self {
            Chunk::Encoded(frames) => frames,
            Chunk::Message {
                opcode,
                payload,
                compress,
            } => {
                let mut bytes = spare.take().unwrap_or_default();
                bytes.clear();
                let mut frames = Frames {
                    bytes,
                    marks: Vec::with_capacity(1),
                    originals: Vec::new(),
                    spares: None,
                };
                match deflater {
                    Some(deflater) if compress => {
                        let mut compressed = Vec::new();
                        deflater.compress(&payload, &mut compressed);
                        frames.bytes.reserve(compressed.len() + 14);
                        frames.push_compressed(opcode, &compressed, payload, rand::random());
                    }
                    _ => {
                        frames.bytes.reserve(payload.len() + 14);
                        frames.push(opcode, &payload, rand::random());
                    }
                }
                frames
            }
        }
    }

    /// Its size in bytes: encoded frames, or a message's payload.
    fn len(&self) -> usize {
        match self {
            Chunk::Encoded(frames) => frames.bytes.len(),
            Chunk::Message { payload, .. } => payload.len(),
        }
    }

    /// The payload bytes of its messages, for `buffered_amount`.
    pub(crate) fn payload(&self) -> usize {
        match self {
            Chunk::Encoded(frames) => frames.payload(),
            Chunk::Message { payload, .. } => payload.len(),
        }
    }

    fn waits_for_compression(&self) -> bool {
        matches!(self, Chunk::Message { compress: true, .. })
    }
}

impl Outgoing {
    /// Whether the current connection accepts no more data: `send` is refused.
    pub(crate) fn is_closed(&self) -> bool {
        self.gate.closed
    }

    /// Payload bytes waiting in the send queue.
    pub(crate) fn queued_payload(&self) -> usize {
        self.queue.payload
    }

    /// Whether messages wait in the send queue.
    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.chunks.is_empty()
    }

    /// Appends a data message: a small one encoded here, under the lock, behind the frames
    /// before it; a large one as it is.
    pub(crate) fn push(&mut self, text: bool, payload: Bytes) {
        let opcode = OpCode::Data(if text { Data::Text } else { Data::Binary });
        let queue = &mut self.queue;
        queue.payload += payload.len();
        let deflate = &mut self.gate.deflate;
        let compress = deflate.on && payload.len() >= deflate.threshold;
        let later = compress && (deflate.deflater.is_none() || deflate.waiting > 0);
        if payload.len() >= LARGE || later {
            deflate.waiting += usize::from(compress);
            queue.chunks.push_back(Chunk::Message {
                opcode,
                payload,
                compress,
            });
            return;
        }
        let has_room = matches!(
            queue.chunks.back(),
            Some(Chunk::Encoded(frames)) if frames.bytes.len() < LARGE
        );
        if !has_room {
            queue
                .chunks
                .push_back(Chunk::Encoded(self.spares.frames(self.last_fill)));
        }
        let Some(Chunk::Encoded(frames)) = queue.chunks.back_mut() else {
            return;
        };
        match deflate.deflater.as_mut() {
            Some(deflater) if compress => {
                let scratch = &mut deflate.scratch;
                scratch.clear();
                deflater.compress(&payload, scratch);
                frames.push_compressed(opcode, scratch, payload, self.masks.random());
            }
            _ => frames.push(opcode, &payload, self.masks.random()),
        }
        self.last_fill = (frames.bytes.len(), frames.marks.len());
    }

    /// A connection opened: it accepts data, compressed with `deflate` (the compressor and
    /// the threshold from which messages are compressed) when permessage-deflate was agreed.
    pub(crate) fn open_connection(&mut self, deflate: Option<(Deflater, usize)>) {
        let deflate = match deflate {
            Some((deflater, threshold)) => Compression {
                on: true,
                threshold,
                deflater: Some(Box::new(deflater)),
                waiting: self
                    .queue
                    .chunks
                    .iter()
                    .filter(|c| c.waits_for_compression())
                    .count(),
                scratch: Vec::new(),
            },
            None => Compression::default(),
        };
        self.gate = Gate {
            closed: false,
            deflate,
        };
    }

    /// The current connection takes no more data: a close frame went (or goes next) either
    /// way. What waits in the queue stays there, for the next connection.
    pub(crate) fn close_gate(&mut self) {
        self.gate.closed = true;
    }

    /// The connection is over. `unsent`, the frames it did not write whole (`payload` bytes of
    /// messages), goes back to the front of the queue, and everything queued is made fit for
    /// the next connection, whatever it agrees to (compressed frames go back to being their
    /// messages). With no connection to follow, the gate stays closed and the queue is
    /// dropped: `buffered_amount` keeps counting it, as JS does after the close.
    pub(crate) fn end_connection(
        &mut self,
        unsent: VecDeque<Chunk>,
        payload: usize,
        another_follows: bool,
    ) {
        self.gate = Gate {
            closed: !another_follows,
            deflate: Compression::default(),
        };
        if !another_follows {
            self.queue = SendQueue::default();
            return;
        }
        let queued = std::mem::take(&mut self.queue.chunks);
        let mut portable = VecDeque::with_capacity(unsent.len() + queued.len());
        for chunk in unsent.into_iter().chain(queued) {
            match chunk {
                Chunk::Encoded(frames) => frames.into_portable(&mut portable),
                message => portable.push_back(message),
            }
        }
        self.queue.chunks = portable;
        self.queue.payload += payload;
    }

    /// The I/O thread has compressed what it took with the compressor: it goes back.
    pub(crate) fn give_back(&mut self, deflater: Box<Deflater>) {
        if self.gate.deflate.on {
            self.gate.deflate.deflater = Some(deflater);
        }
    }

    /// Takes queued chunks from the front until they hold `limit` bytes (at least one
    /// chunk), with their payload byte count, and the compressor if some of them wait to be
    /// compressed. The rest stays queued: a socket that drains a little takes a little.
    pub(crate) fn take_window(&mut self, limit: usize) -> Window {
        let mut chunks = VecDeque::new();
        let mut bytes = 0;
        let mut payload = 0;
        let mut to_compress = 0;
        while bytes < limit.max(1) {
            let Some(chunk) = self.queue.chunks.pop_front() else {
                break;
            };
            bytes += chunk.len();
            payload += chunk.payload();
            to_compress += usize::from(chunk.waits_for_compression());
            chunks.push_back(chunk);
        }
        self.queue.payload -= payload;
        let deflate = &mut self.gate.deflate;
        let deflater = if to_compress > 0 {
            deflate.waiting -= to_compress.min(deflate.waiting);
            deflate.deflater.take()
        } else {
            None
        };
        Window {
            chunks,
            payload,
            deflater,
        }
    }

    /// Takes everything queued (see [`take_window`](Self::take_window)).
    pub(crate) fn take(&mut self) -> Window {
        self.take_window(usize::MAX)
    }
}

/// Writes one final, masked frame (RFC 6455 §5.2–5.3) to `out`; `rsv1` marks a compressed
/// message (RFC 7692 §6).
pub(crate) fn encode(opcode: OpCode, rsv1: bool, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    let header = FrameHeader {
        is_final: true,
        rsv1,
        opcode,
        mask: Some(mask),
        ..FrameHeader::default()
    };
    // Writing into a Vec cannot fail.
    let _ = header.format(payload.len() as u64, out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `data` with the repeating 4-byte `mask`, eight bytes at a time.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("chunks of eight")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    // The tail starts at a multiple of eight, so the mask starts over at its first byte.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_the_rfc_definition() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        for len in [0, 1, 3, 7, 8, 9, 15, 16, 17, 100] {
            let original: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut masked = original.clone();
            apply_mask(&mut masked, mask);
            for (i, byte) in masked.iter().enumerate() {
                assert_eq!(*byte, original[i] ^ mask[i % 4], "len {len}, byte {i}");
            }
        }
    }

    #[test]
    fn encoded_frames_parse_back() {
        for len in [0usize, 5, 125, 126, 16_383, 16_384, 65_535, 65_536, 100_000] {
            let payload = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
            let mut outgoing = Outgoing::default();
            outgoing.push(false, payload.clone());
            let Window {
                chunks,
                payload: counted,
                ..
            } = outgoing.take();
            assert_eq!(counted, len);
            let bytes: Vec<u8> = chunks
                .into_iter()
                .flat_map(|chunk| chunk.into_frames(&mut None, None).bytes)
                .collect();
            let mut cursor = std::io::Cursor::new(&bytes);
            let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!(length as usize, len);
            assert!(header.is_final);
            assert_eq!(header.opcode, OpCode::Data(Data::Binary));
            let mask = header.mask.expect("client frames are masked");
            let start = cursor.position() as usize;
            let mut body = bytes[start..].to_vec();
            apply_mask(&mut body, mask);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn written_chunks_lend_their_buffers_to_later_ones_up_to_a_bound() {
        let mut outgoing = Outgoing::default();
        for _ in 0..(MAX_SPARES + 4) * 300 {
            outgoing.push(false, Bytes::from_static(&[1; 64]));
        }
        let chunks = outgoing.take().chunks;
        assert!(chunks.len() > MAX_SPARES);
        let mut addresses = Vec::new();
        for chunk in chunks {
            let frames = chunk.into_frames(&mut None, None);
            addresses.push(frames.bytes.as_ptr());
            assert!(frames.recycle().is_none(), "a senders' chunk goes back");
        }
        assert_eq!(outgoing.spares.lock().len(), MAX_SPARES);
        // The next chunk is written into a spare buffer, emptied.
        outgoing.push(true, Bytes::from_static(b"again"));
        assert_eq!(outgoing.spares.lock().len(), MAX_SPARES - 1);
        let Some(Chunk::Encoded(frames)) = outgoing.take().chunks.pop_front() else {
            panic!("an encoded chunk")
        };
        assert!(addresses.contains(&frames.bytes.as_ptr()));
        assert_eq!(frames.marks.len(), 1);
        assert_eq!(frames.payload(), 5);
        // Frames of other origins are not kept.
        assert!(Frames::unmarked(vec![0; 8]).recycle().is_some());
        // A quiet connection lets them all go.
        assert!(Arc::ptr_eq(frames.spares().unwrap(), &outgoing.spares));
        assert!(frames.recycle().is_none());
        outgoing.spares.clear();
        assert!(outgoing.spares.lock().is_empty());
    }

    #[test]
    fn small_frames_share_a_chunk_and_keep_their_order() {
        let mut outgoing = Outgoing::default();
        for i in 0..10u8 {
            outgoing.push(true, Bytes::from(vec![b'a' + i]));
        }
        outgoing.push(false, Bytes::from(vec![0u8; LARGE]));
        outgoing.push(true, Bytes::from_static(b"after"));
        let Window {
            chunks,
            payload: counted,
            ..
        } = outgoing.take();
        assert_eq!(counted, 10 + LARGE + 5);
        assert_eq!(chunks.len(), 3);
        assert!(matches!(chunks[1], Chunk::Message { .. }));
    }

    /// Decodes every frame of `chunks` (compressing the I/O thread's share with `deflater`)
    /// into (rsv1, payload as sent).
    fn sent(chunks: VecDeque<Chunk>, mut deflater: Option<&mut Deflater>) -> Vec<(bool, Vec<u8>)> {
        let bytes: Vec<u8> = chunks
            .into_iter()
            .flat_map(|chunk| chunk.into_frames(&mut None, deflater.as_deref_mut()).bytes)
            .collect();
        let mut cursor = std::io::Cursor::new(&bytes);
        let mut out = Vec::new();
        while let Some((header, length)) = FrameHeader::parse(&mut cursor).unwrap() {
            let start = cursor.position() as usize;
            let mut body = bytes[start..start + length as usize].to_vec();
            apply_mask(&mut body, header.mask.unwrap());
            cursor.set_position((start + length as usize) as u64);
            out.push((header.rsv1, body));
        }
        out
    }

    #[test]
    fn compressed_messages_keep_their_order_across_both_threads() {
        use crate::deflate::Inflater;
        let mut outgoing = Outgoing::default();
        outgoing.open_connection(Some((Deflater::new(15, false), 10)));
        let text = |i: usize| Bytes::from(format!("message number {i} of many").repeat(i + 1));
        outgoing.push(true, text(0));
        outgoing.push(true, Bytes::from_static(b"tiny"));
        outgoing.push(false, Bytes::from(vec![b'x'; LARGE]));
        outgoing.push(true, text(1));
        let mut taken = outgoing.take();
        let mut deflater = taken.deflater.take().expect("a large message waits for it");
        // The compressor is away: later messages wait for the I/O thread too.
        outgoing.push(true, text(2));
        assert!(matches!(
            outgoing.queue.chunks.back(),
            Some(Chunk::Message { compress: true, .. })
        ));
        let mut frames = sent(taken.chunks, Some(&mut deflater));
        outgoing.give_back(deflater);
        let mut taken = outgoing.take();
        let mut deflater = taken.deflater.take().unwrap();
        frames.extend(sent(taken.chunks, Some(&mut deflater)));
        outgoing.give_back(deflater);
        outgoing.push(true, text(3));
        frames.extend(sent(outgoing.take().chunks, None));

        let mut inflater = Inflater::new(15, false);
        let want = [
            text(0),
            Bytes::from_static(b"tiny"),
            Bytes::from(vec![b'x'; LARGE]),
            text(1),
            text(2),
            text(3),
        ];
        assert_eq!(frames.len(), want.len());
        for ((compressed, payload), want) in frames.into_iter().zip(want) {
            let got = if compressed {
                let mut out = Vec::new();
                inflater.inflate(&payload, &mut out, 1 << 20).unwrap();
                inflater.finish(&mut out, 1 << 20).unwrap();
                out
            } else {
                payload
            };
            assert_eq!(got, want);
        }
    }

    #[test]
    fn compressed_frames_go_back_to_being_messages_for_the_next_connection() {
        let mut outgoing = Outgoing::default();
        outgoing.open_connection(Some((Deflater::new(15, false), 10)));
        outgoing.push(true, Bytes::from_static(b"small"));
        outgoing.push(true, Bytes::from_static(b"long enough to compress"));
        outgoing.push(true, Bytes::from_static(b"tiny"));
        let taken = outgoing.take();
        outgoing.end_connection(taken.chunks, taken.payload, true);
        let taken = outgoing.take();
        assert_eq!(taken.payload, 5 + 23 + 4);
        assert!(taken.deflater.is_none());
        let frames = sent(taken.chunks, None);
        let payloads: Vec<&[u8]> = frames.iter().map(|(_, p)| &p[..]).collect();
        assert_eq!(
            payloads,
            [&b"small"[..], b"long enough to compress", b"tiny"]
        );
        assert!(frames.iter().all(|(rsv1, _)| !rsv1));
    }

    #[test]
    fn a_chunk_splits_at_the_frame_that_holds_an_offset() {
        let mut frames = Frames::default();
        for len in [10usize, 200, 3] {
            frames.push(OpCode::Data(Data::Binary), &vec![7u8; len], rand::random());
        }
        let starts: Vec<usize> = frames.marks.iter().map(|m| m.start).collect();
        let total = frames.bytes.len();
        // Nothing written: all of it stays.
        let (kept, done) = Frames {
            bytes: frames.bytes.clone(),
            marks: frames.marks.clone(),
            originals: Vec::new(),
            spares: None,
        }
        .split_off_at_frame(0);
        assert_eq!((kept.bytes.len(), kept.payload(), done), (total, 213, 0));
        // Written into the middle of the second frame: it is kept whole.
        let (kept, done) = frames.split_off_at_frame(starts[1] + 5);
        assert_eq!(done, 10);
        assert_eq!(kept.payload(), 203);
        assert_eq!(kept.bytes.len(), total - starts[1]);
        assert_eq!(kept.marks[0].start, 0);
        assert_eq!(kept.marks[1].start, starts[2] - starts[1]);
    }
}
