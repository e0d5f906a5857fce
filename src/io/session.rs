//! One open connection: its socket (through the message layer and the wire) and the state
//! that lives and dies with that socket. Everything here is per connection; what outlives a
//! connection is the driver's.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tungstenite::protocol::CloseFrame;

use super::Command;
use super::message::{Connection, Failure, Incoming, PeerClose, ReadEnd};
use crate::error::{Error, TimeoutKind};
use crate::event::CloseEvent;
use crate::outgoing::Taken;
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

/// What an open connection is doing.
#[derive(Debug)]
pub(super) struct Session {
    ws: Box<Connection>,
    /// The socket refused more bytes: senders' frames wait where they are until it drains.
    pub(super) write_blocked: bool,
    /// The close frame received from the server, once it came.
    received_close: Option<Option<PeerClose>>,
    /// When the close handshake must be over; set once it starts from either side.
    pub(super) close_deadline: Option<Instant>,
    /// When the last keepalive ping went out.
    last_ping: Option<Instant>,
    /// Reading stopped because the event queue is full: the keepalive clocks stop too.
    reading_paused: bool,
}

impl Session {
    pub(super) fn new(ws: Box<Connection>) -> Self {
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
        self.ws.wire_mut().tcp()
    }

    /// Hands one command to the message layer. The writer queues without limit, so this
    /// works while the socket pushes back too: a close starts its timer at once.
    pub(super) fn carry_out(&mut self, command: Command, shared: &Shared, close_timeout: Duration) {
        match command {
            Command::Ping(payload) => {
                if self.ws.can_write() {
                    self.ws.ping(&payload);
                }
            }
            Command::Close(frame) => {
                self.seal_outgoing(shared);
                self.start_close(&frame, shared, close_timeout);
            }
            Command::Shutdown => {
                self.seal_outgoing(shared);
                let frame = CloseFrame {
                    code: 1001.into(),
                    reason: "going away".into(),
                };
                self.start_close(&frame, shared, close_timeout);
            }
        }
    }

    /// Takes the senders' frames, to be written behind what is pending.
    pub(super) fn take_outgoing(&mut self, shared: &Shared) {
        shared.clear_outgoing();
        let taken = shared.outgoing().take();
        self.append_outgoing(taken, shared);
    }

    /// Takes the last of the senders' frames and refuses more: the close frame goes next.
    fn seal_outgoing(&mut self, shared: &Shared) {
        let taken = {
            let mut outgoing = shared.outgoing();
            outgoing.closed = true;
            outgoing.take()
        };
        self.append_outgoing(taken, shared);
    }

    fn append_outgoing(&mut self, taken: Taken, shared: &Shared) {
        let Taken {
            chunks,
            payload,
            mut deflater,
        } = taken;
        if !chunks.is_empty() {
            if self.ws.can_write() {
                log::trace!("sending {payload} bytes");
                self.ws.wire_mut().append(chunks, deflater.as_deref_mut());
            } else {
                // Closing: nothing more goes out.
                shared.buffered_amount.fetch_sub(payload, Ordering::Relaxed);
            }
        }
        if let Some(deflater) = deflater {
            shared.outgoing().give_back(deflater);
        }
    }

    fn start_close(&mut self, frame: &CloseFrame, shared: &Shared, close_timeout: Duration) {
        if self.close_deadline.is_none() {
            self.close_deadline = Some(Instant::now() + close_timeout);
        }
        shared.closing.store(true, Ordering::SeqCst);
        if self.ws.can_write() {
            log::debug!("closing with code {}", frame.code);
            self.ws.close(frame.code.into(), &frame.reason);
        }
    }

    /// Writes what is pending until the socket pushes back.
    pub(super) fn flush(&mut self, shared: &Shared) -> Result<(), Failure> {
        self.write_blocked = false;
        let flushed = match self.ws.flush() {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                self.write_blocked = true;
                Ok(())
            }
            Err(err) => Err(Failure::silent(Error::Io(err))),
        };
        let written = self.ws.wire_mut().take_written_payload();
        if written > 0 {
            shared.buffered_amount.fetch_sub(written, Ordering::Relaxed);
        }
        flushed
    }

    /// The connection is over: the senders' frames that the socket did not take whole go
    /// back to the front of the send queue, for the next connection. They still count in
    /// `buffered_amount`; what was written whole no longer does.
    pub(super) fn hand_back_unsent(&mut self, shared: &Shared) {
        let (unsent, payload, written) = self.ws.wire_mut().take_unsent();
        shared.buffered_amount.fetch_sub(written, Ordering::Relaxed);
        let mut outgoing = shared.outgoing();
        // Compression was agreed with this connection only.
        outgoing.stop_deflate();
        if !unsent.is_empty() {
            log::debug!("{payload} bytes of messages kept for the next connection");
            outgoing.put_back(unsent, payload);
        }
    }

    /// When the keepalive must look again: the next ping or the dead-peer deadline. `None`
    /// when neither is on, or while reading is paused.
    pub(super) fn keepalive_due(&self, keepalive: Keepalive) -> Option<Instant> {
        if self.reading_paused {
            return None;
        }
        let last_read = self.ws.wire().last_read();
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
        let last_read = self.ws.wire().last_read();
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
                self.ws.ping(&[]);
            }
        }
        Ok(())
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
                self.ws.wire_mut().restart_read_clock();
            }
            let incoming = match self.ws.read() {
                Ok(incoming) => incoming,
                Err(ReadEnd::WouldBlock) => return None,
                Err(ReadEnd::Eof) => return Some(self.clean_ending()),
                Err(ReadEnd::Failed(failure)) => return Some(self.fail(failure)),
            };
            match incoming {
                Incoming::Message(message) => {
                    log::trace!("received a message of {} bytes", message.len());
                    sink.message(message);
                }
                Incoming::Close(frame) => {
                    log::debug!("close frame received: {frame:?}");
                    self.received_close = Some(frame);
                    shared.closing.store(true, Ordering::SeqCst);
                    // The reply goes next; no data frame may follow it.
                    self.seal_outgoing(shared);
                    if self.close_deadline.is_none() {
                        self.close_deadline = Some(Instant::now() + close_timeout);
                    }
                }
            }
        }
    }

    /// Fails the connection: tells the server why (best effort, never waiting), then ends.
    pub(super) fn fail(&mut self, failure: Failure) -> Ending {
        if self.received_close.is_some() {
            // The server's close frame came: a reset or EOF now ends a finished handshake.
            return self.clean_ending();
        }
        if let Some(code) = failure.close_code {
            self.ws.close(code, "");
            // Also pushes out a close reply that is queued.
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
            Some(Some(frame)) => Ending::clean(frame.code, frame.reason.clone()),
            Some(None) => Ending::clean(1005, String::new()),
            None => Ending::failed(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection without a close frame",
            ))),
        }
    }
}
