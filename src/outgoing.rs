//! The senders' side of the outgoing byte stream: a sender frames and masks its message on its
//! own thread (header, mask, payload) into [`Outgoing`], behind a short lock; the I/O thread's
//! writer (`io::wire`) only moves those bytes to the socket. So a send costs the caller what a
//! plain tungstenite write would, and the I/O thread almost nothing per message.

use std::collections::VecDeque;

use bytes::Bytes;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// A message at least this large is not encoded by its sender: the send stays O(1) for the
/// caller (a game or control loop), and the I/O thread encodes it when its turn comes.
pub(crate) const LARGE: usize = 16 << 10;

/// Frames from senders, in order, not yet taken by the I/O thread.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    chunks: VecDeque<Chunk>,
    /// Payload bytes in `chunks`, for `buffered_amount`.
    payload: usize,
    /// No more frames on this connection: its close frame is (about to be) written, or it is
    /// over. Per connection: a new connection reopens it.
    pub(crate) closed: bool,
}

/// Part of the outgoing stream.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Whole frames, encoded and masked: by their senders, or taken back from a connection
    /// that died before writing them.
    Encoded(Frames),
    /// A large message, to be encoded by the I/O thread.
    Large { opcode: OpCode, payload: Bytes },
}

/// Encoded frames and where each starts, so that a connection that dies mid-chunk can hand
/// back the frames the socket has not fully taken, whole, for the next connection.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    pub(crate) bytes: Vec<u8>,
    /// Each frame's start in `bytes`, and its payload length, in order.
    pub(crate) marks: Vec<FrameMark>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameMark {
    pub(crate) start: usize,
    pub(crate) payload: usize,
}

impl Frames {
    fn with_capacity(bytes: usize) -> Self {
        Frames {
            bytes: Vec::with_capacity(bytes),
            marks: Vec::new(),
        }
    }

    fn push(&mut self, opcode: OpCode, payload: &[u8]) {
        self.marks.push(FrameMark {
            start: self.bytes.len(),
            payload: payload.len(),
        });
        encode(opcode, payload, &mut self.bytes);
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
        let bytes = self.bytes.split_off(first);
        (Frames { bytes, marks }, done)
    }

    /// The payload bytes of every frame.
    pub(crate) fn payload(&self) -> usize {
        self.marks.iter().map(|mark| mark.payload).sum()
    }
}

impl Chunk {
    /// The frames for the socket; encodes a large message (on the I/O thread) into `spare`'s
    /// allocation, if it has one.
    pub(crate) fn into_frames(self, spare: &mut Option<Vec<u8>>) -> Frames {
        match self {
            Chunk::Encoded(frames) => frames,
            Chunk::Large { opcode, payload } => {
                let mut bytes = spare.take().unwrap_or_default();
                bytes.clear();
                bytes.reserve(payload.len() + 14);
                let mut frames = Frames {
                    bytes,
                    marks: Vec::with_capacity(1),
                };
                frames.push(opcode, &payload);
                frames
            }
        }
    }
}

impl Outgoing {
    /// Appends a data message: a small one encoded here, under the lock, behind the frames
    /// before it; a large one as it is.
    pub(crate) fn push(&mut self, text: bool, payload: Bytes) {
        let opcode = OpCode::Data(if text { Data::Text } else { Data::Binary });
        self.payload += payload.len();
        if payload.len() >= LARGE {
            self.chunks.push_back(Chunk::Large { opcode, payload });
            return;
        }
        let has_room = matches!(
            self.chunks.back(),
            Some(Chunk::Encoded(frames)) if frames.bytes.len() < LARGE
        );
        if !has_room {
            self.chunks
                .push_back(Chunk::Encoded(Frames::with_capacity(LARGE * 2)));
        }
        if let Some(Chunk::Encoded(frames)) = self.chunks.back_mut() {
            frames.push(opcode, &payload);
        }
    }

    /// Puts frames that a dead connection did not write back in front of what waits, for the
    /// next connection; `payload` is their payload byte count.
    pub(crate) fn put_back(&mut self, frames: VecDeque<Chunk>, payload: usize) {
        for chunk in frames.into_iter().rev() {
            self.chunks.push_front(chunk);
        }
        self.payload += payload;
    }

    /// Takes everything queued, with its payload byte count.
    pub(crate) fn take(&mut self) -> (VecDeque<Chunk>, usize) {
        (
            std::mem::take(&mut self.chunks),
            std::mem::take(&mut self.payload),
        )
    }
}

/// Writes one final, masked frame (RFC 6455 §5.2–5.3) to `out`.
fn encode(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    let mask: [u8; 4] = rand::random();
    let header = FrameHeader {
        is_final: true,
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
            let (chunks, counted) = outgoing.take();
            assert_eq!(counted, len);
            let bytes: Vec<u8> = chunks
                .into_iter()
                .flat_map(|chunk| chunk.into_frames(&mut None).bytes)
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
    fn small_frames_share_a_chunk_and_keep_their_order() {
        let mut outgoing = Outgoing::default();
        for i in 0..10u8 {
            outgoing.push(true, Bytes::from(vec![b'a' + i]));
        }
        outgoing.push(false, Bytes::from(vec![0u8; LARGE]));
        outgoing.push(true, Bytes::from_static(b"after"));
        let (chunks, counted) = outgoing.take();
        assert_eq!(counted, 10 + LARGE + 5);
        assert_eq!(chunks.len(), 3);
        assert!(matches!(chunks[1], Chunk::Large { .. }));
    }

    #[test]
    fn a_chunk_splits_at_the_frame_that_holds_an_offset() {
        let mut frames = Frames::default();
        for len in [10usize, 200, 3] {
            frames.push(OpCode::Data(Data::Binary), &vec![7u8; len]);
        }
        let starts: Vec<usize> = frames.marks.iter().map(|m| m.start).collect();
        let total = frames.bytes.len();
        // Nothing written: all of it stays.
        let (kept, done) = Frames {
            bytes: frames.bytes.clone(),
            marks: frames.marks.clone(),
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
