//! The message layer of an open connection, ours since tungstenite's read path refuses RSV1
//! and has no hook for extensions. tungstenite gives the frame types and formats our frame
//! headers; the server's headers are parsed here ([`header`]), and everything above them:
//! the checks on each header before its payload is buffered (mask, RSV bits, opcodes,
//! control frame rules, size limits), fragment reassembly with control frames in between,
//! UTF-8 checked as the bytes arrive (an invalid byte fails before its frame is whole),
//! inflating compressed messages under the size limit, the auto-pong and the close handshake
//! with its close-code checks.

mod assemble;
mod header;
mod utf8;

use std::io::{self, Read};

use bytes::{Buf, Bytes, BytesMut};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

use super::wire::Wire;
use crate::deflate::Inflater;
use crate::error::Error;
use crate::event::Message;
use crate::queue::Received;
use assemble::Partial;
use utf8::Utf8Stream;

/// Payloads up to this size are copied out of the read buffer rather than shared with it: a
/// whole message of this size goes to the event queue as [`Received::Small`], which copies it.
const SMALL: usize = 512;

/// The most a read grows to while reads keep filling the room they are given (tungstenite's
/// default read size): an idle connection keeps the configured size, a busy one makes fewer
/// system calls.
const MAX_READ: usize = 128 << 10;

/// The first read of a connection that gave its buffer back (see
/// [`Connection::release_buffers`]).
const QUIET_READ: usize = 4 << 10;

/// Why the client fails the connection, with the close code it tells the server, if any.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) close_code: Option<u16>,
}

impl Failure {
    /// A failure with nothing to tell the server (the socket broke, a timer ran out).
    pub(crate) fn silent(error: Error) -> Self {
        Failure {
            error,
            close_code: None,
        }
    }

    /// The server broke the protocol: `code` goes back to it.
    fn new(code: u16, why: &str) -> Self {
        Failure {
            error: Error::Protocol(why.into()),
            close_code: Some(code),
        }
    }

    fn too_big(limit: usize) -> Self {
        Failure {
            error: Error::Protocol(format!("the server sent a message over {limit} bytes").into()),
            close_code: Some(1009),
        }
    }
}

/// The server's close frame: its code and reason, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerClose {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

/// What [`Connection::read`] found: a message (a small one still in the read buffer, until
/// the next read), or the server's close frame.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    Message(Received<'a>),
    /// The server's close frame (`None`: it had no code); a reply is queued if due.
    Close(Option<PeerClose>),
}

/// What [`Connection::next_in_buffer`] found: [`Incoming`] without the borrow.
#[derive(Debug)]
enum Found {
    /// A small message in one frame, its text checked: `payload` in the read buffer, which
    /// drops it on the next call.
    Small {
        text: bool,
        payload: std::ops::Range<usize>,
    },
    Whole(Message),
    Close(Option<PeerClose>),
}

/// Why [`Connection::read`] returned nothing.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// The socket has no more bytes now.
    WouldBlock,
    /// The server closed TCP.
    Eof,
    Failed(Failure),
}

impl From<Failure> for ReadEnd {
    fn from(failure: Failure) -> Self {
        ReadEnd::Failed(failure)
    }
}

/// The limits on what the server sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_frame: usize,
    pub(crate) max_message: usize,
    pub(crate) read_chunk: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseState {
    Open,
    /// Our close frame is queued; the server's is awaited.
    Sent,
    /// The server's close frame came (and our reply, if it was due, is queued).
    Received,
}

/// An open connection: the socket (through the [`Wire`]) and the reading state.
#[derive(Debug)]
pub(crate) struct Connection {
    wire: Wire,
    /// Bytes read: `buf[..filled]`; the rest is zeroed room for the next read.
    buf: BytesMut,
    filled: usize,
    limits: Limits,
    /// The room for the next read: `limits.read_chunk`, doubled up to [`MAX_READ`] each time a
    /// read fills the room it was given.
    read_size: usize,
    /// Bytes at the front of the buffer that the last [`Found::Small`] message took: dropped
    /// on the next call, once the event queue has copied it.
    consumed: usize,
    partial: Option<Partial>,
    /// The text frame at the front of the buffer while its payload is still arriving.
    arriving: Option<ArrivingText>,
    inflater: Option<Inflater>,
    state: CloseState,
}

/// An uncompressed text frame still arriving: how much of its payload has been checked.
#[derive(Debug)]
struct ArrivingText {
    checked: usize,
    utf8: Utf8Stream,
}

impl Connection {
    /// The connection over `wire`, whose first `read_ahead` bytes came with the handshake.
    pub(crate) fn new(
        wire: Wire,
        read_ahead: &[u8],
        limits: Limits,
        inflater: Option<Inflater>,
    ) -> Self {
        // The first read allocates the buffer: a connection that stays quiet holds none.
        let buf = BytesMut::from(read_ahead);
        Connection {
            wire,
            filled: buf.len(),
            buf,
            read_size: limits.read_chunk,
            limits,
            consumed: 0,
            partial: None,
            arriving: None,
            inflater,
            state: CloseState::Open,
        }
    }

    pub(crate) fn wire(&self) -> &Wire {
        &self.wire
    }

    pub(crate) fn wire_mut(&mut self) -> &mut Wire {
        &mut self.wire
    }

    /// Whether frames may still be sent: no close frame went out or came in.
    pub(crate) fn can_write(&self) -> bool {
        self.state == CloseState::Open
    }

    /// Queues a ping.
    pub(crate) fn ping(&mut self, payload: &[u8]) {
        self.control(Control::Ping, payload);
    }

    /// Queues our close frame and stops sending, unless a close frame went either way.
    pub(crate) fn close(&mut self, code: u16, reason: &str) {
        if self.state != CloseState::Open {
            return;
        }
        self.state = CloseState::Sent;
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.control(Control::Close, &payload);
    }

    /// Gives the read buffer back unless it holds part of a frame: the next read allocates it
    /// again, starting at 4 KiB (or the configured size, if smaller) and growing while reads
    /// fill it. For connections that are quiet most of the time, so that each holds only the
    /// frames it has not finished, and a wake-up with a few bytes costs a small buffer. (The
    /// block for small payloads is the event queue's, which lets it go when traffic is light.)
    pub(crate) fn release_buffers(&mut self) {
        self.drop_consumed();
        if self.filled == 0 {
            self.buf = BytesMut::new();
            self.read_size = self.limits.read_chunk.min(QUIET_READ);
        }
        self.wire.release_spare();
    }

    /// Drops the bytes of the last small message handed out from the front of the buffer.
    fn drop_consumed(&mut self) {
        if self.consumed > 0 {
            self.buf.advance(self.consumed);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
    }

    /// Writes what is queued until the socket pushes back.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.wire.flush()
    }

    fn control(&mut self, control: Control, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 6);
        crate::outgoing::encode(
            OpCode::Control(control),
            false,
            payload,
            rand::random(),
            &mut frame,
        );
        self.wire.queue_control(&frame, control == Control::Pong);
    }

    /// The next message or close frame, reading the socket as needed; pings are answered on
    /// the way.
    #[inline]
    pub(crate) fn read(&mut self) -> Result<Incoming<'_>, ReadEnd> {
        loop {
            if let Some(found) = self.next_in_buffer()? {
                return Ok(match found {
                    Found::Small { text, payload } => Incoming::Message(Received::Small {
                        text,
                        payload: &self.buf[payload],
                    }),
                    Found::Whole(message) => Incoming::Message(Received::Whole(message)),
                    Found::Close(close) => Incoming::Close(close),
                });
            }
            self.fill()?;
        }
    }

    /// Reads once from the socket into the buffer; for a frame larger than the buffer, in
    /// larger steps.
    fn fill(&mut self) -> Result<(), ReadEnd> {
        if self.buf.len() - self.filled < self.read_size.div_ceil(2) {
            // Zeroed a step at a time: a 16 MiB frame is not zeroed again for every read.
            let reserved = self.buf.capacity() - self.filled;
            let step = self.read_size.max(reserved.min(1 << 20));
            self.buf.resize(self.filled + step, 0);
        }
        let room = self.buf.len() - self.filled;
        match self.wire.read(&mut self.buf[self.filled..]) {
            Ok(0) => Err(ReadEnd::Eof),
            Ok(n) => {
                self.filled += n;
                if n == room && self.read_size < MAX_READ {
                    // More was waiting: read more at a time.
                    self.read_size = (self.read_size * 2).min(MAX_READ);
                }
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Err(ReadEnd::WouldBlock),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(err) => Err(ReadEnd::Failed(Failure::silent(Error::Io(err)))),
        }
    }

    /// Takes whole frames from the buffer until one completes a message or a close.
    fn next_in_buffer(&mut self) -> Result<Option<Found>, Failure> {
        self.drop_consumed();
        if self.state == CloseState::Received {
            // Nothing may follow the server's close frame; what does is dropped unread, while
            // the server gets to close TCP first, as RFC 6455 §7.1.1 wants.
            self.filled = 0;
            return Ok(None);
        }
        loop {
            let Some((header, length, head)) = header::parse(&self.buf[..self.filled]) else {
                return Ok(None);
            };
            let length = self.check(&header, length)?;
            let end = head + length;
            if self.filled < end {
                self.check_arriving_text(&header, head)?;
                if self.buf.len() < end {
                    // Room for the whole frame, zeroed only as reads reach it.
                    self.buf.reserve(end - self.buf.len());
                }
                return Ok(None);
            }
            self.arriving = None;
            if length <= SMALL && header.is_final && !header.rsv1 {
                if let OpCode::Data(data @ (Data::Text | Data::Binary)) = header.opcode {
                    // Left in the buffer for the event queue to copy: no allocation and no
                    // refcount per message on this thread.
                    let text = data == Data::Text;
                    if text && std::str::from_utf8(&self.buf[head..end]).is_err() {
                        return Err(assemble::invalid_text());
                    }
                    self.consumed = end;
                    return Ok(Some(Found::Small {
                        text,
                        payload: head..end,
                    }));
                }
            }
            let payload = if length <= SMALL {
                // A control frame or a fragment: rare enough for an allocation of its own.
                let payload = Bytes::copy_from_slice(&self.buf[head..end]);
                self.buf.advance(end);
                payload
            } else {
                self.buf.split_to(end).freeze().slice(head..)
            };
            self.filled -= end;
            if let Some(found) = self.frame(&header, payload)? {
                return Ok(Some(found));
            }
        }
    }

    /// Checks a header before its payload is buffered; returns the payload length.
    fn check(&self, header: &FrameHeader, length: u64) -> Result<usize, Failure> {
        if header.mask.is_some() {
            return Err(Failure::new(1002, "the server sent a masked frame"));
        }
        if header.rsv2 || header.rsv3 {
            return Err(Failure::new(1002, "the server set RSV2 or RSV3"));
        }
        match header.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return Err(Failure::new(1002, "the server sent a reserved opcode"));
            }
            OpCode::Control(_) => {
                if !header.is_final || length > 125 {
                    return Err(Failure::new(
                        1002,
                        "the server sent a fragmented or long control frame",
                    ));
                }
                if header.rsv1 {
                    return Err(Failure::new(1002, "the server set RSV1 on a control frame"));
                }
            }
            OpCode::Data(Data::Continue) => {
                if self.partial.is_none() {
                    return Err(Failure::new(1002, "the server continued no message"));
                }
                if header.rsv1 {
                    return Err(Failure::new(
                        1002,
                        "the server set RSV1 on a continuation frame",
                    ));
                }
            }
            OpCode::Data(_) => {
                if self.partial.is_some() {
                    return Err(Failure::new(
                        1002,
                        "the server started a message inside another",
                    ));
                }
                if header.rsv1 && self.inflater.is_none() {
                    return Err(Failure::new(
                        1002,
                        "the server set RSV1 with no extension agreed",
                    ));
                }
            }
        }
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > self.limits.max_frame {
            return Err(Failure::too_big(self.limits.max_frame));
        }
        let compressed = header.rsv1 || self.partial.as_ref().is_some_and(Partial::is_compressed);
        if let OpCode::Data(_) = header.opcode {
            let so_far = self.partial.as_ref().map_or(0, Partial::len);
            if !compressed && so_far.saturating_add(length) > self.limits.max_message {
                return Err(Failure::too_big(self.limits.max_message));
            }
        }
        Ok(length)
    }

    /// Checks the text that has arrived of the frame at the front of the buffer (its payload
    /// starts at `head`), so that invalid text fails at once, not when the frame is whole.
    /// A fail-fast probe only: the whole frame is checked again when it is complete.
    fn check_arriving_text(&mut self, header: &FrameHeader, head: usize) -> Result<(), Failure> {
        let arriving = match &mut self.arriving {
            Some(arriving) => arriving,
            None => {
                let utf8 = match header.opcode {
                    OpCode::Data(Data::Text) if !header.rsv1 => Utf8Stream::default(),
                    OpCode::Data(Data::Continue) => {
                        match self.partial.as_ref().and_then(Partial::text_so_far) {
                            Some(utf8) => utf8,
                            None => return Ok(()),
                        }
                    }
                    _ => return Ok(()),
                };
                self.arriving.insert(ArrivingText { checked: 0, utf8 })
            }
        };
        let new = &self.buf[head + arriving.checked..self.filled];
        arriving
            .utf8
            .feed(new)
            .map_err(|_| assemble::invalid_text())?;
        arriving.checked += new.len();
        Ok(())
    }

    /// Handles one whole frame whose header passed [`check`](Self::check).
    fn frame(&mut self, header: &FrameHeader, payload: Bytes) -> Result<Option<Found>, Failure> {
        let limit = self.limits.max_message;
        let message = match header.opcode {
            OpCode::Control(Control::Ping) => {
                if self.state == CloseState::Open {
                    self.control(Control::Pong, &payload);
                }
                return Ok(None);
            }
            OpCode::Control(Control::Pong) => return Ok(None),
            OpCode::Control(Control::Close) => return self.peer_close(&payload).map(Some),
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return Err(Failure::new(1002, "the server sent a reserved opcode"));
            }
            OpCode::Data(Data::Continue) => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(Failure::new(1002, "the server continued no message"));
                };
                let message =
                    partial.push(&payload, header.is_final, self.inflater.as_mut(), limit)?;
                if message.is_some() {
                    self.partial = None;
                }
                message
            }
            OpCode::Data(data) => {
                let text = data == Data::Text;
                if header.is_final && !header.rsv1 {
                    Some(assemble::single(text, payload)?)
                } else {
                    let mut partial = Partial::new(text, header.rsv1);
                    let message =
                        partial.push(&payload, header.is_final, self.inflater.as_mut(), limit)?;
                    if message.is_none() {
                        self.partial = Some(partial);
                    }
                    message
                }
            }
        };
        Ok(message.map(Found::Whole))
    }

    /// The server's close frame: checks its code and reason, queues the reply.
    fn peer_close(&mut self, payload: &[u8]) -> Result<Found, Failure> {
        let close = match payload {
            [] => None,
            [_] => return Err(Failure::new(1002, "the server sent a one-byte close frame")),
            [high, low, reason @ ..] => {
                let code = u16::from_be_bytes([*high, *low]);
                if !CloseCode::from(code).is_allowed() {
                    return Err(Failure {
                        error: Error::Protocol(format!("the server sent close code {code}").into()),
                        close_code: Some(1002),
                    });
                }
                let Ok(reason) = std::str::from_utf8(reason) else {
                    return Err(Failure::new(1007, "the server's close reason is not UTF-8"));
                };
                Some(PeerClose {
                    code,
                    reason: reason.to_owned(),
                })
            }
        };
        // The server may have stopped reading (a restart): the senders' frames not yet started
        // go back to the send queue, for the next connection, instead of ahead of the reply.
        self.wire.withdraw_unstarted();
        if self.state == CloseState::Open {
            // The reply echoes the code, as RFC 6455 §5.5.1 suggests.
            let reply = close.as_ref().map(|c| c.code.to_be_bytes());
            self.control(Control::Close, reply.as_ref().map_or(&[][..], |c| &c[..]));
        }
        self.state = CloseState::Received;
        Ok(Found::Close(close))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::net::{TcpListener, TcpStream};

    use super::*;
    use crate::io::stream::Stream;

    const LIMITS: Limits = Limits {
        max_frame: 1 << 20,
        max_message: 1 << 20,
        read_chunk: 4096,
    };

    /// A connection over loopback and the server's end. The client's socket stays blocking, so
    /// that a read waits for bytes rather than needing a poll loop.
    fn connection() -> (Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let socket = Stream::Plain(mio::net::TcpStream::from_std(client));
        (
            Connection::new(Wire::new(socket), &[], LIMITS, None),
            server,
        )
    }

    /// An unmasked, final binary frame of under 126 bytes, as a server sends it.
    fn binary_frame(payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x82, u8::try_from(payload.len()).unwrap()];
        frame.extend_from_slice(payload);
        frame
    }

    fn payload(i: u32) -> Vec<u8> {
        i.to_be_bytes().repeat(16)
    }

    fn expect_binary(connection: &mut Connection, expected: &[u8]) {
        match connection.read() {
            Ok(Incoming::Message(Received::Small {
                text: false,
                payload,
            })) => assert_eq!(payload, expected),
            Ok(Incoming::Message(Received::Whole(Message::Binary(bytes)))) => {
                assert_eq!(&bytes[..], expected);
            }
            other => panic!("expected a binary message, got {other:?}"),
        }
    }

    #[test]
    fn reads_grow_while_they_fill_and_every_small_message_arrives_whole() {
        let (mut connection, mut server) = connection();
        let count = 20_000;
        let writer = std::thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let frames: Vec<u8> = (0..count).flat_map(|i| binary_frame(&payload(i))).collect();
                server.write_all(&frames).unwrap();
                server
            })
            .unwrap();
        for i in 0..count {
            expect_binary(&mut connection, &payload(i));
        }
        assert!(connection.read_size > LIMITS.read_chunk, "reads never grew");
        assert!(connection.read_size <= MAX_READ);
        drop(writer.join().unwrap());
    }

    #[test]
    fn a_quiet_connection_keeps_the_configured_read_size() {
        let (mut connection, mut server) = connection();
        for i in 0..3 {
            server.write_all(&binary_frame(&payload(i))).unwrap();
            expect_binary(&mut connection, &payload(i));
        }
        assert_eq!(connection.read_size, LIMITS.read_chunk);
    }
}
