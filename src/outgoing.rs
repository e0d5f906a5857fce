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
    /// Small frames, encoded and masked by their senders.
    Encoded(Vec<u8>),
    /// A large message, to be encoded by the I/O thread.
    Large { opcode: OpCode, payload: Bytes },
}

impl Chunk {
    /// The bytes for the socket; encodes a large message (on the I/O thread) into `spare`'s
    /// allocation, if it has one.
    pub(crate) fn into_bytes(self, spare: &mut Option<Vec<u8>>) -> Vec<u8> {
        match self {
            Chunk::Encoded(bytes) => bytes,
            Chunk::Large { opcode, payload } => {
                let mut bytes = spare.take().unwrap_or_default();
                bytes.reserve(payload.len() + 14);
                encode(opcode, &payload, &mut bytes);
                bytes
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
        let has_room =
            matches!(self.chunks.back(), Some(Chunk::Encoded(bytes)) if bytes.len() < LARGE);
        if !has_room {
            self.chunks
                .push_back(Chunk::Encoded(Vec::with_capacity(LARGE * 2)));
        }
        if let Some(Chunk::Encoded(chunk)) = self.chunks.back_mut() {
            encode(opcode, &payload, chunk);
        }
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
                .flat_map(|chunk| chunk.into_bytes(&mut None))
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
}
