//! The I/O side's world. A handle's I/O runs on a thread of its own, named `nwebsocket-io`
//! (`own_thread`), or on one of the shared threads of an [`IoThreads`](crate::IoThreads)
//! (`reactor`, each named `nwebsocket-io-N`, stepping many handles' drivers). That thread
//! owns the socket and does everything on it: the connection attempt (`connect`: resolve, TCP, the tunnel through
//! a proxy (`proxy`), TLS, the HTTP upgrade, with `handshake` finding where the response head
//! ends), then the open connection
//! (`session`: reads and writes through `message`, our message layer, over `wire`; the
//! permessage-deflate codec is `crate::deflate`), all in `driver`, a state machine that the
//! thread steps on socket readiness, its doorbell and its timer.
//!
//! The handle side reaches it only through what [`spawn`] returns: the event queue's
//! [`Inbox`], the command channel, and the [`Shared`] flags and outgoing buffer.

mod connect;
mod dial;
mod driver;
mod fine_timer;
mod handshake;
mod message;
mod own_thread;
mod prepare;
mod proxy;
pub(crate) mod reactor;
mod redirect;
mod request;
mod resolver;
mod retry;
mod session;
mod socket_options;
mod stream;
mod wire;

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use tungstenite::protocol::CloseFrame;

use crate::config::Config;
use crate::doorbell::Doorbell;
use crate::error::Result;
use crate::queue::{self, EventSink, Inbox};
use crate::shared::Shared;
use crate::target::Target;
use driver::Driver;
use reactor::Pool;
use session::ReadBudget;

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

/// A running handle's I/O, as the handle side sees it.
#[derive(Debug)]
pub(crate) struct IoThread {
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: flume::Sender<Command>,
    pub(crate) events: Inbox,
    /// Disconnects when the handle's I/O has finished: its socket is closed.
    pub(crate) finished: flume::Receiver<()>,
    /// The handle's own thread; `None` on shared I/O threads.
    pub(crate) thread: Option<JoinHandle<()>>,
}

/// Where a handle's I/O runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement<'a> {
    /// On a thread of its own.
    OwnThread,
    /// On one of these shared threads.
    Shared(&'a Pool),
}

/// Starts the I/O for `target`, where `placement` says.
///
/// # Errors
/// [`Error::Runtime`](crate::Error::Runtime) if the poller, its waker or the thread cannot
/// be created.
pub(crate) fn spawn(target: Target, config: Config, placement: Placement<'_>) -> Result<IoThread> {
    match placement {
        Placement::OwnThread => own_thread::spawn(target, config),
        Placement::Shared(pool) => pool.add(target, config),
    }
}

/// What one handle's I/O is made of, on whatever thread it runs.
struct Parts {
    driver: Driver,
    sink: EventSink,
    /// Dropped when the I/O has finished, after the last event.
    finished: flume::Sender<()>,
    handle: IoThread,
}

impl Parts {
    /// The driver, the queues and the shared state of a new handle whose sockets register
    /// with `token` and whose doorbell is `doorbell`. `lean`: run on a shared thread (a read
    /// budget per step, and no read buffer held by a quiet connection).
    fn new(
        target: Target,
        config: Config,
        token: mio::Token,
        doorbell: Doorbell,
        lean: bool,
    ) -> Self {
        let shared = Arc::new(Shared::new(
            doorbell,
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
        let read_budget = if lean {
            SHARED_READ_BUDGET
        } else {
            ReadBudget::UNLIMITED
        };
        let driver = Driver::new(
            token,
            shared.clone(),
            command_rx,
            config,
            target,
            read_budget,
            lean,
        );
        Parts {
            driver,
            sink,
            finished: finished_tx,
            handle: IoThread {
                shared,
                commands: command_tx,
                events,
                finished: finished_rx,
                thread: None,
            },
        }
    }
}

/// What a connection on a shared thread reads per step before the others on that thread get
/// their turn: one connection's flood delays a quiet neighbour by at most this much work
/// (about 100 µs of small messages, or 256 KiB), and its consumer still gets whole batches
/// (the event queue's batches end at the same counts).
const SHARED_READ_BUDGET: ReadBudget = ReadBudget {
    messages: 1024,
    bytes: 256 << 10,
};
