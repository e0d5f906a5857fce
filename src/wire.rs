//! The outgoing byte stream. Senders encode their frames on their own thread (header, mask,
//! payload) into the shared [`Outgoing`] buffer; the I/O thread only moves those bytes to the
//! socket, behind what tungstenite wrote itself (pongs, close frames) through [`Wire`]. So a
//! send costs the caller what a plain tungstenite write would, and the I/O thread almost
//! nothing per message.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};

use bytes::Bytes;
use mio::net::TcpStream;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::stream::Stream;

/// A message at least this large is not encoded by its sender: the send stays O(1) for the
/// caller (a game or control loop), and the I/O thread encodes it when its turn comes.
const LARGE: usize = 16 << 10;

/// Frames from senders, in order, not yet taken by the I/O thread.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    chunks: VecDeque<Chunk>,
    /// Payload bytes in `chunks`, for `buffered_amount`.
    payload: usize,
    /// No more frames: the close frame is (about to be) written, or the connection is over.
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
    fn into_bytes(self, spare: &mut Option<Vec<u8>>) -> Vec<u8> {
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

/// The socket as tungstenite sees it once open: reads come from the socket; writes (pongs,
/// close frames) are appended behind the senders' frames; a flush writes everything.
#[derive(Debug)]
pub(crate) struct Wire {
    socket: Stream,
    pending: VecDeque<Vec<u8>>,
    /// How much of the first pending chunk is already written.
    written: usize,
    /// The allocation of the last large chunk written, for the next large message: a fresh
    /// one would come from `mmap` and fault in every page again.
    spare: Option<Vec<u8>>,
}

impl Wire {
    pub(crate) fn new(socket: Stream) -> Self {
        Wire {
            socket,
            pending: VecDeque::new(),
            written: 0,
            spare: None,
        }
    }

    pub(crate) fn tcp(&mut self) -> &mut TcpStream {
        self.socket.tcp()
    }

    /// Queues the senders' frames behind what is pending.
    pub(crate) fn append(&mut self, chunks: VecDeque<Chunk>) {
        for chunk in chunks {
            let bytes = chunk.into_bytes(&mut self.spare);
            self.pending.push_back(bytes);
        }
    }

    /// Writes pending bytes until the socket refuses more (`WouldBlock`) or none are left.
    fn push(&mut self) -> io::Result<()> {
        while let Some(first) = self.pending.front() {
            // Up to 16 chunks per system call, without allocating for the list.
            let mut slices = [IoSlice::new(&[]); 16];
            slices[0] = IoSlice::new(&first[self.written..]);
            let mut count = 1;
            for chunk in self.pending.iter().skip(1).take(slices.len() - 1) {
                slices[count] = IoSlice::new(chunk);
                count += 1;
            }
            let mut n = match self.socket.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(err) => return Err(err),
            };
            while n > 0 {
                let first_left = self.pending[0].len() - self.written;
                if n < first_left {
                    self.written += n;
                    break;
                }
                n -= first_left;
                if let Some(mut done) = self.pending.pop_front() {
                    if done.capacity() >= LARGE {
                        done.clear();
                        self.spare = Some(done);
                    }
                }
                self.written = 0;
            }
        }
        self.socket.flush()
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buf)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.pending.back_mut() {
            Some(last) => last.extend_from_slice(buf),
            None => self.pending.push_back(buf.to_vec()),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
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
