//! The I/O thread's world. One thread per handle, named `nwebsocket-io`, owns the socket and
//! does everything on it: the connection attempt (`connect`: resolve, TCP, the tunnel through
//! a proxy (`proxy`), TLS, the HTTP upgrade, with `handshake` finding where the response head
//! ends), then the open connection
//! (`session`: reads and writes through `message`, our message layer, over `wire`; the
//! permessage-deflate codec is `crate::deflate`), all driven by `driver`, which sleeps on socket
//! readiness and a waker together.
//!
//! The handle side reaches it only through what [`spawn`] returns: the event queue's
//! [`Inbox`], the command channel, and the [`Shared`] flags and outgoing buffer.

mod connect;
mod dial;
mod driver;
mod handshake;
mod message;
mod prepare;
mod proxy;
mod redirect;
mod request;
mod resolver;
mod retry;
mod session;
mod socket_options;
mod stream;
mod wire;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use mio::{Poll, Token, Waker};
use tungstenite::protocol::CloseFrame;

use crate::config::Config;
use crate::error::{Error, Result, panic_message};
use crate::queue::{self, Inbox};
use crate::shared::Shared;
use crate::target::Target;
use driver::Driver;

/// The stack of the I/O thread: enough for TLS and the handshake, small for many connections.
const IO_THREAD_STACK: usize = 256 << 10;

/// The poll token of the connection's socket.
const SOCKET: Token = Token(0);
/// The poll token of the waker that handles (and the resolver) ring.
const WAKER: Token = Token(1);

/// A request from a handle to the I/O thread. (Data messages do not travel as commands:
/// senders encode them into the shared outgoing buffer themselves.)
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a ping.
    Ping(Bytes),
    /// Start the close handshake with this frame (or abort a connection attempt).
    Close(CloseFrame),
    /// The last handle is gone: close with 1001 "going away" and exit.
    Shutdown,
}

/// A running I/O thread, as the handle side sees it.
#[derive(Debug)]
pub(crate) struct IoThread {
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: flume::Sender<Command>,
    pub(crate) events: Inbox,
    /// Disconnects when the thread has finished: its socket is closed.
    pub(crate) finished: flume::Receiver<()>,
    pub(crate) thread: JoinHandle<()>,
}

/// Starts the I/O thread for `target`.
///
/// # Errors
/// [`Error::Runtime`] if the poller, its waker or the thread cannot be created.
pub(crate) fn spawn(target: Target, config: Config) -> Result<IoThread> {
    let poll = Poll::new().map_err(Error::Runtime)?;
    let waker = Waker::new(poll.registry(), WAKER).map_err(Error::Runtime)?;
    let shared = Arc::new(Shared::new(
        waker,
        config.offline_sends(),
        config.max_buffered_amount(),
    ));
    let (sink, events) = queue::channel(
        config.event_queue_capacity(),
        config.event_queue_bytes(),
        shared.clone(),
    );
    let (command_tx, command_rx) = flume::unbounded();
    let (finished_tx, finished_rx) = flume::bounded::<()>(0);
    let driver = Driver::new(poll, shared.clone(), command_rx, config, target);
    let thread = std::thread::Builder::new()
        .name("nwebsocket-io".into())
        .stack_size(IO_THREAD_STACK)
        .spawn(move || {
            let _finished = finished_tx;
            // Declared after `_finished`, so dropped before it: the stream has ended by the
            // time `wait_closed` returns.
            let mut sink = sink;
            // Unwinding drops (and so closes) the socket; the stream still ends by the
            // contract, with one Close.
            let run = std::panic::catch_unwind(AssertUnwindSafe(|| driver.run(&mut sink)));
            if let Err(panic) = run {
                let why = panic_message(&*panic).to_owned();
                log::error!("the I/O thread panicked: {why}");
                sink.close_after_panic(Error::Internal(why));
            }
        })
        .map_err(Error::Runtime)?;
    Ok(IoThread {
        shared,
        commands: command_tx,
        events,
        finished: finished_rx,
        thread,
    })
}
