//! The I/O thread's loop. The [`Driver`] lives as long as the handle: the poller, the command
//! channel, the config. For each connection it runs an attempt (`connect`), then a
//! [`Session`] until the connection ends, then queues how it ended. It sleeps in `Poll::poll`
//! on the socket and the waker together, with a timeout only when a timer is due, so an idle
//! connection costs no CPU and no wake-ups.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use tungstenite::WebSocket;

use super::Command;
use super::connect::{Attempt, Progress};
use super::session::{Ending, Failure, Session};
use super::wire::Wire;
use crate::config::Config;
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
}

/// Which queued work would make the I/O thread go on at once instead of sleeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Only new commands: connecting (sends wait for the handshake), or the socket pushes
    /// back (senders' frames wait for it to drain).
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
        }
    }

    /// Runs the connection to its end and queues its terminal events. (One connection for
    /// now; reconnection repeats the attempt and the session here, with the same poller,
    /// queue and commands.)
    pub(super) fn run(mut self, sink: &mut EventSink) {
        sink.begin_connection();
        self.shared.begin_connection();
        let ending = match self.connect(sink) {
            Ok(ws) => self.serve(Session::new(ws), sink),
            Err(error) => Ending::failed(error),
        };
        self.shared.end_connection();
        // The socket is closed (by `serve` or `connect`); close the poller too, so that after
        // the Close event only the thread's exit is left.
        drop(self);
        sink.close(ending.error, ending.close);
    }

    /// Runs the connection attempt; pings sent meanwhile wait, in order, in the backlog.
    fn connect(&mut self, sink: &mut EventSink) -> Result<Box<WebSocket<Wire>>, Error> {
        let mut attempt = Attempt::start(self.target.clone(), self.config.clone(), &self.shared)?;
        loop {
            while let Ok(command) = self.commands.try_recv() {
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
                    sink.open(open);
                    return Ok(ws);
                }
                Progress::Pending => {
                    self.sleep(sink, Some(attempt.wake_at()), Work::NewCommands)?;
                }
            }
        }
    }

    /// Serves the open connection until it ends; closes its socket.
    fn serve(&mut self, mut session: Session, sink: &mut EventSink) -> Ending {
        let ending = loop {
            if let Err(failure) = self.write(&mut session) {
                break session.fail(failure);
            }
            let close_timeout = self.config.close_timeout();
            if let Some(ending) = session.read(sink, &self.shared, close_timeout) {
                break ending;
            }
            // Reading may have queued a pong or a close reply.
            if let Err(failure) = session.flush(&self.shared) {
                break session.fail(failure);
            }
            if let Some(deadline) = session.close_deadline {
                if Instant::now() >= deadline {
                    break session.close_timed_out();
                }
            }
            let work = if session.write_blocked {
                Work::NewCommands
            } else {
                Work::Everything
            };
            if let Err(err) = self.sleep(sink, session.close_deadline, work) {
                break session.fail(Failure::silent(err));
            }
        };
        let _ = self.poll.registry().deregister(session.tcp());
        ending
    }

    /// Moves the senders' frames (unless the socket pushes back) and every queued command to
    /// the writer, and writes.
    fn write(&mut self, session: &mut Session) -> Result<(), Failure> {
        if !session.write_blocked {
            session.take_outgoing(&self.shared);
        }
        let close_timeout = self.config.close_timeout();
        for command in self.backlog.drain(..) {
            session.carry_out(command, &self.shared, close_timeout)?;
        }
        // One lock for everything queued, instead of one per command.
        for command in self.commands.drain() {
            session.carry_out(command, &self.shared, close_timeout)?;
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
