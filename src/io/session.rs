//! One open connection: its socket (through the message layer and the wire) and the state
//! that lives and dies with that socket. Everything here is per connection; what outlives a
//! connection is the driver's.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tungstenite::protocol::CloseFrame;

use std::collections::VecDeque;

use super::Command;
use super::message::{Connection, Failure, Incoming, PeerClose, ReadEnd};
use crate::error::{Error, TimeoutKind};
use crate::event::CloseEvent;
use crate::outgoing::{Chunk, Window};
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

/// The senders' frames that a connection did not write whole, for the next one.
#[derive(Debug, Default)]
pub(super) struct Unsent {
    pub(super) chunks: VecDeque<Chunk>,
    /// Their payload bytes.
    pub(super) payload: usize,
}

/// How much one turn of reading may take before it lets others go (see `reactor`).
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadBudget {
    pub(super) messages: usize,
    pub(super) bytes: usize,
}

impl ReadBudget {
    /// No limit: the connection has its thread to itself.
    pub(super) const UNLIMITED: ReadBudget = ReadBudget {
        messages: usize::MAX,
        bytes: usize::MAX,
    };
}

/// How a turn of reading ended.
#[derive(Debug)]
pub(super) enum Reading {
    /// The connection is over.
    Ended(Ending),
    /// The read budget is spent: more may wait in the socket.
    BudgetSpent,
    /// The socket has nothing more, or the event queue is full.
    Drained,
}

/// Whether the server's close frame came, and what it said.
#[derive(Debug)]
enum ServerClose {
    NotYet,
    /// It came, with a code (and a reason) or without one.
    Came(Option<PeerClose>),
}

/// What an open connection is doing.
#[derive(Debug)]
pub(super) struct Session {
    ws: Box<Connection>,
    /// The socket refused more bytes: senders' frames wait in the send queue until it drains.
    write_blocked: bool,
    /// The close frame received from the server, once it came.
    server_close: ServerClose,
    /// When the close handshake must be over; set once it starts from either side.
    pub(super) close_deadline: Option<Instant>,
    /// When the last keepalive ping went out.
    last_ping: Option<Instant>,
    /// Reading stopped because the event queue is full: the keepalive clocks stop too.
    reading_paused: bool,
    /// Give the read buffer back whenever the socket has nothing more (shared I/O threads:
    /// a quiet connection then holds no buffer).
    lean: bool,
    /// Payload bytes of senders' frames taken in turns that found more waiting: how long the
    /// current burst of sends has been going.
    burst: usize,
    /// The last wait was for a burst to fill a larger write.
    coalesced: bool,
}

/// A burst of sends this long (payload bytes) is written in larger pieces from then on.
const LONG_BURST: usize = 64 << 10;

impl Session {
    pub(super) fn new(mut ws: Box<Connection>, lean: bool) -> Self {
        if lean {
            // Its first read starts small too.
            ws.release_buffers();
        }
        Session {
            lean,
            burst: 0,
            coalesced: false,
            ws,
            write_blocked: false,
            server_close: ServerClose::NotYet,
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

    /// Whether this connection takes the senders' frames now: the socket does not push back
    /// and no close frame went either way. When it does not, frames that wait in the send
    /// queue are no work for the I/O thread.
    pub(super) fn takes_sends(&self) -> bool {
        !self.write_blocked && self.ws.can_write()
    }

    /// Takes a window of the senders' frames, to be written behind what is pending: as much
    /// as brings the bytes waiting for the socket up to `window`. Nothing once a close frame
    /// went either way: what waits stays in the send queue, for the next connection.
    pub(super) fn take_outgoing(&mut self, shared: &Shared, window: usize) {
        if !self.takes_sends() {
            return;
        }
        let room = window.saturating_sub(self.ws.wire().pending_bytes());
        if room == 0 {
            return;
        }
        shared.clear_outgoing();
        let taken = {
            let mut outgoing = shared.outgoing();
            let taken = outgoing.take_window(room);
            if outgoing.has_queued() {
                shared.more_outgoing();
            }
            taken
        };
        let payload = taken.payload;
        if self.coalesced && payload < crate::outgoing::COALESCED / 4 {
            // The wait ran out with not a quarter of a write gathered: this burst is too slow
            // to wait for.
            self.burst = 0;
        } else {
            self.burst += payload;
        }
        self.coalesced = false;
        self.append_outgoing(taken, shared);
    }

    /// Whether the senders' frames that wait now are better left to gather for a larger
    /// write: the burst they belong to has been long. Resets the burst when `more` is false.
    pub(super) fn should_coalesce(&mut self, more: bool) -> bool {
        if !more {
            self.burst = 0;
            return false;
        }
        self.coalesced = self.burst >= LONG_BURST;
        self.coalesced
    }

    /// Our close frame goes next: takes all the senders' frames (they go before it) and closes
    /// the gate. When the server's close frame came first, nothing more is taken.
    fn seal_outgoing(&mut self, shared: &Shared) {
        let taken = {
            let mut outgoing = shared.outgoing();
            outgoing.close_gate();
            if !self.ws.can_write() {
                return;
            }
            outgoing.take()
        };
        self.append_outgoing(taken, shared);
    }

    fn append_outgoing(&mut self, taken: Window, shared: &Shared) {
        let Window {
            chunks,
            payload,
            mut deflater,
        } = taken;
        if !chunks.is_empty() {
            log::trace!("sending {payload} bytes");
            self.ws.wire_mut().append(chunks, deflater.as_deref_mut());
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
        shared.set_write_blocked(self.write_blocked);
        shared.written(self.ws.wire_mut().take_written_payload());
        flushed
    }

    /// The connection is over: the senders' frames that the socket did not take whole (a
    /// frame cut short is kept whole), for the send queue's front. They still count in
    /// `buffered_amount`; what was written whole no longer does.
    pub(super) fn take_unsent(&mut self, shared: &Shared) -> Unsent {
        let (chunks, payload, written) = self.ws.wire_mut().take_unsent();
        shared.written(written);
        if payload > 0 {
            log::debug!("{payload} bytes of messages kept for the next connection");
        }
        Unsent { chunks, payload }
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
        let alive = self.last_sign_of_life();
        let dead = keepalive.dead_peer_timeout.map(|timeout| alive + timeout);
        match (ping, dead) {
            (Some(ping), Some(dead)) => Some(ping.min(dead)),
            (one, other) => one.or(other),
        }
    }

    /// When the peer last showed it is alive: bytes came from it, or the socket, full, took
    /// bytes again. On a slow uplink a ping waits behind megabytes in the kernel's send
    /// buffer; while room keeps coming back in that buffer, the peer keeps acknowledging at
    /// the TCP level, so it is not dead. (A write into a buffer with room says nothing: a
    /// vanished peer's kernel buffer takes small pings for ever.)
    fn last_sign_of_life(&self) -> Instant {
        let wire = self.ws.wire();
        wire.last_read().max(wire.last_drain())
    }

    /// Sends a ping when the connection has been quiet for the interval; fails it when the
    /// server has been silent for the dead-peer timeout (and the socket took no bytes).
    pub(super) fn keep_alive(&mut self, keepalive: Keepalive) -> Result<(), Failure> {
        if self.reading_paused {
            return Ok(());
        }
        let now = Instant::now();
        let last_read = self.ws.wire().last_read();
        if let Some(timeout) = keepalive.dead_peer_timeout {
            if now >= self.last_sign_of_life() + timeout {
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

    /// Reads every complete message until the socket has no more, the queue is full or
    /// `budget` is spent: that many messages, or that many bytes of messages.
    pub(super) fn read(
        &mut self,
        sink: &mut EventSink,
        shared: &Shared,
        close_timeout: Duration,
        budget: ReadBudget,
    ) -> Reading {
        let (mut messages, mut bytes) = (0, 0);
        loop {
            if !sink.can_read() {
                self.reading_paused = true;
                return Reading::Drained;
            }
            if messages >= budget.messages || bytes >= budget.bytes {
                return Reading::BudgetSpent;
            }
            if self.reading_paused {
                // The clocks stopped with the reading; they start afresh now.
                self.reading_paused = false;
                self.ws.wire_mut().restart_read_clock();
            }
            let incoming = match self.ws.read() {
                Ok(incoming) => incoming,
                Err(ReadEnd::WouldBlock) => {
                    if self.lean {
                        self.ws.release_buffers();
                    }
                    return Reading::Drained;
                }
                Err(ReadEnd::Eof) => return Reading::Ended(self.clean_ending()),
                Err(ReadEnd::Failed(failure)) => return Reading::Ended(self.fail(failure)),
            };
            match incoming {
                Incoming::Message(message) => {
                    messages += 1;
                    bytes += message.len();
                    log::trace!("received a message of {} bytes", message.len());
                    sink.message(message);
                }
                Incoming::Close(frame) => {
                    log::debug!("close frame received: {frame:?}");
                    self.server_close = ServerClose::Came(frame);
                    shared.closing.store(true, Ordering::SeqCst);
                    // The reply goes next; no data frame may follow it. What waits stays
                    // in the send queue, for the next connection.
                    shared.outgoing().close_gate();
                    if self.close_deadline.is_none() {
                        self.close_deadline = Some(Instant::now() + close_timeout);
                    }
                }
            }
        }
    }

    /// Fails the connection: tells the server why (best effort, never waiting), then ends.
    pub(super) fn fail(&mut self, failure: Failure) -> Ending {
        if matches!(self.server_close, ServerClose::Came(_)) {
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
        let reply_written = self.ws.wire().pending_bytes() == 0;
        if matches!(self.server_close, ServerClose::Came(_)) && reply_written {
            // Both close frames went over; only the server's TCP close is missing.
            self.clean_ending()
        } else if matches!(self.server_close, ServerClose::Came(_)) {
            Ending::failed(Error::Timeout {
                kind: TimeoutKind::Close,
                during: "writing our close frame (the server stopped reading)",
            })
        } else {
            Ending::failed(Error::Timeout {
                kind: TimeoutKind::Close,
                during: "waiting for the server's close frame",
            })
        }
    }

    fn clean_ending(&self) -> Ending {
        match &self.server_close {
            ServerClose::Came(Some(frame)) => Ending::clean(frame.code, frame.reason.clone()),
            ServerClose::Came(None) => Ending::clean(1005, String::new()),
            ServerClose::NotYet => Ending::failed(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection without a close frame",
            ))),
        }
    }
}
