//! [`IoThreads`]: a few shared I/O threads for many connections.

use std::fmt;
use std::sync::Arc;

use crate::client::Client;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::io::Placement;
use crate::io::reactor::Pool;

/// A few shared I/O threads that serve many connections: each thread runs one poller for all
/// the connections it was given, so a connection costs a socket and a few KiB, not a thread,
/// a poller, a waker and a 32 KiB read buffer.
///
/// A [`Client`] opened here is the same as one from [`Client::connect`]: its own event queue,
/// `events()`, `try_recv()`, backpressure, reconnection, and exactly one `Close` per
/// connection. Only where its socket work runs differs:
///
/// - connections are spread over the threads, each to the one with the fewest;
/// - a step of one connection reads at most a budget of messages and writes at most its
///   `write_buffer_size`, then the others on its thread get their turn, so one connection's
///   flood does not starve its neighbours;
/// - a panic while serving one connection (say, in a certificate verifier you supplied with
///   [`ConfigBuilder::unversioned_rustls_config`](crate::ConfigBuilder::unversioned_rustls_config))
///   ends that connection with [`Error::Internal`] and `Close`; the thread and its other
///   connections go on;
/// - a quiet connection holds no read buffer, only the frames it has not finished;
/// - the timers of all connections on a thread (connect, close, keepalive, dead peer,
///   backoff) sit in one heap: idle connections cost no wake-ups at all.
///
/// When to use it: from a few hundred connections, or wherever a thread per connection is too
/// many. For one or a few connections [`Client::connect`] is as good or better: its thread
/// serves one socket only (see the README's Performance section for both, measured).
///
/// Clones share the same threads. **Dropping** the last clone stops nothing: each thread goes
/// on serving the clients it has until they have finished (closed, or dropped), then exits.
/// No connection is cut short by it, and no `Client` finds its I/O gone.
///
/// # Examples
///
/// ```no_run
/// use nwebsocket::{Event, IoThreads};
///
/// let io = IoThreads::new(2)?;
/// let clients = (0..1000)
///     .map(|_| io.connect("ws://127.0.0.1:9001/feed"))
///     .collect::<Result<Vec<_>, _>>()?;
/// for ws in &clients {
///     if let Some(Event::Message(msg)) = ws.events().next() {
///         println!("{msg:?}");
///     }
/// }
/// # Ok::<(), nwebsocket::Error>(())
/// ```
#[derive(Clone)]
pub struct IoThreads {
    pool: Arc<Pool>,
}

impl IoThreads {
    /// Starts `threads` shared I/O threads, named `nwebsocket-io-0`, `nwebsocket-io-1`, ...
    /// One or two are enough for thousands of connections; more only help when the messages
    /// keep more than one core busy.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for 0 threads; [`Error::Runtime`] if a thread, its poller or
    /// its waker cannot be created.
    pub fn new(threads: usize) -> Result<IoThreads> {
        if threads == 0 {
            return Err(Error::InvalidConfig(
                "IoThreads needs at least one thread".into(),
            ));
        }
        Ok(IoThreads {
            pool: Arc::new(Pool::new(threads)?),
        })
    }

    /// Opens a connection to `url` on these threads, with the default [`Config`]. As
    /// [`Client::connect`] in every other way.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect(&self, url: &str) -> Result<Client> {
        self.connect_with_config(url, Config::default())
    }

    /// Opens a connection to `url` with `config` on these threads. As
    /// [`Client::connect_with_config`] in every other way.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect_with_config(&self, url: &str, config: Config) -> Result<Client> {
        Client::start(url, config, Placement::Shared(&self.pool))
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// The connections on these threads that have not finished yet (their last `Close` is
    /// not queued).
    pub fn connections(&self) -> usize {
        self.pool.connections()
    }
}

impl fmt::Debug for IoThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoThreads")
            .field("threads", &self.threads())
            .field("connections", &self.connections())
            .finish()
    }
}
