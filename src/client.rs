//! [`Client`]: the handle to one connection.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Config;
use crate::driver::Driver;
use crate::error::{Error, RecvError, RecvTimeoutError, Result, TryRecvError, panic_message};
use crate::event::{CloseEvent, Event, Events, Message, ReadyState, TryEvents};
use crate::inbox::{Batch, Inbox, Item, NoEvent};
use crate::sender::{Outbox, SendHandle};
use crate::shared::Shared;
use crate::sink::{self, EventSink};
use crate::target::Target;

/// The stack of the I/O thread: enough for TLS and the handshake, small for many connections.
const IO_THREAD_STACK: usize = 256 << 10;

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
#[derive(Debug)]
pub struct Client {
    outbox: Arc<Outbox>,
    events: Inbox,
    /// The state that the events handed out so far imply (a `ReadyState` as `u8`).
    delivered: AtomicU8,
    protocol: OnceLock<String>,
    url: String,
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
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl) for a malformed URL, a scheme other than `ws`/`wss`, a missing host
    /// or a fragment; [`Error::Io`](crate::Error::Io) if the I/O thread cannot be started. No thread is started
    /// then.
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
        let target = Target::parse(url)?;
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), crate::connect::WAKER)?;
        let shared = Arc::new(Shared::new(waker));
        let capacity = config.event_queue_capacity();
        // Unbounded as a channel; bounded by the I/O thread, which stops reading at `capacity`
        // queued messages and so never blocks on the queue.
        let (event_tx, event_rx) = flume::unbounded();
        let (command_tx, command_rx) = flume::unbounded();
        let (finished_tx, finished_rx) = flume::bounded::<()>(0);
        let sink = EventSink::new(event_tx.clone(), capacity, shared.clone());
        let driver = Driver::new(
            poll,
            shared.clone(),
            command_rx,
            sink,
            config,
            target.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("nwebsocket-io".into())
            .stack_size(IO_THREAD_STACK)
            .spawn(move || {
                let _finished = finished_tx;
                // Unwinding drops (and so closes) the socket; the contract still ends with
                // one Close.
                if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| driver.run())) {
                    let why = panic_message(&*panic).to_owned();
                    log::error!("the I/O thread panicked: {why}");
                    let events = vec![
                        Event::Error(Error::Internal(why)),
                        Event::Close(CloseEvent::abnormal()),
                    ];
                    let _ = event_tx.send(Item {
                        seq: u64::MAX,
                        messages: 0,
                        events: Batch::Many(events),
                    });
                }
            })?;
        log::debug!("connecting to {}", target.uri);
        Ok(Client {
            events: Inbox::new(event_rx, shared.clone(), sink::low_water(capacity)),
            outbox: Arc::new(Outbox::new(command_tx, shared)),
            delivered: AtomicU8::new(ReadyState::Connecting as u8),
            protocol: OnceLock::new(),
            url: target.uri.to_string(),
            finished: finished_rx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Sends a text or binary message.
    ///
    /// The message is queued for the I/O thread, which writes it at once. Sends made while
    /// still connecting are written, in order, right after the handshake (the JS API throws
    /// instead). `Ok` means accepted, not delivered: if the connection fails first, the
    /// [`Event::Error`] says so, and [`buffered_amount`](Self::buffered_amount) still counts it.
    ///
    /// # Errors
    /// [`Error::Closed`](crate::Error::Closed) after [`close`](Self::close), or once the connection is closing or
    /// over. Nothing is queued then.
    pub fn send(&self, message: impl Into<Message>) -> Result<()> {
        self.outbox.send(message.into())
    }

    /// Sends a text message. See [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_text(&self, text: impl Into<String>) -> Result<()> {
        self.outbox.send(Message::from(text.into()))
    }

    /// Sends a binary message. See [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_binary(&self, bytes: impl Into<Bytes>) -> Result<()> {
        self.outbox.send(Message::Binary(bytes.into()))
    }

    /// Sends a ping with `payload`. The server's pong is consumed by the I/O thread. (Pings
    /// from the server are answered automatically, with the same payload.)
    ///
    /// # Errors
    /// [`Error::PingTooLong`](crate::Error::PingTooLong) over 125 bytes; [`Error::Closed`](crate::Error::Closed) as for [`send`](Self::send).
    pub fn ping(&self, payload: impl Into<Bytes>) -> Result<()> {
        self.outbox.ping(payload.into())
    }

    /// Starts a clean close with code 1000 (normal closure). Same as
    /// `close_with(1000, "")`.
    ///
    /// # Errors
    /// None in practice; see [`close_with`](Self::close_with).
    pub fn close(&self) -> Result<()> {
        self.outbox.close(1000, "")
    }

    /// Starts the close handshake with `code` and `reason`, as `WebSocket.close(code, reason)`.
    ///
    /// Sends queued before are written before the close frame. The I/O thread then waits up to
    /// the close timeout for the server's reply, and [`Event::Close`] reports the outcome.
    /// While still connecting, this aborts the attempt: [`Event::Error`] with
    /// [`Error::Aborted`](crate::Error::Aborted), then [`Event::Close`] with code 1006. Calling it again, or after the
    /// connection ended, does nothing.
    ///
    /// # Errors
    /// [`Error::InvalidCloseCode`](crate::Error::InvalidCloseCode) unless `code` is 1000 or in 3000–4999;
    /// [`Error::CloseReasonTooLong`](crate::Error::CloseReasonTooLong) if `reason` exceeds 123 bytes. Nothing is sent then.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<()> {
        self.outbox.close(code, reason)
    }

    /// A cloneable handle to send on this connection from other threads.
    pub fn sender(&self) -> SendHandle {
        SendHandle {
            outbox: self.outbox.clone(),
        }
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
        // A timeout too large to add is a wait without one.
        let deadline = Instant::now().checked_add(timeout);
        match self.events.recv_deadline(deadline) {
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
    /// from the moment you take [`Event::Open`], `Closing` once [`close`](Self::close) was
    /// called or the connection started to end, `Closed` from the moment you take
    /// [`Event::Close`].
    pub fn ready_state(&self) -> ReadyState {
        let shared = &self.outbox.shared;
        match self.delivered.load(Ordering::Acquire) {
            3 => ReadyState::Closed,
            1 if shared.closing.load(Ordering::Relaxed) => ReadyState::Closing,
            _ if shared.close_requested.load(Ordering::Relaxed) => ReadyState::Closing,
            1 => ReadyState::Open,
            _ => ReadyState::Connecting,
        }
    }

    /// Bytes accepted by the send calls and not yet written to the socket, as JS
    /// `bufferedAmount`.
    pub fn buffered_amount(&self) -> usize {
        self.outbox.shared.buffered_amount.load(Ordering::Relaxed)
    }

    /// The URL as used for the handshake (normalised: lowercase scheme, `/` for an empty path).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The subprotocol the server chose, or `""` (as JS `protocol`); known once you have taken
    /// [`Event::Open`].
    pub fn protocol(&self) -> &str {
        self.protocol.get().map_or("", String::as_str)
    }

    /// Blocks up to `timeout` until the I/O thread has finished: the socket is closed and the
    /// thread is gone. Returns whether it finished. Does not close the connection by itself;
    /// call [`close`](Self::close) first for that. The events stay queued.
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
                if let Some(protocol) = &open.protocol {
                    let _ = self.protocol.set(protocol.clone());
                }
                self.delivered
                    .fetch_max(ReadyState::Open as u8, Ordering::AcqRel);
            }
            Event::Close(_) => {
                self.delivered
                    .fetch_max(ReadyState::Closed as u8, Ordering::AcqRel);
            }
            Event::Message(_) | Event::Error(_) => {}
        }
        event
    }
}

impl<'a> IntoIterator for &'a Client {
    type Item = Event;
    type IntoIter = Events<'a>;

    fn into_iter(self) -> Events<'a> {
        self.events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
