//! The socket as the message layer sees it once the connection is open. Reads come from the
//! socket (they note the time, for keepalive); writes of the message layer's own frames
//! (pongs, pings, close frames) queue behind the senders' frames; a flush writes everything
//! it can. When the connection dies, the senders'
//! frames that the socket has not fully taken are handed back whole, for the next one.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;

use crate::deflate::Deflater;
use super::stream::Stream;
use crate::outgoing::{Chunk, Frames, LARGE};

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
    /// When bytes last came from the server.
    last_read: Instant,
}

/// A chunk waiting to be written: senders' frames, or the message layer's own (pongs, close frames),
/// which belong to this connection only.
#[derive(Debug)]
struct Pending {
    frames: Frames,
    control: bool,
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
            last_read: Instant::now(),
        }
    }

    pub(crate) fn tcp(&mut self) -> &mut TcpStream {
        self.socket.tcp()
    }

    /// When bytes last came from the server (or the connection opened).
    pub(crate) fn last_read(&self) -> Instant {
        self.last_read
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
            self.pending.push_back(Pending {
                frames,
                control: false,
            });
        }
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
        for (i, pending) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if pending.control {
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
        (unsent, unsent_payload, done)
    }

    /// Writes pending bytes until the socket refuses more (`WouldBlock`) or none are left.
    fn push(&mut self) -> io::Result<()> {
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
                Err(err) => return Err(err),
            };
            while n > 0 {
                let first_left = self.pending[0].frames.bytes.len() - self.written;
                if n < first_left {
                    self.written += n;
                    break;
                }
                n -= first_left;
                self.written = 0;
                if let Some(done) = self.pending.pop_front() {
                    if !done.control {
                        self.written_payload += done.frames.payload();
                    }
                    let mut bytes = done.frames.bytes;
                    if bytes.capacity() >= LARGE {
                        bytes.clear();
                        self.spare = Some(bytes);
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

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A pong behind a 16 MiB message must not copy it: the message layer's frames get
        // chunks of their own, which later ones may join.
        match self.pending.back_mut() {
            Some(last) if last.control => last.frames.bytes.extend_from_slice(buf),
            _ => self.pending.push_back(Pending {
                frames: Frames::unmarked(buf.to_vec()),
                control: true,
            }),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}
