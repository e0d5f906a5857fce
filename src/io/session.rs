//! One open connection: its socket (through tungstenite and the [`Wire`]) and the state that
//! lives and dies with that socket. Everything here is per connection; what outlives a
//! connection is the driver's.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
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
use crate::staying_connected::Keepalive;

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
    /// The socket refused more bytes: senders' frames wait where they are until it drains.
    pub(super) write_blocked: bool,
    /// The close frame received from the server, once it came.
    received_close: Option<Option<CloseFrame>>,
    /// When the close handshake must be over; set once it starts from either side.
    pub(super) close_deadline: Option<Instant>,
    /// When the last keepalive ping went out.
    last_ping: Option<Instant>,
    /// Reading stopped because the event queue is full: the keepalive clocks stop too.
    reading_paused: bool,
}

impl Session {
    pub(super) fn new(ws: Box<WebSocket<Wire>>) -> Self {
        Session {
            ws,
            write_blocked: false,
            received_close: None,
            close_deadline: None,
            last_ping: None,
            reading_paused: false,
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
        let flushed = self.would_block(|ws| ws.flush());
        let written = self.ws.get_mut().take_written_payload();
        if written > 0 {
            shared.buffered_amount.fetch_sub(written, Ordering::Relaxed);
        }
        flushed
    }

    /// The connection is over: the senders' frames that the socket did not take whole go
    /// back to the front of the send queue, for the next connection. They still count in
    /// `buffered_amount`; what was written whole no longer does.
    pub(super) fn hand_back_unsent(&mut self, shared: &Shared) {
        let (unsent, payload, written) = self.ws.get_mut().take_unsent();
        shared.buffered_amount.fetch_sub(written, Ordering::Relaxed);
        if !unsent.is_empty() {
            log::debug!("{payload} bytes of messages kept for the next connection");
            shared.outgoing().put_back(unsent, payload);
        }
    }

    /// When the keepalive must look again: the next ping or the dead-peer deadline. `None`
    /// when neither is on, or while reading is paused.
    pub(super) fn keepalive_due(&self, keepalive: Keepalive) -> Option<Instant> {
        if self.reading_paused {
            return None;
        }
        let last_read = self.ws.get_ref().last_read();
        let quiet_since = self.last_ping.map_or(last_read, |ping| ping.max(last_read));
        // Once our close frame is out no ping may follow: only the close timer runs then.
        let ping = keepalive
            .ping_interval
            .filter(|_| self.ws.can_write())
            .map(|interval| quiet_since + interval);
        let dead = keepalive
            .dead_peer_timeout
            .map(|timeout| last_read + timeout);
        match (ping, dead) {
            (Some(ping), Some(dead)) => Some(ping.min(dead)),
            (one, other) => one.or(other),
        }
    }

    /// Sends a ping when the connection has been quiet for the interval; fails it when the
    /// server has been silent for the dead-peer timeout.
    pub(super) fn keep_alive(&mut self, keepalive: Keepalive) -> Result<(), Failure> {
        if self.reading_paused {
            return Ok(());
        }
        let now = Instant::now();
        let last_read = self.ws.get_ref().last_read();
        if let Some(timeout) = keepalive.dead_peer_timeout {
            if now >= last_read + timeout {
                return Err(Failure::silent(Error::Timeout {
                    kind: TimeoutKind::DeadPeer,
                    during: "waiting for data from the server",
                }));
            }
        }
        if let Some(interval) = keepalive.ping_interval {
            let quiet_since = self.last_ping.map_or(last_read, |ping| ping.max(last_read));
            if now >= quiet_since + interval && self.ws.can_write() {
                log::trace!("keepalive ping");
                self.last_ping = Some(now);
                self.would_block(|ws| ws.write(tungstenite::Message::Ping(Bytes::new())))?;
            }
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
        loop {
            if !sink.can_read() {
                self.reading_paused = true;
                return None;
            }
            if self.reading_paused {
                // The clocks stopped with the reading; they start afresh now.
                self.reading_paused = false;
                self.ws.get_mut().restart_read_clock();
            }
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
