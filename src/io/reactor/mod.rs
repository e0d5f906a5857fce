//! Shared I/O threads: each runs one poller for many handles' drivers, steps a driver when its
//! socket is ready, its doorbell rang or its timer came due, and sleeps in `Poll::poll` in
//! between, until the earliest timer of all its connections. One file descriptor per
//! connection (its socket) plus one poller and one waker per thread.
//!
//! - **Fairness.** A round steps every connection that has work once; a step reads at most a
//!   budget of messages and writes at most a window, and a connection with work left goes to
//!   the back of the queue. A connection that floods delays its neighbours by one step each
//!   round, not by its whole backlog.
//! - **Isolation.** A panic while stepping a connection ends that connection with
//!   `Error(Internal)` and `Close`; the thread and its other connections go on.
//! - **Life.** A thread serves the connections it was given until each has finished, and
//!   exits once the [`Pool`] is gone and its last connection has finished: dropping the pool
//!   while clients use it ends nothing.

mod timers;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};

use super::driver::{Driver, Step};
use super::fine_timer::FineTimer;
use super::{IoThread, Parts};
use crate::config::Config;
use crate::doorbell::{Bell, Doorbell};
use crate::error::{Error, Result, panic_message};
use crate::queue::EventSink;
use crate::target::Target;
use timers::{Timed, Timer, Timers};

/// The poll token of a thread's waker. Connections count up from 1.
const BELL: Token = Token(usize::MAX);
/// The poll token of the timer of waits under a millisecond.
const FINE_TIMER: Token = Token(usize::MAX - 1);

/// The handle side of a set of shared I/O threads: where new connections go.
#[derive(Debug)]
pub(crate) struct Pool {
    threads: Vec<Remote>,
    /// The next connection's token.
    next_token: AtomicUsize,
}

/// One shared thread, as the handle side sees it.
#[derive(Debug)]
struct Remote {
    bell: Arc<Bell>,
    arrivals: flume::Sender<Arrival>,
    /// Its connections that have not finished yet.
    load: Arc<AtomicUsize>,
}

/// A new connection, handed to its thread.
struct Arrival {
    token: Token,
    driver: Driver,
    sink: EventSink,
    finished: flume::Sender<()>,
}

impl Pool {
    /// Starts `threads` shared I/O threads.
    ///
    /// # Errors
    /// [`Error::Runtime`] if a poller, its waker or a thread cannot be created; the threads
    /// started so far exit then.
    pub(crate) fn new(threads: usize) -> Result<Pool> {
        let mut remotes = Vec::with_capacity(threads);
        for index in 0..threads {
            let poll = Poll::new().map_err(Error::Runtime)?;
            let waker = Waker::new(poll.registry(), BELL).map_err(Error::Runtime)?;
            let bell = Arc::new(Bell::new(waker));
            let (arrivals_tx, arrivals) = flume::unbounded();
            let load = Arc::new(AtomicUsize::new(0));
            let reactor = Reactor {
                poll,
                bell: bell.clone(),
                arrivals,
                load: load.clone(),
                conns: HashMap::new(),
                queue: VecDeque::new(),
                timers: Timers::default(),
                rung: Vec::new(),
                fine_timer: FineTimer::new(FINE_TIMER),
                broken: false,
            };
            std::thread::Builder::new()
                .name(format!("nwebsocket-io-{index}"))
                .spawn(move || reactor.run())
                .map_err(Error::Runtime)?;
            remotes.push(Remote {
                bell,
                arrivals: arrivals_tx,
                load,
            });
        }
        Ok(Pool {
            threads: remotes,
            next_token: AtomicUsize::new(1),
        })
    }

    /// The number of threads.
    pub(crate) fn threads(&self) -> usize {
        self.threads.len()
    }

    /// The connections on these threads that have not finished.
    pub(crate) fn connections(&self) -> usize {
        self.threads
            .iter()
            .map(|remote| remote.load.load(Ordering::Relaxed))
            .sum()
    }

    /// Starts the I/O for `target` on the thread with the fewest connections.
    ///
    /// # Errors
    /// [`Error::Runtime`] if that thread is gone (it cannot be, short of a bug: it is reported
    /// rather than hidden).
    pub(crate) fn add(&self, target: Target, config: Config) -> Result<IoThread> {
        // A thread whose poller failed has exited once its connections ended: skipped.
        let remote = self
            .threads
            .iter()
            .filter(|remote| !remote.arrivals.is_disconnected())
            .min_by_key(|remote| remote.load.load(Ordering::Relaxed))
            .ok_or_else(|| Error::Runtime(io::Error::other("no I/O threads")))?;
        let token = Token(self.next_token.fetch_add(1, Ordering::Relaxed));
        let doorbell = Doorbell::Shared {
            bell: remote.bell.clone(),
            token,
        };
        let Parts {
            driver,
            sink,
            finished,
            handle,
        } = Parts::new(target, config, token, doorbell, true);
        remote.load.fetch_add(1, Ordering::Relaxed);
        let arrival = Arrival {
            token,
            driver,
            sink,
            finished,
        };
        if remote.arrivals.send(arrival).is_err() {
            remote.load.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Runtime(io::Error::other("the I/O thread is gone")));
        }
        if let Err(err) = remote.bell.ring(token) {
            log::warn!("could not wake the I/O thread: {err}");
        }
        Ok(handle)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Disconnect the arrivals first, then wake the thread: it looks at them when woken,
        // sees them disconnected, and exits once its last connection has finished.
        let (disconnected, _) = flume::bounded(0);
        drop(std::mem::replace(&mut self.arrivals, disconnected));
        let _ = self.bell.ring(BELL);
    }
}

/// One connection on a shared thread.
struct Conn {
    driver: Driver,
    sink: EventSink,
    finished: flume::Sender<()>,
    /// It is in the run queue.
    scheduled: bool,
    timer: Timer,
}

impl Timed for HashMap<Token, Box<Conn>> {
    fn timer(&mut self, token: Token) -> Option<&mut Timer> {
        self.get_mut(&token).map(|conn| &mut conn.timer)
    }
}

/// A shared thread's state.
struct Reactor {
    poll: Poll,
    bell: Arc<Bell>,
    arrivals: flume::Receiver<Arrival>,
    load: Arc<AtomicUsize>,
    conns: HashMap<Token, Box<Conn>>,
    /// Connections to step in this round or the next, each once.
    queue: VecDeque<Token>,
    timers: Timers,
    /// Scratch for the tokens that rang the bell.
    rung: Vec<Token>,
    fine_timer: FineTimer,
    /// The poller failed: the connections end, and then the thread, rather than retry a
    /// poller that keeps failing at once (a busy loop).
    broken: bool,
}

impl Reactor {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let pool_gone = self.take_arrivals();
            if (pool_gone || self.broken) && self.conns.is_empty() {
                break;
            }
            let timeout = if self.queue.is_empty() {
                let next = self.timers.next(&mut self.conns);
                self.fine_timer.timeout(self.poll.registry(), next)
            } else {
                Some(Duration::ZERO)
            };
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if err.kind() != io::ErrorKind::Interrupted {
                    self.interrupt_all(&err);
                }
            }
            for event in events.iter() {
                if event.token() != BELL && event.token() != FINE_TIMER {
                    self.schedule(event.token());
                }
            }
            // The scratch list keeps its room from one wake-up to the next: no allocation
            // per wake-up on a thread that senders ring all the time.
            let mut rung = std::mem::take(&mut self.rung);
            self.bell.take_rung(&mut rung);
            for token in rung.drain(..) {
                self.schedule(token);
            }
            self.rung = rung;
            self.take_arrivals();
            self.fire_timers();
            // One round: every connection with work, once. What they leave for later (work
            // beyond their budget) goes to the next round, after a look at the sockets.
            for _ in 0..self.queue.len() {
                if let Some(token) = self.queue.pop_front() {
                    self.step(token);
                }
            }
        }
        log::debug!("shared I/O thread exits: its pool is gone and its connections finished");
    }

    /// Takes the new connections and schedules each for its first step. Returns whether the
    /// pool is gone (no more will come).
    fn take_arrivals(&mut self) -> bool {
        loop {
            match self.arrivals.try_recv() {
                Ok(arrival) => {
                    let conn = Conn {
                        driver: arrival.driver,
                        sink: arrival.sink,
                        finished: arrival.finished,
                        scheduled: false,
                        timer: Timer::default(),
                    };
                    // Boxed: the map's spare room costs a pointer per slot, not a connection.
                    self.conns.insert(arrival.token, Box::new(conn));
                    self.schedule(arrival.token);
                }
                Err(flume::TryRecvError::Empty) => return false,
                Err(flume::TryRecvError::Disconnected) => return true,
            }
        }
    }

    /// Puts `token` in the run queue, unless it is there already or has finished (a stray
    /// readiness event or ring for a connection that is gone).
    fn schedule(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(&token) {
            if !conn.scheduled {
                conn.scheduled = true;
                self.queue.push_back(token);
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(token) = self.timers.pop_due(now, &mut self.conns) {
            self.schedule(token);
        }
        let armed = self
            .conns
            .iter()
            .filter_map(|(token, conn)| conn.timer.armed().map(|at| (*token, at)));
        self.timers.compact(self.conns.len(), armed);
    }

    /// Steps one connection, catching a panic: that ends this connection only.
    fn step(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.scheduled = false;
        let registry = self.poll.registry();
        let stepped = std::panic::catch_unwind(AssertUnwindSafe(|| {
            conn.driver.step(registry, &mut conn.sink)
        }));
        match stepped {
            Ok(Step::Again) => self.schedule(token),
            Ok(Step::Wait(wake_at)) => self.timers.set(token, &mut conn.timer, wake_at),
            Ok(Step::Finished(ending)) => {
                if let Some(conn) = self.conns.remove(&token) {
                    self.load.fetch_sub(1, Ordering::Relaxed);
                    let Conn {
                        driver,
                        mut sink,
                        finished,
                        ..
                    } = *conn;
                    // The socket closed with the session; the rest of the handle's I/O goes
                    // before the last event.
                    drop(driver);
                    sink.close(ending.error, ending.close);
                    drop(sink);
                    drop(finished);
                }
            }
            Err(panic) => {
                let why = panic_message(&*panic).to_owned();
                log::error!("a connection's I/O panicked (the others go on): {why}");
                if let Some(conn) = self.conns.remove(&token) {
                    self.load.fetch_sub(1, Ordering::Relaxed);
                    end_after_panic(conn, why);
                }
            }
        }
    }

    /// The poller failed (not an interruption): every connection on this thread ends with it.
    fn interrupt_all(&mut self, err: &io::Error) {
        log::error!("the shared I/O thread's poller failed: {err}");
        self.broken = true;
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.driver
                    .interrupt(Error::Runtime(io::Error::new(err.kind(), err.to_string())));
            }
            self.schedule(token);
        }
    }
}

/// Ends a connection whose step panicked: its sockets close with the driver, and its stream
/// ends by the contract, with `Error(Internal)` and one `Close` (unless that went out
/// already). Each part is guarded: a second panic here must not take the thread down.
fn end_after_panic(conn: Box<Conn>, why: String) {
    let Conn {
        driver,
        mut sink,
        finished,
        ..
    } = *conn;
    let shared = driver.shared();
    let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(driver)));
    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
        shared.end_connection(Default::default(), 0, false);
        sink.close_after_panic(Error::Internal(why));
    }));
    drop(sink);
    drop(finished);
}
