//! [`Client`]: the handle to one connection, and its event iterators.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{RecvError, RecvTimeoutError, Result, TryRecvError};
use crate::event::{Event, ReadyState};
use crate::io::{self, Placement};
use crate::queue::{Inbox, NoEvent};
use crate::sender::SendHandle;
use crate::target::Target;

/// A WebSocket connection, like `new WebSocket(url)` in a browser.
///
/// [`connect`](Self::connect) returns at once; a background thread named `nwebsocket-io` does
/// the connecting and all socket work and queues [`Event`]s, which you take with
/// [`events`](Self::events), [`recv`](Self::recv), [`recv_timeout`](Self::recv_timeout) or,
/// without blocking, [`try_recv`](Self::try_recv) and [`try_events`](Self::try_events).
///
/// `Client` is `Send + Sync`: share it by reference, or hand [`sender`](Self::sender) handles to
/// other threads. Dropping it (and every [`SendHandle`]) closes the connection with code 1001
/// "going away" in the background; the drop itself never waits on the network.
///
/// # Examples
///
/// ```no_run
/// use nwebsocket::{Client, Event};
///
/// let ws = Client::connect("ws://127.0.0.1:9001/")?;
/// ws.send_text("hello")?; // queued until the handshake is done
/// for event in ws.events() {
///     match event {
///         Event::Open(_) => println!("open"),
///         Event::Message(msg) => {
///             println!("got {msg:?}");
///             ws.close()?;
///         }
///         Event::Error(err) => println!("error: {err}"),
///         Event::Close(close) => println!("closed with {}", close.code),
///         _ => {}
///     }
/// }
/// # Ok::<(), nwebsocket::Error>(())
/// ```
#[must_use = "dropping the Client closes the connection"]
pub struct Client {
    /// The send surface; `Client` derefs to it.
    sender: SendHandle,
    events: Inbox,
    /// The state that the events handed out so far imply (a `ReadyState` as `u8`).
    delivered: AtomicU8,
    /// The current connection's subprotocol, from its `Open` event.
    protocol: Mutex<String>,
    /// The current connection's extensions, from its `Open` event.
    extensions: Mutex<String>,
    url: String,
    /// The URL without user-info and query values, for `Debug`.
    redacted_url: String,
    /// Disconnects when the I/O thread has finished.
    finished: flume::Receiver<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Client {
    /// Opens a connection to `url` (`ws://` or `wss://`) with the default [`Config`].
    ///
    /// Returns at once in state [`ReadyState::Connecting`]; the outcome arrives as
    /// [`Event::Open`], or as [`Event::Error`] and [`Event::Close`].
    ///
    /// # Errors
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl) for a malformed URL, a scheme other
    /// than `ws`/`wss`, a missing host or a fragment, or a host name over 255 bytes to reach
    /// through a `socks5h://` proxy; [`Error::InvalidConfig`](crate::Error::InvalidConfig)
    /// when the environment names a proxy that does not parse (see
    /// [`ConfigBuilder::proxy_from_env`](crate::ConfigBuilder::proxy_from_env));
    /// [`Error::Runtime`](crate::Error::Runtime) if the I/O thread cannot be started. No
    /// thread is started then, and none of these is retried: they would fail every attempt.
    pub fn connect(url: &str) -> Result<Client> {
        Client::connect_with_config(url, Config::default())
    }

    /// Opens a connection to `url` with `config`.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use nwebsocket::{Client, Config};
    ///
    /// let config = Config::builder()
    ///     .protocol("chat")
    ///     .connect_timeout(Duration::from_secs(3))
    ///     .build()?;
    /// let ws = Client::connect_with_config("wss://127.0.0.1:9443/chat", config)?;
    /// ws.send_text("hi")?;
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn connect_with_config(url: &str, config: Config) -> Result<Client> {
        Client::start(url, config, Placement::OwnThread)
    }

    /// Opens a connection to `url` with `config`, its I/O where `placement` says.
    pub(crate) fn start(url: &str, config: Config, placement: Placement<'_>) -> Result<Client> {
        let target = Target::parse(url)?.routed(&config)?;
        let url = target.uri.to_string();
        let redacted_url = target.redacted();
        log::debug!("connecting to {redacted_url}");
        let io = io::spawn(target, config, placement)?;
        Ok(Client {
            sender: SendHandle::new(io.commands, io.shared),
            events: io.events,
            delivered: AtomicU8::new(ReadyState::Connecting as u8),
            protocol: Mutex::new(String::new()),
            extensions: Mutex::new(String::new()),
            url,
            redacted_url,
            finished: io.finished,
            thread: Mutex::new(io.thread),
        })
    }

    /// A cloneable handle to send on this connection from other threads. (The `Client` itself
    /// derefs to a [`SendHandle`]: `ws.send_text(..)` is the same call.)
    pub fn sender(&self) -> SendHandle {
        self.sender.clone()
    }

    /// Waits for the next event. `Err` once the stream has ended after [`Event::Close`].
    ///
    /// # Errors
    /// [`RecvError`] when the stream has ended.
    pub fn recv(&self) -> std::result::Result<Event, RecvError> {
        match self.events.recv_deadline(None) {
            Ok(event) => Ok(self.deliver(event)),
            Err(_) => Err(RecvError),
        }
    }

    /// Waits up to `timeout` for the next event.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if none came in time; [`RecvTimeoutError::Disconnected`]
    /// when the stream has ended.
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<Event, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_deadline(deadline),
            // A timeout too large to add is a wait without one.
            None => self.recv().map_err(|_| RecvTimeoutError::Disconnected),
        }
    }

    /// Waits until `deadline` for the next event: for a loop with a fixed period, whose
    /// deadline does not move with each event.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if none came in time; [`RecvTimeoutError::Disconnected`]
    /// when the stream has ended.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::{Duration, Instant};
    ///
    /// let ws = nwebsocket::Client::connect("ws://127.0.0.1:9001/")?;
    /// let tick = Instant::now() + Duration::from_millis(10);
    /// while let Ok(event) = ws.recv_deadline(tick) {
    ///     println!("{event:?}"); // everything that arrives before the tick
    /// }
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> std::result::Result<Event, RecvTimeoutError> {
        match self.events.recv_deadline(Some(deadline)) {
            Ok(event) => Ok(self.deliver(event)),
            Err(NoEvent::Ended) => Err(RecvTimeoutError::Disconnected),
            Err(NoEvent::Empty | NoEvent::Timeout) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Takes the next event if one is queued, without blocking. For a game or control loop.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if nothing is queued now; [`TryRecvError::Disconnected`] when
    /// the stream has ended.
    pub fn try_recv(&self) -> std::result::Result<Event, TryRecvError> {
        match self.events.try_recv() {
            Ok(event) => Ok(self.deliver(event)),
            Err(NoEvent::Ended) => Err(TryRecvError::Disconnected),
            Err(NoEvent::Empty | NoEvent::Timeout) => Err(TryRecvError::Empty),
        }
    }

    /// A blocking iterator over the events; it ends after [`Event::Close`]. Dropping it does
    /// not close the connection. `for event in &client` does the same.
    pub fn events(&self) -> Events<'_> {
        Events { client: self }
    }

    /// A non-blocking iterator over the events queued right now, for draining once per tick.
    pub fn try_events(&self) -> TryEvents<'_> {
        TryEvents { client: self }
    }

    /// The state as in JS `readyState`, consistent with the events you have received: `Open`
    /// from the moment you take [`Event::Open`], `Closing` once
    /// [`close`](SendHandle::close) was called or the connection started to end, `Closed`
    /// from the moment you take [`Event::Close`].
    pub fn ready_state(&self) -> ReadyState {
        let shared = self.sender.shared();
        match self.delivered.load(Ordering::Acquire) {
            3 => ReadyState::Closed,
            1 if shared.closing.load(Ordering::Relaxed) => ReadyState::Closing,
            _ if shared.close_requested.load(Ordering::Relaxed) => ReadyState::Closing,
            1 => ReadyState::Open,
            _ => ReadyState::Connecting,
        }
    }

    /// The URL you connected to, as the handshake uses it (normalised: lowercase scheme, `/`
    /// for an empty path), like JS `url`.
    ///
    /// It is your URL, so it keeps what you put in it: the user name and password before `@`
    /// and the query with its values (`?token=...`). Treat it as a secret if they are; this
    /// crate never prints it whole: `Client`'s `Debug`, its log lines and its error messages
    /// show `***` in their place.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The subprotocol the server chose, or `""` (as JS `protocol`); known once you have taken
    /// [`Event::Open`].
    pub fn protocol(&self) -> String {
        self.protocol
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The extensions the server agreed to, as it named them (e.g.
    /// `"permessage-deflate; server_max_window_bits=12"`), or `""` (as JS `extensions`); known
    /// once you have taken [`Event::Open`].
    pub fn extensions(&self) -> String {
        self.extensions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Blocks up to `timeout` until the I/O thread has finished: the socket is closed and the
    /// thread is gone. Returns whether it finished. Does not close the connection by itself;
    /// call [`close`](SendHandle::close) first for that. The events stay queued.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        if let Err(flume::RecvTimeoutError::Timeout) = self.finished.recv_timeout(timeout) {
            return false;
        }
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(thread) = thread {
            // The thread has dropped its last handle and returns right away.
            let _ = thread.join();
        }
        true
    }

    /// Updates what the handle knows from an event on its way to the caller.
    fn deliver(&self, event: Event) -> Event {
        match &event {
            Event::Open(open) => {
                *self.protocol.lock().unwrap_or_else(PoisonError::into_inner) =
                    open.protocol.clone().unwrap_or_default();
                *self
                    .extensions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = open.extensions().to_owned();
                self.delivered
                    .store(ReadyState::Open as u8, Ordering::Release);
            }
            Event::Close(close) => {
                // With another attempt to come, the handle is connecting again.
                let state = if close.is_final() {
                    ReadyState::Closed
                } else {
                    ReadyState::Connecting
                };
                self.delivered.store(state as u8, Ordering::Release);
            }
            Event::Message(_) | Event::Error(_) => {}
        }
        event
    }
}

/// Shows the URL without user-info and query values (see [`Client::url`]).
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.redacted_url)
            .field("ready_state", &self.ready_state())
            .field("protocol", &self.protocol())
            .field("extensions", &self.extensions())
            .finish_non_exhaustive()
    }
}

/// The send calls ([`send`](SendHandle::send), [`close`](SendHandle::close), ...) are those of
/// the connection's [`SendHandle`], written once for the client, its send handles and the
/// callbacks' context.
impl Deref for Client {
    type Target = SendHandle;

    fn deref(&self) -> &SendHandle {
        &self.sender
    }
}

impl<'a> IntoIterator for &'a Client {
    type Item = Event;
    type IntoIter = Events<'a>;

    fn into_iter(self) -> Events<'a> {
        self.events()
    }
}

/// The blocking iterator of [`Client::events`]: yields every event and ends after
/// [`Event::Close`].
#[derive(Debug)]
pub struct Events<'a> {
    client: &'a Client,
}

impl Iterator for Events<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.client.recv().ok()
    }
}

/// The non-blocking iterator of [`Client::try_events`]: yields the events queued right now.
#[derive(Debug)]
pub struct TryEvents<'a> {
    client: &'a Client,
}

impl Iterator for TryEvents<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.client.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn client_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Client>();
        assert_send_sync::<SendHandle>();
    }

    #[test]
    fn bad_urls_fail_before_any_thread() {
        for url in ["http://x/", "ws://", "nonsense"] {
            assert!(matches!(Client::connect(url), Err(Error::InvalidUrl(_))));
        }
    }
}
