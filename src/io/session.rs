//! One open connection: its socket (through tungstenite and the [`Wire`]) and the state that
//! lives and dies with that socket. Everything here is per connection; what outlives a
//! connection is the driver's.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tungstenite::WebSocket;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use super::Command;
use super::close_watch::PeerClose;
use super::wire::Wire;
use crate::error::{Error, TimeoutKind};
use crate::event::{CloseEvent, Message, Text};
use crate::outgoing::Chunk;
use crate::queue::EventSink;
use crate::shared::Shared;

/// How a connection ended: the optional error and its one close event.
#[derive(Debug)]
pub(super) struct Ending {
    pub(super) error: Option<Error>,
    pub(super) close: CloseEvent,
}

impl Ending {
    pub(super) fn failed(error: Error) -> Self {
        Ending {
            error: Some(error),
            close: CloseEvent::abnormal(),
        }
    }

    fn clean(code: u16, reason: String) -> Self {
        Ending {
            error: None,
            close: CloseEvent::new(code, reason, true),
        }
    }
}

/// Why the client fails the connection, with the close code it tells the server, if any. The
/// code is picked from the cause before the cause is wrapped into our [`Error`].
#[derive(Debug)]
pub(super) struct Failure {
    error: Error,
    close_code: Option<CloseCode>,
}

impl Failure {
    /// A failure with nothing to tell the server (the socket broke, a timer ran out).
    pub(super) fn silent(error: Error) -> Self {
        Failure {
            error,
            close_code: None,
        }
    }
}

impl From<tungstenite::Error> for Failure {
    fn from(err: tungstenite::Error) -> Self {
        let close_code = match &err {
            tungstenite::Error::Io(_)
            | tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ) => None,
            tungstenite::Error::Utf8(_) => Some(CloseCode::Invalid),
            tungstenite::Error::Capacity(_) => Some(CloseCode::Size),
            _ => Some(CloseCode::Protocol),
        };
        Failure {
            error: Error::from_protocol(err),
            close_code,
        }
    }
}

/// What an open connection is doing.
#[derive(Debug)]
pub(super) struct Session {
    ws: Box<WebSocket<Wire>>,
    /// Payload bytes handed to the writer but not yet written to the socket.
    unflushed: usize,
    /// The socket refused more bytes: senders' frames wait where they are until it drains.
    pub(super) write_blocked: bool,
    /// The close frame received from the server, once it came.
    received_close: Option<Option<CloseFrame>>,
    /// When the close handshake must be over; set once it starts from either side.
    pub(super) close_deadline: Option<Instant>,
}

impl Session {
    pub(super) fn new(ws: Box<WebSocket<Wire>>) -> Self {
        Session {
            ws,
            unflushed: 0,
            write_blocked: false,
            received_close: None,
            close_deadline: None,
        }
    }

    pub(super) fn tcp(&mut self) -> &mut mio::net::TcpStream {
        self.ws.get_mut().tcp()
    }

    /// Hands one command to tungstenite. The writer queues without limit, so this works while
    /// the socket pushes back too: a close starts its timer at once.
    pub(super) fn carry_out(
        &mut self,
        command: Command,
        shared: &Shared,
        close_timeout: Duration,
    ) -> Result<(), Failure> {
        match command {
            Command::Ping(payload) => {
                if !self.ws.can_write() {
                    return Ok(());
                }
                self.would_block(|ws| ws.write(tungstenite::Message::Ping(payload)))
            }
            Command::Close(frame) => {
                self.seal_outgoing(shared);
                self.start_close(frame, shared, close_timeout)
            }
            Command::Shutdown => {
                self.seal_outgoing(shared);
                let frame = CloseFrame {
                    code: CloseCode::Away,
                    reason: "going away".into(),
                };
                self.start_close(frame, shared, close_timeout)
            }
        }
    }

    /// Takes the senders' frames, to be written behind what is pending.
    pub(super) fn take_outgoing(&mut self, shared: &Shared) {
        shared.clear_outgoing();
        let (chunks, payload) = shared.outgoing().take();
        self.append_outgoing(chunks, payload, shared);
    }

    /// Takes the last of the senders' frames and refuses more: the close frame goes next.
    fn seal_outgoing(&mut self, shared: &Shared) {
        let (chunks, payload) = {
            let mut outgoing = shared.outgoing();
            outgoing.closed = true;
            outgoing.take()
        };
        self.append_outgoing(chunks, payload, shared);
    }

    fn append_outgoing(&mut self, chunks: VecDeque<Chunk>, payload: usize, shared: &Shared) {
        if chunks.is_empty() {
            return;
        }
        if self.ws.can_write() {
            log::trace!("sending {payload} bytes");
            self.ws.get_mut().append(chunks);
            self.unflushed += payload;
        } else {
            // Closing: nothing more goes out.
            shared.buffered_amount.fetch_sub(payload, Ordering::Relaxed);
        }
    }

    fn start_close(
        &mut self,
        frame: CloseFrame,
        shared: &Shared,
        close_timeout: Duration,
    ) -> Result<(), Failure> {
        if self.close_deadline.is_none() {
            self.close_deadline = Some(Instant::now() + close_timeout);
        }
        shared.closing.store(true, Ordering::SeqCst);
        if self.ws.can_write() {
            log::debug!("closing with code {}", frame.code);
            self.would_block(|ws| ws.close(Some(frame)))?;
        }
        Ok(())
    }

    /// Writes what is pending until the socket pushes back.
    pub(super) fn flush(&mut self, shared: &Shared) -> Result<(), Failure> {
        self.write_blocked = false;
        self.would_block(|ws| ws.flush())?;
        if !self.write_blocked && self.unflushed > 0 {
            shared
                .buffered_amount
                .fetch_sub(self.unflushed, Ordering::Relaxed);
            self.unflushed = 0;
        }
        Ok(())
    }

    /// Runs a write through tungstenite; `WouldBlock` means "wait for the socket": the bytes
    /// stay queued.
    fn would_block(
        &mut self,
        write: impl FnOnce(&mut WebSocket<Wire>) -> tungstenite::Result<()>,
    ) -> Result<(), Failure> {
        match write(&mut self.ws) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                self.write_blocked = true;
                Ok(())
            }
            Err(err) => Err(Failure::from(err)),
        }
    }

    /// Reads every complete message until the socket has no more or the queue is full.
    pub(super) fn read(
        &mut self,
        sink: &mut EventSink,
        shared: &Shared,
        close_timeout: Duration,
    ) -> Option<Ending> {
        while sink.can_read() {
            let message = match self.ws.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                    return None;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Some(self.clean_ending());
                }
                Err(err) => return Some(self.fail(Failure::from(err))),
            };
            match message {
                tungstenite::Message::Text(text) => {
                    log::trace!("received text of {} bytes", text.len());
                    sink.message(Message::Text(Text::from_tungstenite(text)));
                }
                tungstenite::Message::Binary(bytes) => {
                    log::trace!("received {} bytes", bytes.len());
                    sink.message(Message::Binary(bytes));
                }
                tungstenite::Message::Close(frame) => {
                    if let Some(failure) = self.invalid_peer_close() {
                        return Some(self.fail(failure));
                    }
                    log::debug!("close frame received: {frame:?}");
                    self.received_close = Some(frame);
                    shared.closing.store(true, Ordering::SeqCst);
                    // The reply goes next; no data frame may follow it.
                    self.seal_outgoing(shared);
                    if self.close_deadline.is_none() {
                        self.close_deadline = Some(Instant::now() + close_timeout);
                    }
                }
                // tungstenite queues the pong itself; the driver flushes it right after.
                tungstenite::Message::Ping(_)
                | tungstenite::Message::Pong(_)
                | tungstenite::Message::Frame(_) => {}
            }
        }
        None
    }

    /// A close code that no endpoint may send (RFC 6455 §7.4) fails the connection, as WHATWG
    /// asks. Checked on the code as the server sent it: see `close_watch`.
    fn invalid_peer_close(&self) -> Option<Failure> {
        match self.ws.get_ref().peer_close() {
            Some(PeerClose::Code(code)) if !CloseCode::from(code).is_allowed() => Some(Failure {
                error: Error::Protocol(format!("the server sent close code {code}").into()),
                close_code: Some(CloseCode::Protocol),
            }),
            _ => None,
        }
    }

    /// Fails the connection: tells the server why (best effort, never waiting), then ends.
    pub(super) fn fail(&mut self, failure: Failure) -> Ending {
        if self.received_close.is_some() {
            // The server's close frame came: a reset or EOF now ends a finished handshake.
            return self.clean_ending();
        }
        if let Some(code) = failure.close_code {
            if self.ws.can_write() {
                let frame = CloseFrame {
                    code,
                    reason: "".into(),
                };
                let _ = self.ws.close(Some(frame));
            }
            // Also pushes out a close reply that tungstenite has queued.
            let _ = self.ws.flush();
        }
        log::debug!("connection failed: {}", failure.error);
        Ending::failed(failure.error)
    }

    /// The close timer ran out.
    pub(super) fn close_timed_out(&self) -> Ending {
        if self.received_close.is_some() {
            // Both close frames went over; only the server's TCP close is missing.
            self.clean_ending()
        } else {
            Ending::failed(Error::Timeout {
                kind: TimeoutKind::Close,
                during: "waiting for the server's close frame",
            })
        }
    }

    fn clean_ending(&self) -> Ending {
        match &self.received_close {
            Some(Some(frame)) => Ending::clean(frame.code.into(), frame.reason.to_string()),
            Some(None) => Ending::clean(1005, String::new()),
            None => Ending::failed(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection without a close frame",
            ))),
        }
    }
}
