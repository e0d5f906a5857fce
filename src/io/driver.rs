//! One handle's connections, as a state machine that a thread steps. The [`Driver`] lives as
//! long as the handle: the command channel, the config, the retry state. For each connection
//! it runs an attempt (`connect`), then a [`Session`] until the connection ends, then queues
//! how it ended; with reconnection on, it waits out the backoff and starts over.
//!
//! It owns no loop and no poller: a thread calls [`Driver::step`] when the connection's socket
//! is ready, its doorbell rang or its timer is due, and the step says when to call again
//! ([`Step`]). The thread is either the handle's own (`own_thread`) or a shared one
//! (`reactor`); the driver does not know which. An idle connection asks for no timer at all
//! unless one is due (connect, close, keepalive, backoff), so it costs no CPU and no wake-ups.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::Command;
use super::connect::{Attempt, Progress};
use super::message::Failure;
use super::retry::Retry;
use super::session::{Ending, ReadBudget, Reading, Session, Unsent};
use crate::config::Config;
use crate::deflate::Deflater;
use crate::error::Error;
use crate::queue::EventSink;
use crate::shared::Shared;
use crate::target::Target;

/// What the thread does after a step.
#[derive(Debug)]
pub(super) enum Step {
    /// Step again soon: work is left (a read budget ran out, or work came meanwhile).
    Again,
    /// Step again when the socket is ready, the doorbell rings, or at this instant if any.
    Wait(Option<Instant>),
    /// Every connection is over. The thread closes what it holds for this handle (the
    /// driver, with it the command channel, and its own poller if it has one) and then queues
    /// this ending with [`EventSink::close`]: after the last `Close` only the exit is left.
    Finished(Ending),
}

/// Where the handle's life stands.
#[derive(Debug)]
enum Phase {
    /// A connection attempt is to start.
    Starting,
    Connecting(Box<Attempt>),
    Open {
        session: Box<Session>,
        opened: Instant,
    },
    /// Waiting out the backoff before the next attempt.
    BackingOff {
        until: Instant,
    },
    /// The last connection ended like this; nothing more happens.
    Over(Option<Ending>),
}

/// The state of one handle's I/O, for the handle's whole life.
#[derive(Debug)]
pub(super) struct Driver {
    /// The poll token of this handle's sockets.
    token: Token,
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
    retry: Retry,
    phase: Phase,
    /// The most messages one step reads before it lets other connections on its thread go.
    read_budget: ReadBudget,
    /// Whether a quiet connection gives its read buffer back between reads.
    lean: bool,
    /// The thread could not wait (its poller failed): the next step ends the connection.
    interrupted: Option<Error>,
}

/// Which queued work would make the thread step again at once instead of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Only new commands: connecting (sends wait for the handshake), the socket pushes back
    /// (senders' frames wait for it to drain), or a close frame went either way (they wait
    /// for the next connection).
    NewCommands,
    /// New commands and the senders' frames.
    Everything,
    /// New commands, and the senders' frames once a burst has filled a larger write.
    Coalesce,
}

/// The longest the senders' frames of a long burst wait to fill a larger write.
const COALESCE_WAIT: Duration = Duration::from_micros(100);

/// How one serving step of an open connection ended.
enum Served {
    Ended(Ending),
    Again,
    Wait(Option<Instant>, Work),
}

impl Driver {
    /// A driver for `target` whose sockets register with `token`. `read_budget` bounds the
    /// messages read per step; `lean` gives a quiet connection's read buffer back.
    pub(super) fn new(
        token: Token,
        shared: Arc<Shared>,
        commands: flume::Receiver<Command>,
        config: Config,
        target: Target,
        read_budget: ReadBudget,
        lean: bool,
    ) -> Self {
        Driver {
            token,
            retry: Retry::new(config.reconnect_policy().cloned()),
            shared,
            commands,
            backlog: VecDeque::new(),
            config,
            target,
            user_closed: false,
            attempt: 0,
            phase: Phase::Starting,
            read_budget,
            lean,
            interrupted: None,
        }
    }

    /// The state this handle shares with its I/O.
    pub(super) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The thread could not wait for readiness (`Poll::poll` failed): the next step ends the
    /// connection with this error.
    pub(super) fn interrupt(&mut self, error: Error) {
        self.interrupted = Some(error);
    }

    /// Moves the handle's I/O on as far as it goes without blocking, and says when to go on.
    pub(super) fn step(&mut self, registry: &Registry, sink: &mut EventSink) -> Step {
        self.shared.awake();
        loop {
            match std::mem::replace(&mut self.phase, Phase::Over(None)) {
                Phase::Starting => {
                    sink.begin_connection();
                    let started = Attempt::start(
                        self.target.clone(),
                        self.config.clone(),
                        &self.shared,
                        self.attempt,
                        self.token,
                    );
                    match started {
                        Ok(attempt) => self.phase = Phase::Connecting(Box::new(attempt)),
                        Err(error) => {
                            self.ended(Ending::failed(error), None, Unsent::default(), sink)
                        }
                    }
                }
                Phase::Connecting(mut attempt) => {
                    let taken = match self.interrupted.take() {
                        Some(error) => Err(error),
                        None => self.take_commands_while_closed(),
                    };
                    if let Err(aborted) = taken {
                        attempt.abort(registry);
                        self.ended(Ending::failed(aborted), None, Unsent::default(), sink);
                        continue;
                    }
                    match attempt.advance(registry) {
                        Ok(Progress::Open(opened)) => {
                            // A server that allows only 8-bit windows for our messages gets
                            // them uncompressed: zlib cannot compress with so small a window.
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
                            // The one begin-connection step, before the event: whoever has
                            // seen `Open` must find the connection open (and compressed).
                            self.shared.begin_connection(deflate);
                            sink.open(opened.event);
                            let session = Session::new(opened.connection, self.lean);
                            self.phase = Phase::Open {
                                session: Box::new(session),
                                opened: Instant::now(),
                            };
                        }
                        Ok(Progress::Pending) => {
                            let wake_at = attempt.wake_at();
                            self.phase = Phase::Connecting(attempt);
                            return self.rest(sink, Some(wake_at), Work::NewCommands);
                        }
                        Err(error) => {
                            self.ended(Ending::failed(error), None, Unsent::default(), sink);
                        }
                    }
                }
                Phase::Open {
                    mut session,
                    opened,
                } => match self.serve(&mut session, sink) {
                    Served::Ended(ending) => {
                        let _ = registry.deregister(session.tcp());
                        let unsent = session.take_unsent(&self.shared);
                        // The socket closes here, before the connection's Close is queued.
                        drop(session);
                        self.ended(ending, Some(opened.elapsed()), unsent, sink);
                    }
                    Served::Again => {
                        self.phase = Phase::Open { session, opened };
                        sink.flush();
                        return Step::Again;
                    }
                    Served::Wait(wake_at, work) => {
                        self.phase = Phase::Open { session, opened };
                        return self.rest(sink, wake_at, work);
                    }
                },
                Phase::BackingOff { until } => {
                    let taken = match self.interrupted.take() {
                        Some(error) => Err(error),
                        None => self.take_commands_while_closed(),
                    };
                    if let Err(error) = taken {
                        self.shared.end_connection(VecDeque::new(), 0, false);
                        self.phase = Phase::Over(Some(Ending::failed(error)));
                        continue;
                    }
                    if Instant::now() >= until {
                        self.phase = Phase::Starting;
                        continue;
                    }
                    self.phase = Phase::BackingOff { until };
                    return self.rest(sink, Some(until), Work::NewCommands);
                }
                Phase::Over(Some(ending)) => return Step::Finished(ending),
                Phase::Over(None) => {
                    // Finished already; a later step (a stray wake-up) finds nothing to do.
                    return Step::Wait(None);
                }
            }
        }
    }

    /// A connection (or an attempt) ended: the one end-of-connection step, then either the
    /// backoff before the next attempt or the end.
    fn ended(
        &mut self,
        ending: Ending,
        open_for: Option<Duration>,
        unsent: Unsent,
        sink: &mut EventSink,
    ) {
        let next = self.retry.next(&ending, open_for, self.user_closed);
        // What the socket did not take goes back to the send queue, and every per-connection
        // flag is reset.
        self.shared
            .end_connection(unsent.chunks, unsent.payload, next.is_some());
        let Some(next) = next else {
            self.phase = Phase::Over(Some(ending));
            return;
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
        self.phase = Phase::BackingOff {
            until: Instant::now() + next.delay,
        };
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

    /// One turn of the open connection: write, read (up to the budget), keepalive, timers.
    fn serve(&mut self, session: &mut Session, sink: &mut EventSink) -> Served {
        if let Some(error) = self.interrupted.take() {
            return Served::Ended(session.fail(Failure::silent(error)));
        }
        let keepalive = self.config.keepalive();
        if let Err(failure) = self.write(session) {
            return Served::Ended(session.fail(failure));
        }
        let close_timeout = self.config.close_timeout();
        let budget_left = match session.read(sink, &self.shared, close_timeout, self.read_budget) {
            Reading::Ended(ending) => return Served::Ended(ending),
            Reading::BudgetSpent => false,
            Reading::Drained => true,
        };
        if let Err(failure) = session.keep_alive(keepalive) {
            return Served::Ended(session.fail(failure));
        }
        // Reading may have queued a pong or a close reply, keepalive a ping.
        if let Err(failure) = session.flush(&self.shared) {
            return Served::Ended(session.fail(failure));
        }
        if let Some(deadline) = session.close_deadline {
            if Instant::now() >= deadline {
                return Served::Ended(session.close_timed_out());
            }
        }
        if !budget_left {
            return Served::Again;
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
        let more = work == Work::Everything && self.shared.has_outgoing();
        if session.should_coalesce(more) {
            let until = Instant::now() + COALESCE_WAIT;
            let wake_at = wake_at.map_or(until, |at| at.min(until));
            return Served::Wait(Some(wake_at), Work::Coalesce);
        }
        Served::Wait(wake_at, work)
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

    /// The end of a step that waits: hands what was read to the consumer, then tells the
    /// handles that the thread is about to wait (so that they ring the doorbell), and looks
    /// once more for work that came before that; `work` says which work forbids the wait.
    fn rest(&mut self, sink: &mut EventSink, deadline: Option<Instant>, work: Work) -> Step {
        sink.flush();
        self.shared.going_to_sleep();
        let outgoing = match work {
            Work::NewCommands => false,
            Work::Everything => self.shared.has_outgoing(),
            Work::Coalesce => self.shared.coalesce(),
        };
        if !self.commands.is_empty() || outgoing || sink.resumed() {
            self.shared.awake();
            return Step::Again;
        }
        if deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            self.shared.awake();
            return Step::Again;
        }
        Step::Wait(deadline)
    }
}
