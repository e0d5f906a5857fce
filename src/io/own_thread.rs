//! A handle's I/O on a thread of its own, named `nwebsocket-io`: one poller, one waker and
//! the socket, for the handle's whole life. The thread steps the driver and sleeps in
//! `Poll::poll` in between, with a timeout only when the driver has a timer due.

use std::io;
use std::panic::AssertUnwindSafe;

use mio::{Events, Poll, Token, Waker};

use super::driver::Step;
use super::fine_timer::FineTimer;
use super::{IoThread, Parts};
use crate::config::Config;
use crate::doorbell::Doorbell;
use crate::error::{Error, Result, panic_message};
use crate::target::Target;

/// The stack of the I/O thread: enough for TLS and the handshake, small for many connections.
const IO_THREAD_STACK: usize = 256 << 10;

/// The poll token of the connection's sockets.
const SOCKET: Token = Token(0);
/// The poll token of the waker that handles (and the resolver) ring.
const WAKER: Token = Token(1);
/// The poll token of the timer of waits under a millisecond.
const FINE_TIMER: Token = Token(2);

/// Starts the I/O thread for `target`.
///
/// # Errors
/// [`Error::Runtime`] if the poller, its waker or the thread cannot be created.
pub(super) fn spawn(target: Target, config: Config) -> Result<IoThread> {
    let poll = Poll::new().map_err(Error::Runtime)?;
    let waker = Waker::new(poll.registry(), WAKER).map_err(Error::Runtime)?;
    let Parts {
        driver,
        sink,
        finished,
        mut handle,
    } = Parts::new(target, config, SOCKET, Doorbell::Own(waker), false);
    let thread = std::thread::Builder::new()
        .name("nwebsocket-io".into())
        .stack_size(IO_THREAD_STACK)
        .spawn(move || {
            let _finished = finished;
            // Declared after `_finished`, so dropped before it: the stream has ended by the
            // time `wait_closed` returns.
            let mut sink = sink;
            // Unwinding drops (and so closes) the socket; the stream still ends by the
            // contract, with one Close.
            let shared = driver.shared();
            let run = std::panic::catch_unwind(AssertUnwindSafe(|| run(poll, driver, &mut sink)));
            if let Err(panic) = run {
                let why = panic_message(&*panic).to_owned();
                log::error!("the I/O thread panicked: {why}");
                shared.end_connection(Default::default(), 0, false);
                sink.close_after_panic(Error::Internal(why));
            }
        })
        .map_err(Error::Runtime)?;
    handle.thread = Some(thread);
    Ok(handle)
}

/// Steps the driver until its last connection has ended, sleeping in between; then closes the
/// poller and queues the last `Close`.
fn run(mut poll: Poll, mut driver: super::driver::Driver, sink: &mut crate::queue::EventSink) {
    let mut events = Events::with_capacity(8);
    let mut fine_timer = FineTimer::new(FINE_TIMER);
    let ending = loop {
        match driver.step(poll.registry(), sink) {
            Step::Again => {}
            Step::Wait(deadline) => {
                let timeout = fine_timer.timeout(poll.registry(), deadline);
                match poll.poll(&mut events, timeout) {
                    Err(err) if err.kind() != io::ErrorKind::Interrupted => {
                        driver.interrupt(Error::Runtime(err));
                    }
                    _ => {}
                }
            }
            Step::Finished(ending) => break ending,
        }
    };
    // The socket is closed; close the poller (and the timer of short waits) too, so that
    // after the last Close event only the thread's exit is left.
    drop(driver);
    drop(fine_timer);
    drop(poll);
    sink.close(ending.error, ending.close);
}
