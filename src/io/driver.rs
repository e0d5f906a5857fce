//! The I/O thread's loop. The [`Driver`] lives as long as the handle: the poller, the command
//! channel, the config, the retry state. For each connection it runs an attempt (`connect`),
//! then a [`Session`] until the connection ends, then queues how it ended; with reconnection
//! on, it waits out the backoff and starts over, on the same thread. It sleeps in
//! `Poll::poll` on the socket and the waker together, with a timeout only when a timer is due
//! (connect, close, keepalive, backoff), so an idle connection costs no CPU and no wake-ups.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use super::Command;
use super::connect::{Attempt, Progress};
use super::message::{Connection, Failure};
use super::retry::Retry;
use super::session::{Ending, Session, Unsent};
use crate::config::Config;
use crate::deflate::Deflater;
use crate::error::Error;
use crate::queue::EventSink;
use crate::shared::Shared;
use crate::target::Target;

/// The loop state of the I/O thread, for the handle's whole life.
#[derive(Debug)]
pub(super) struct Driver {
    poll: Poll,
    events: Events,
    shared: Arc<Shared>,
    commands: flume::Receiver<Command>,
    /// Pings taken from the channel while connecting, to be sent once open.
    backlog: VecDeque<Command>,
    config: Config,
    target: Target,
    /// The user closed (or dropped every handle): no reconnection after this.
    user_closed: bool,
    /// The number of the coming reconnect attempt (0: the first connection), for the hook.
    attempt: u32,
}

/// Which queued work would make the I/O thread go on at once instead of sleeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Only new commands: connecting (sends wait for the handshake), the socket pushes back
    /// (senders' frames wait for it to drain), or a close frame went either way (they wait
    /// for the next connection).
    NewCommands,
    /// New commands and the senders' frames.
    Everything,
}

impl Driver {
    pub(super) fn new(
        poll: Poll,
        shared: Arc<Shared>,
        commands: flume::Receiver<Command>,
        config: Config,
        target: Target,
    ) -> Self {
        Driver {
            poll,
            events: Events::with_capacity(8),
            shared,
            commands,
            backlog: VecDeque::new(),
            config,
            target,
            user_closed: false,
            attempt: 0,
        }
    }

    /// Runs connections until the last one has ended, and queues each one's events: one
    /// connection, or, with reconnection on, as many as the policy allows, with the backoff
    /// between them. The stream ends after the last `Close`.
    pub(super) fn run(mut self, sink: &mut EventSink) {
        let mut retry = Retry::new(self.config.reconnect_policy().cloned());
        let last = loop {
            sink.begin_connection();
            let (ending, open_for, unsent) = self.connection(sink);
            let next = retry.next(&ending, open_for, self.user_closed);
            // The one end-of-connection step: what the socket did not take goes back to the
            // send queue, and every per-connection flag is reset.
            self.shared
                .end_connection(unsent.chunks, unsent.payload, next.is_some());
            let Some(next) = next else {
                break ending;
            };
            log::debug!(
                "reconnecting in {:?} (attempt {})",
                next.delay,
                next.attempt
            );
            let mut close = ending.close;
            close.reconnect = Some(next.delay);
            close.attempt = next.attempt;
            sink.close(ending.error, close);
            self.attempt = next.attempt;
            // The backoff belongs to the next attempt: a close() now aborts that attempt.
            sink.begin_connection();
            if let Err(error) = self.back_off(Instant::now() + next.delay, sink) {
                self.shared.end_connection(VecDeque::new(), 0, false);
                break Ending::failed(error);
            }
        };
        // The socket is closed; close the poller too, so that after the last Close event only
        // the thread's exit is left.
        drop(self);
        sink.close(last.error, last.close);
    }

    /// One connection: the attempt, then the session. Returns how it ended, if it opened how
    /// long it was open, and the senders' frames it did not write.
    fn connection(&mut self, sink: &mut EventSink) -> (Ending, Option<Duration>, Unsent) {
        match self.connect(sink) {
            Ok(ws) => {
                let opened = Instant::now();
                let (ending, unsent) = self.serve(Session::new(ws), sink);
                (ending, Some(opened.elapsed()), unsent)
            }
            Err(error) => (Ending::failed(error), None, Unsent::default()),
        }
    }

    /// Runs the connection attempt; pings sent meanwhile wait, in order, in the backlog.
    fn connect(&mut self, sink: &mut EventSink) -> Result<Box<Connection>, Error> {
        let mut attempt = Attempt::start(
            self.target.clone(),
            self.config.clone(),
            &self.shared,
            self.attempt,
        )?;
        loop {
            if let Err(aborted) = self.take_commands_while_closed() {
                attempt.abort(self.poll.registry());
                return Err(aborted);
            }
            match attempt.advance(self.poll.registry())? {
                Progress::Open(opened) => {
                    // A server that allows only 8-bit windows for our messages gets them
                    // uncompressed: zlib cannot compress with so small a window.
                    let deflate = opened
                        .deflate
                        .filter(|agreed| agreed.client_max_window_bits >= 9)
                        .map(|agreed| {
                            let deflater = Deflater::new(
                                agreed.client_max_window_bits,
                                agreed.client_no_context_takeover,
                            );
                            (deflater, self.config.deflate_threshold())
                        });
                    // The one begin-connection step, before the event: whoever has seen `Open`
                    // must find the connection open (and its messages compressed).
                    self.shared.begin_connection(deflate);
                    sink.open(opened.event);
                    return Ok(opened.connection);
                }
                Progress::Pending => {
                    self.sleep(sink, Some(attempt.wake_at()), Work::NewCommands)?;
                }
            }
        }
    }

    /// Waits until `until` before the next attempt; a close ends the wait (and the stream).
    fn back_off(&mut self, until: Instant, sink: &mut EventSink) -> Result<(), Error> {
        loop {
            self.take_commands_while_closed()?;
            if Instant::now() >= until {
                return Ok(());
            }
            self.sleep(sink, Some(until), Work::NewCommands)?;
        }
    }

    /// Takes the commands that came while no connection is open: pings wait for the next one;
    /// a close or the last handle's drop is `Err(Aborted)`.
    fn take_commands_while_closed(&mut self) -> Result<(), Error> {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Ping(_) => self.backlog.push_back(command),
                Command::Close(_) | Command::Shutdown => {
                    self.user_closed = true;
                    return Err(Error::Aborted);
                }
            }
        }
        Ok(())
    }

    /// Serves the open connection until it ends; closes its socket. Returns how it ended and
    /// the senders' frames it did not write.
    fn serve(&mut self, mut session: Session, sink: &mut EventSink) -> (Ending, Unsent) {
        let keepalive = self.config.keepalive();
        let ending = loop {
            if let Err(failure) = self.write(&mut session) {
                break session.fail(failure);
            }
            let close_timeout = self.config.close_timeout();
            if let Some(ending) = session.read(sink, &self.shared, close_timeout) {
                break ending;
            }
            if let Err(failure) = session.keep_alive(keepalive) {
                break session.fail(failure);
            }
            // Reading may have queued a pong or a close reply, keepalive a ping.
            if let Err(failure) = session.flush(&self.shared) {
                break session.fail(failure);
            }
            if let Some(deadline) = session.close_deadline {
                if Instant::now() >= deadline {
                    break session.close_timed_out();
                }
            }
            let work = if session.takes_sends() {
                Work::Everything
            } else {
                Work::NewCommands
            };
            let wake_at = match (session.close_deadline, session.keepalive_due(keepalive)) {
                (Some(close), Some(keepalive)) => Some(close.min(keepalive)),
                (close, keepalive) => close.or(keepalive),
            };
            if let Err(err) = self.sleep(sink, wake_at, work) {
                break session.fail(Failure::silent(err));
            }
        };
        let _ = self.poll.registry().deregister(session.tcp());
        let unsent = session.take_unsent(&self.shared);
        (ending, unsent)
    }

    /// Moves a window of the senders' frames (unless the socket pushes back) and every queued
    /// command to the writer, and writes.
    fn write(&mut self, session: &mut Session) -> Result<(), Failure> {
        session.take_outgoing(&self.shared, self.config.write_buffer_size());
        let close_timeout = self.config.close_timeout();
        for command in self.backlog.drain(..) {
            session.carry_out(command, &self.shared, close_timeout);
        }
        // One lock for everything queued, instead of one per command.
        for command in self.commands.drain() {
            if matches!(command, Command::Close(_) | Command::Shutdown) {
                self.user_closed = true;
            }
            session.carry_out(command, &self.shared, close_timeout);
        }
        session.flush(&self.shared)
    }

    /// Sleeps until the socket or a handle has something, or `deadline` passes. `work` says
    /// which queued work forbids the sleep.
    fn sleep(
        &mut self,
        sink: &mut EventSink,
        deadline: Option<Instant>,
        work: Work,
    ) -> Result<(), Error> {
        // Whatever was read goes to the consumer now, before any wait.
        sink.flush();
        self.shared.going_to_sleep();
        let outgoing = work == Work::Everything && self.shared.has_outgoing();
        if !self.commands.is_empty() || outgoing || sink.resumed() {
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
            Err(err) if err.kind() != io::ErrorKind::Interrupted => Err(Error::Runtime(err)),
            _ => Ok(()),
        }
    }
}
