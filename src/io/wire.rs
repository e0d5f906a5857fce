//! The socket as tungstenite sees it once the connection is open. Reads come from the socket
//! (and pass a [`CloseWatch`], which sees the server's close code as it was sent); writes from
//! tungstenite (pongs, close frames) queue behind the senders' frames; a flush writes
//! everything it can.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};

use mio::net::TcpStream;

use super::close_watch::{CloseWatch, PeerClose};
use super::stream::Stream;
use crate::outgoing::{Chunk, LARGE};

/// The connection's socket and the bytes waiting to be written to it, oldest first.
#[derive(Debug)]
pub(crate) struct Wire {
    socket: Stream,
    pending: VecDeque<Vec<u8>>,
    /// How much of the first pending chunk is already written.
    written: usize,
    /// Whether the last pending chunk holds tungstenite's own frames, which later ones may
    /// join. Senders' chunks never grow: a pong behind a 16 MiB message must not copy it.
    last_is_control: bool,
    /// The allocation of the last large chunk written, for the next large message: a fresh
    /// one would come from `mmap` and fault in every page again.
    spare: Option<Vec<u8>>,
    close_watch: CloseWatch,
}

impl Wire {
    /// The socket, with `read_ahead` bytes already read from it (after the handshake's head).
    pub(crate) fn new(socket: Stream, read_ahead: &[u8]) -> Self {
        let mut close_watch = CloseWatch::default();
        close_watch.feed(read_ahead);
        Wire {
            socket,
            pending: VecDeque::new(),
            written: 0,
            last_is_control: false,
            spare: None,
            close_watch,
        }
    }

    pub(crate) fn tcp(&mut self) -> &mut TcpStream {
        self.socket.tcp()
    }

    /// The server's first close frame, as sent, once it has been read.
    pub(crate) fn peer_close(&self) -> Option<PeerClose> {
        self.close_watch.first_close()
    }

    /// Queues the senders' frames behind what is pending.
    pub(crate) fn append(&mut self, chunks: VecDeque<Chunk>) {
        for chunk in chunks {
            let bytes = chunk.into_bytes(&mut self.spare);
            self.pending.push_back(bytes);
            self.last_is_control = false;
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
                if self.pending.is_empty() {
                    self.last_is_control = false;
                }
            }
        }
        self.socket.flush()
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        self.close_watch.feed(&buf[..n]);
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.pending.back_mut() {
            Some(last) if self.last_is_control => last.extend_from_slice(buf),
            _ => {
                self.pending.push_back(buf.to_vec());
                self.last_is_control = true;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}
