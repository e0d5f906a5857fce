//! The socket as the message layer sees it once the connection is open. Reads come from the
//! socket (they note the time, for keepalive); writes of the message layer's own frames
//! (pongs, pings, close frames) queue behind the senders' frames; a flush writes everything
//! it can, and notes the time when a socket that pushed back takes bytes again (the kernel
//! frees send buffer only when the peer acknowledges, so that keeps a peer alive, as reads
//! do). When the server's close frame comes, the senders' frames not yet
//! started are withdrawn, so that the reply is not stuck behind them; when the connection
//! dies, the senders' frames that the socket has not fully taken are handed back whole, for
//! the next one.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use std::time::Instant;

use mio::net::TcpStream;

use super::stream::Stream;
use crate::deflate::Deflater;
use crate::outgoing::{Chunk, Frames, LARGE, Spares};

/// The connection's socket and the bytes waiting to be written to it, oldest first.
#[derive(Debug)]
pub(crate) struct Wire {
    socket: Stream,
    pending: VecDeque<Pending>,
    /// How much of the first pending chunk is already written.
    written: usize,
    /// Payload bytes of senders' frames written whole since the last
    /// [`take_written_payload`](Self::take_written_payload).
    written_payload: usize,
    /// The allocation of the last large chunk written, for the next large message: a fresh
    /// one would come from `mmap` and fault in every page again.
    spare: Option<Vec<u8>>,
    /// Where the senders' chunks go back once written (learnt from the first one): let go
    /// with the spare when the connection is quiet.
    senders_spares: Option<Arc<Spares>>,
    /// Bytes in `pending` not yet written.
    pending_bytes: usize,
    /// Senders' frames taken out of `pending` when the server's close frame came, oldest
    /// first: handed back with the unsent ones.
    withdrawn: VecDeque<Chunk>,
    /// When bytes last came from the server.
    last_read: Instant,
    /// The last write found the socket's send buffer full.
    pushed_back: bool,
    /// When the socket last took bytes after pushing back: the peer acknowledged earlier ones.
    last_drain: Instant,
}

/// The most bytes of pongs that wait unwritten before a new one replaces them: 32 of the
/// largest (127 bytes each), plenty for a peer that pings in bursts and reads.
const PONG_BACKLOG: usize = 4 << 10;

/// A chunk waiting to be written: senders' frames, or the message layer's own (pongs, pings,
/// close frames), which belong to this connection only.
#[derive(Debug)]
struct Pending {
    frames: Frames,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Senders' frames.
    Data,
    /// Control frames of the message layer.
    Control,
    /// Pongs alone, at most [`PONG_BACKLOG`] bytes of them (see
    /// [`queue_control`](Wire::queue_control)).
    Pong,
}

impl Wire {
    /// The socket of a connection that just opened.
    pub(crate) fn new(socket: Stream) -> Self {
        Wire {
            socket,
            pending: VecDeque::new(),
            written: 0,
            written_payload: 0,
            spare: None,
            senders_spares: None,
            pending_bytes: 0,
            withdrawn: VecDeque::new(),
            last_read: Instant::now(),
            pushed_back: false,
            last_drain: Instant::now(),
        }
    }

    /// Drops the buffer kept for framing the next message, and the senders' spare buffers.
    pub(crate) fn release_spare(&mut self) {
        self.spare = None;
        if let Some(spares) = &self.senders_spares {
            spares.clear();
        }
    }

    pub(crate) fn tcp(&mut self) -> &mut TcpStream {
        self.socket.tcp()
    }

    /// When bytes last came from the server (or the connection opened).
    pub(crate) fn last_read(&self) -> Instant {
        self.last_read
    }

    /// When a socket that pushed back last took bytes again (or the connection opened). A
    /// write into a send buffer with room says nothing of the peer; room that comes back
    /// does: the kernel frees it only as the peer acknowledges.
    pub(crate) fn last_drain(&self) -> Instant {
        self.last_drain
    }

    /// Bytes queued and not yet written.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Counts the time from now, as if bytes had just come: reading resumes after a pause.
    pub(crate) fn restart_read_clock(&mut self) {
        self.last_read = Instant::now();
    }

    /// Queues the senders' frames behind what is pending; messages left to the I/O thread are
    /// encoded now, compressed with `deflater` when they are to be.
    pub(crate) fn append(&mut self, chunks: VecDeque<Chunk>, mut deflater: Option<&mut Deflater>) {
        for chunk in chunks {
            let frames = chunk.into_frames(&mut self.spare, deflater.as_deref_mut());
            self.pending_bytes += frames.bytes.len();
            self.pending.push_back(Pending {
                frames,
                kind: Kind::Data,
            });
        }
    }

    /// Queues a control frame of the message layer (`pong`: a pong). Pongs that wait unstarted
    /// at the end of the queue share a chunk, so a peer that reads gets one for every ping;
    /// once they hold [`PONG_BACKLOG`] bytes, or while the socket pushes back, a new pong
    /// replaces them all (RFC 6455 §5.5.3 allows answering only the latest ping). So a ping
    /// flood from a peer that reads nothing costs one pong, not one per ping.
    pub(crate) fn queue_control(&mut self, frame: &[u8], pong: bool) {
        let started = self.pending.len() == 1 && self.written > 0;
        let pushed_back = self.pushed_back;
        match self.pending.back_mut() {
            Some(last) if pong && last.kind == Kind::Pong && !started => {
                let bytes = &mut last.frames.bytes;
                if pushed_back || bytes.len() + frame.len() > PONG_BACKLOG {
                    self.pending_bytes -= bytes.len();
                    bytes.clear();
                }
                bytes.extend_from_slice(frame);
            }
            // A pong behind a 16 MiB message must not copy it: the message layer's frames
            // get chunks of their own, which later ones may join.
            Some(last) if !pong && last.kind == Kind::Control => {
                last.frames.bytes.extend_from_slice(frame);
            }
            _ => self.pending.push_back(Pending {
                frames: Frames::unmarked(frame.to_vec()),
                kind: if pong { Kind::Pong } else { Kind::Control },
            }),
        }
        self.pending_bytes += frame.len();
    }

    /// Takes the senders' frames that the socket has not started on out of the queue (a
    /// frame it has started on must be finished first), so that the close reply goes next.
    /// They are handed back by [`take_unsent`](Self::take_unsent).
    pub(crate) fn withdraw_unstarted(&mut self) {
        let written = self.written;
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for (i, pending) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if pending.kind != Kind::Data {
                kept.push_back(pending);
                continue;
            }
            let (started, rest) = if i == 0 {
                pending.frames.split_at_unstarted(written)
            } else {
                (Frames::default(), pending.frames)
            };
            if !started.bytes.is_empty() {
                kept.push_back(Pending {
                    frames: started,
                    kind: Kind::Data,
                });
            }
            if !rest.marks.is_empty() {
                self.pending_bytes -= rest.bytes.len();
                self.withdrawn.push_back(Chunk::Encoded(rest));
            }
        }
        // `written` still counts into the first chunk: a started one stays first, with its
        // started frames; an unstarted one had `written` at zero.
        self.pending = kept;
    }

    /// Payload bytes of senders' frames written whole since the last call.
    pub(crate) fn take_written_payload(&mut self) -> usize {
        std::mem::take(&mut self.written_payload)
    }

    /// The senders' frames that the socket has not taken whole, oldest first, with their
    /// payload byte count, and the payload written whole but not yet taken by
    /// [`take_written_payload`](Self::take_written_payload). A frame cut short by the socket
    /// is handed back whole: the server discards a partial frame with the connection. Pongs
    /// and close frames belong to this connection and are dropped.
    pub(crate) fn take_unsent(&mut self) -> (VecDeque<Chunk>, usize, usize) {
        let mut unsent = VecDeque::new();
        let mut unsent_payload = 0;
        let mut done = self.take_written_payload();
        let written = std::mem::take(&mut self.written);
        self.pending_bytes = 0;
        for (i, pending) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if pending.kind != Kind::Data {
                continue;
            }
            let frames = if i == 0 {
                let (rest, written_whole) = pending.frames.split_off_at_frame(written);
                done += written_whole;
                rest
            } else {
                pending.frames
            };
            if !frames.marks.is_empty() {
                unsent_payload += frames.payload();
                unsent.push_back(Chunk::Encoded(frames));
            }
        }
        for chunk in std::mem::take(&mut self.withdrawn) {
            unsent_payload += chunk.payload();
            unsent.push_back(chunk);
        }
        (unsent, unsent_payload, done)
    }

    /// Writes pending bytes until the socket refuses more (`WouldBlock`) or none are left.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while let Some(first) = self.pending.front() {
            // Up to 16 chunks per system call, without allocating for the list.
            let mut slices = [IoSlice::new(&[]); 16];
            slices[0] = IoSlice::new(&first.frames.bytes[self.written..]);
            let mut count = 1;
            for chunk in self.pending.iter().skip(1).take(slices.len() - 1) {
                slices[count] = IoSlice::new(&chunk.frames.bytes);
                count += 1;
            }
            let mut n = match self.socket.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(err) => {
                    self.pushed_back = err.kind() == io::ErrorKind::WouldBlock;
                    return Err(err);
                }
            };
            self.pending_bytes -= n;
            if std::mem::take(&mut self.pushed_back) {
                self.last_drain = Instant::now();
            }
            while n > 0 {
                let first_left = self.pending[0].frames.bytes.len() - self.written;
                if n < first_left {
                    self.written += n;
                    break;
                }
                n -= first_left;
                self.written = 0;
                if let Some(done) = self.pending.pop_front() {
                    if done.kind == Kind::Data {
                        self.written_payload += done.frames.payload();
                    }
                    if self.senders_spares.is_none() {
                        self.senders_spares = done.frames.spares().cloned();
                    }
                    if let Some(mut bytes) = done.frames.recycle() {
                        if bytes.capacity() >= LARGE {
                            bytes.clear();
                            self.spare = Some(bytes);
                        }
                    }
                }
            }
        }
        self.socket.flush()
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        if n > 0 {
            self.last_read = Instant::now();
        }
        Ok(n)
    }
}
