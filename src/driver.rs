//! The I/O thread: runs one connection attempt, then the open connection, then reports how it
//! ended. It sleeps in `Poll::poll` on the socket and the waker together, with a timeout only
//! when a timer is due, so an idle connection costs no CPU and no wake-ups.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use tungstenite::WebSocket;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::config::Config;
use crate::connect::{Attempt, Progress};
use crate::error::Error;
use crate::event::{Message, Text};
use crate::sender::Command;
use crate::shared::Shared;
use crate::sink::{Ending, EventSink};
use crate::target::Target;
use crate::wire::{Chunk, Wire};

/// The loop state of the I/O thread.
#[derive(Debug)]
pub(crate) struct Driver {
    poll: Poll,
    events: Events,
    shared: Arc<Shared>,
    commands: flume::Receiver<Command>,
    /// Commands taken from the channel and not yet carried out: sends made while connecting,
    /// or while the socket pushes back.
    backlog: VecDeque<Command>,
    sink: EventSink,
    config: Config,
    target: Target,
}

/// Which queued commands the I/O thread would carry out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// None: the socket pushes back.
    Nothing,
    /// Only new ones, e.g. a close while connecting; sends in the backlog wait for the
    /// handshake.
    NewCommands,
    /// All of them.
    Everything,
}

/// What an open connection is doing.
#[derive(Debug)]
struct Session {
    ws: Box<WebSocket<Wire>>,
    /// Bytes written into tungstenite but not yet flushed to the socket.
    unflushed: usize,
    /// The socket refused more bytes: wait for it to drain before taking more sends.
    write_blocked: bool,
    /// The close frame received from the server, once it came.
    received_close: Option<Option<CloseFrame>>,
    /// When the close handshake must be over; set once it starts from either side.
    close_deadline: Option<Instant>,
}

impl Driver {
    pub(crate) fn new(
        poll: Poll,
        shared: Arc<Shared>,
        commands: flume::Receiver<Command>,
        sink: EventSink,
        config: Config,
        target: Target,
    ) -> Self {
        Driver {
            poll,
            events: Events::with_capacity(8),
            shared,
            commands,
            backlog: VecDeque::new(),
            sink,
            config,
            target,
        }
    }

    /// Runs the connection to its end and queues its terminal events.
    pub(crate) fn run(mut self) {
        let ending = match self.connect() {
            Ok(ws) => self.serve(ws),
            Err(error) => Ending::failed(error),
        };
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.outgoing().closed = true;
        // The socket is closed (by `serve` or `connect`); close the poller too, so that after
        // the Close event only the thread's exit is left.
        let Driver { poll, sink, .. } = self;
        drop(poll);
        sink.finish(ending);
    }

    /// Runs the connection attempt; sends made meanwhile wait, in order, in the backlog.
    fn connect(&mut self) -> Result<Box<WebSocket<Wire>>, Error> {
        let mut attempt = Attempt::start(self.target.clone(), self.config.clone(), &self.shared)?;
        loop {
            while let Some(command) = self.next_command() {
                match command {
                    Command::Ping(_) => self.backlog.push_back(command),
                    Command::Close(_) | Command::Shutdown => {
                        attempt.abort(self.poll.registry());
                        return Err(Error::Aborted);
                    }
                }
            }
            match attempt.advance(self.poll.registry())? {
                Progress::Open(ws, open) => {
                    self.sink.open(open);
                    return Ok(ws);
                }
                Progress::Pending => self.sleep(Some(attempt.wake_at()), Work::NewCommands)?,
            }
        }
    }

    /// Serves the open connection until it ends.
    fn serve(&mut self, ws: Box<WebSocket<Wire>>) -> Ending {
        let mut session = Session {
            ws,
            unflushed: 0,
            write_blocked: false,
            received_close: None,
            close_deadline: None,
        };
        let ending = loop {
            if let Some(ending) = self.turn(&mut session) {
                break ending;
            }
            let work = if session.write_blocked {
                Work::Nothing
            } else {
                Work::Everything
            };
            if let Err(err) = self.sleep(session.close_deadline, work) {
                break Ending::failed(err);
            }
        };
        let _ = self.poll.registry().deregister(session.ws.get_mut().tcp());
        ending
    }

    /// One pass over everything that may have changed: commands, writes, reads, timers.
    fn turn(&mut self, session: &mut Session) -> Option<Ending> {
        session.take_outgoing(&self.shared);
        if let Err(err) = self.write_commands(session) {
            return Some(self.fail(session, err));
        }
        if let Err(err) = self.flush(session) {
            return Some(self.fail(session, err));
        }
        if let Some(ending) = self.read(session) {
            return Some(ending);
        }
        // Reading may have queued a pong or a close reply.
        if let Err(err) = self.flush(session) {
            return Some(self.fail(session, err));
        }
        match session.close_deadline {
            Some(deadline) if Instant::now() >= deadline => Some(self.close_timed_out(session)),
            _ => None,
        }
    }

    fn next_command(&mut self) -> Option<Command> {
        match self.commands.try_recv() {
            Ok(command) => Some(command),
            Err(flume::TryRecvError::Empty) => None,
            // Every handle is gone; `Outbox::drop` sent `Shutdown` before that.
            Err(flume::TryRecvError::Disconnected) => None,
        }
    }

    /// Carries out queued commands (pings, close) until the socket pushes back. Data messages
    /// come through the outgoing buffer instead (`Session::take_outgoing`).
    fn write_commands(&mut self, session: &mut Session) -> Result<(), Error> {
        let close_timeout = self.config.close_timeout();
        while !session.write_blocked {
            let Some(command) = self.backlog.pop_front() else {
                break;
            };
            session.carry_out(command, &self.shared, close_timeout)?;
        }
        if session.write_blocked {
            return Ok(());
        }
        // One lock for everything queued, instead of one per command; what the socket
        // refuses waits in the backlog.
        let mut drained = self.commands.drain();
        for command in drained.by_ref() {
            session.carry_out(command, &self.shared, close_timeout)?;
            if session.write_blocked {
                break;
            }
        }
        self.backlog.extend(drained);
        Ok(())
    }

    fn flush(&mut self, session: &mut Session) -> Result<(), Error> {
        session.write_blocked = false;
        would_block(session.ws.flush(), &mut session.write_blocked)?;
        if !session.write_blocked && session.unflushed > 0 {
            self.shared
                .buffered_amount
                .fetch_sub(session.unflushed, Ordering::Relaxed);
            session.unflushed = 0;
        }
        Ok(())
    }

    /// Reads every complete message until the socket has no more or the queue is full.
    fn read(&mut self, session: &mut Session) -> Option<Ending> {
        while self.sink.can_read() {
            let message = match session.ws.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                    return None;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Some(clean_ending(session));
                }
                Err(err) => return Some(self.fail(session, Error::from_protocol(err))),
            };
            match message {
                tungstenite::Message::Text(text) => {
                    log::trace!("received text of {} bytes", text.len());
                    self.sink
                        .message(Message::Text(Text::from_tungstenite(text)));
                }
                tungstenite::Message::Binary(bytes) => {
                    log::trace!("received {} bytes", bytes.len());
                    self.sink.message(Message::Binary(bytes));
                }
                tungstenite::Message::Close(Some(frame)) if is_invalid_code_reply(&frame) => {
                    let error = Error::Protocol("the server sent an invalid close code".into());
                    return Some(self.fail(session, error));
                }
                tungstenite::Message::Close(frame) => {
                    log::debug!("close frame received: {frame:?}");
                    session.received_close = Some(frame);
                    self.shared.closing.store(true, Ordering::SeqCst);
                    // The reply goes next; no data frame may follow it.
                    session.seal_outgoing(&self.shared);
                    if session.close_deadline.is_none() {
                        session.close_deadline = Some(Instant::now() + self.config.close_timeout());
                    }
                }
                // tungstenite queues the pong itself; `turn` flushes it right after.
                tungstenite::Message::Ping(_)
                | tungstenite::Message::Pong(_)
                | tungstenite::Message::Frame(_) => {}
            }
        }
        None
    }

    /// Fails the connection: tells the server why (best effort, never waiting), then ends.
    fn fail(&mut self, session: &mut Session, error: Error) -> Ending {
        if session.received_close.is_some() {
            // The server's close frame came: a reset or EOF now ends a finished handshake.
            return clean_ending(session);
        }
        let code = match &error {
            Error::Protocol(source) => match source.downcast_ref::<tungstenite::Error>() {
                Some(tungstenite::Error::Utf8(_)) => Some(CloseCode::Invalid),
                Some(tungstenite::Error::Capacity(_)) => Some(CloseCode::Size),
                _ => Some(CloseCode::Protocol),
            },
            _ => None,
        };
        if let Some(code) = code {
            if session.ws.can_write() {
                let frame = CloseFrame {
                    code,
                    reason: "".into(),
                };
                let _ = session.ws.close(Some(frame));
            }
            // Also pushes out a close reply that tungstenite has queued.
            let _ = session.ws.flush();
        }
        log::debug!("connection failed: {error}");
        Ending::failed(error)
    }

    fn close_timed_out(&mut self, session: &mut Session) -> Ending {
        if session.received_close.is_some() {
            // Both close frames went over; only the server's TCP close is missing.
            clean_ending(session)
        } else {
            Ending::failed(Error::Timeout("waiting for the server's close frame"))
        }
    }

    /// Sleeps until the socket or a handle has something, or `deadline` passes. `work` says
    /// which queued commands would be carried out now, and so forbid the sleep.
    fn sleep(&mut self, deadline: Option<Instant>, work: Work) -> Result<(), Error> {
        // Whatever was read goes to the consumer now, before any wait.
        self.sink.flush();
        self.shared.going_to_sleep();
        let new_commands = work != Work::Nothing && !self.commands.is_empty();
        let backlog =
            work == Work::Everything && (!self.backlog.is_empty() || self.shared.has_outgoing());
        if new_commands || backlog || self.sink.resumed() {
            self.shared.awake();
            return Ok(());
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if timeout == Some(Duration::ZERO) {
            self.shared.awake();
            return Ok(());
        }
        let polled = self.poll.poll(&mut self.events, timeout);
        self.shared.awake();
        match polled {
            Err(err) if err.kind() != io::ErrorKind::Interrupted => Err(Error::Io(err)),
            _ => Ok(()),
        }
    }
}

/// tungstenite answers a close frame with a code that may not be sent (1005, 1006, 1015, under
/// 1000, ...) with 1002 "Protocol violation", and hands us that reply instead of the code. Per
/// WHATWG that fails the connection: report it so, rather than as a clean close.
fn is_invalid_code_reply(frame: &CloseFrame) -> bool {
    frame.code == CloseCode::Protocol && frame.reason.as_str() == "Protocol violation"
}

fn clean_ending(session: &Session) -> Ending {
    match &session.received_close {
        Some(Some(frame)) => Ending::clean(frame.code.into(), frame.reason.to_string()),
        Some(None) => Ending::clean(1005, String::new()),
        None => Ending::failed(Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection without a close frame",
        ))),
    }
}

impl Session {
    /// Hands one command to tungstenite.
    fn carry_out(
        &mut self,
        command: Command,
        shared: &Shared,
        close_timeout: Duration,
    ) -> Result<(), Error> {
        match command {
            Command::Ping(payload) => {
                if !self.ws.can_write() {
                    return Ok(());
                }
                would_block(
                    self.ws.write(tungstenite::Message::Ping(payload)),
                    &mut self.write_blocked,
                )
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
    fn take_outgoing(&mut self, shared: &Shared) {
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
    ) -> Result<(), Error> {
        if self.close_deadline.is_none() {
            self.close_deadline = Some(Instant::now() + close_timeout);
        }
        shared.closing.store(true, Ordering::SeqCst);
        if self.ws.can_write() {
            log::debug!("closing with code {}", frame.code);
            would_block(self.ws.close(Some(frame)), &mut self.write_blocked)?;
        }
        Ok(())
    }
}

/// Turns tungstenite's `WouldBlock` into "wait for the socket": the data stays buffered.
fn would_block(result: tungstenite::Result<()>, blocked: &mut bool) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => {
            *blocked = true;
            Ok(())
        }
        Err(err) => Err(Error::from_protocol(err)),
    }
}
