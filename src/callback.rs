//! JS-style callbacks over the event queue: `on_open`, `on_message`, `on_error`, `on_close`.
//!
//! A [`WebSocket`] owns a [`Client`] and something that handles its events: either closures
//! set in the JavaScript way ([`WebSocket::on_message`] and friends), or your own type that
//! implements [`Handler`] (the "class protocol" style, where you would subclass `WebSocket` in
//! Python or JS). It is a thin layer: it takes events from the queue with the client's public
//! API and calls the matching callback, in the order of the [event contract](crate#event-model):
//!
//! ```text
//! on_open?  on_message*  on_error?  on_close
//! ```
//!
//! `on_close` runs exactly once per connection, unless you drop the `WebSocket` before the
//! close arrives. With reconnection on (see [`ConfigBuilder`](crate::ConfigBuilder)), every
//! connection runs this sequence in turn: the [`CloseEvent`]'s `reconnect` field tells
//! `on_close` whether (and when) another attempt follows, and calling
//! [`close`](SendHandle::close) on the [`Context`] then stops the reconnecting. Nothing runs
//! after the last `on_close`.
//!
//! # Where callbacks run
//!
//! Never on the I/O thread: a slow callback delays the callbacks after it, not your sends or
//! the close handshake. Events wait in the queue meanwhile; if it fills up, the I/O thread
//! stops reading the socket (see [backpressure](crate#threads-and-shutdown)), and then a
//! server's ping waits there too: its pong goes out once the queue has room again. You
//! choose the thread:
//!
//! | call | callbacks run | returns |
//! |---|---|---|
//! | [`dispatch`](WebSocket::dispatch) | on your thread, for the events queued now | at once, never blocks |
//! | [`run`](WebSocket::run) | on your thread | after `on_close` |
//! | [`spawn`](WebSocket::spawn) | on a new thread named `nwebsocket-callbacks` | at once, with a [`Spawned`] handle |
//!
//! Only `spawn` needs the callbacks to be `Send`. Closures set with the `on_*` methods always
//! are, so that one set works in every mode; for state that is not `Send` (an `Rc`), implement
//! [`Handler`] and use `dispatch` or `run`.
//!
//! # Sending from a callback
//!
//! Every callback gets a [`Context`] with the connection's send and close calls. They push
//! onto the I/O thread's queue and return, so sending from a callback never blocks and never
//! deadlocks. The `WebSocket` and the [`Spawned`] handle dereference to the same [`Context`],
//! so the rest of your program sends the same way.
//!
//! # Panics in callbacks
//!
//! A panic in a callback is caught at the callback and does not reach the I/O thread. The
//! adapter then:
//!
//! 1. logs it with `log::error!` (the panic hook has printed it already, as for any panic);
//! 2. closes the connection with code 1000 and reason `"internal error"`, because the handler
//!    may be left half-updated;
//! 3. goes on dispatching the events that remain, so `on_close` still runs exactly once (a
//!    callback that panics again is logged, and that panic is dropped);
//! 4. once `on_close` has run, resumes the first panic on the thread that dispatched it:
//!    [`dispatch`](WebSocket::dispatch) or [`run`](WebSocket::run) panic with it, and on a
//!    spawned dispatcher [`Spawned::join`] does.
//!
//! This is what [`std::thread::scope`] does with a panicking thread: finish in order, then
//! panic. If you drop the `WebSocket` before `on_close`, the panic goes no further than the
//! log.
//!
//! # Examples
//!
//! JS-style closures, run on a thread of their own:
//!
//! ```no_run
//! use std::time::Duration;
//! use nwebsocket::callback::WebSocket;
//!
//! let mut ws = WebSocket::connect("ws://127.0.0.1:9001/echo")?;
//! ws.on_open(|_, _| println!("open"))
//!     .on_message(|ctx, message| {
//!         println!("received {message:?}");
//!         let _ = ctx.close(); // fails only once the connection is closing anyway
//!     })
//!     .on_close(|_, close| println!("closed: {} {:?} {}", close.code, close.reason, close.was_clean));
//! let ws = ws.spawn()?;
//! ws.send_text("hello")?;
//! ws.join(Duration::from_secs(10));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A handler type, dispatched once per tick of your own loop:
//!
//! ```no_run
//! use nwebsocket::callback::{Context, Handler, WebSocket};
//! use nwebsocket::{Client, Message, ReadyState};
//!
//! #[derive(Default)]
//! struct Echo {
//!     replies: usize,
//! }
//!
//! impl Handler for Echo {
//!     fn on_message(&mut self, ctx: &Context, message: Message) {
//!         if ctx.send(message).is_ok() {
//!             self.replies += 1;
//!         }
//!     }
//! }
//!
//! let mut ws = WebSocket::with_handler(Client::connect("ws://127.0.0.1:9001/")?, Echo::default());
//! while ws.ready_state() != ReadyState::Closed {
//!     ws.dispatch();
//!     // ... the rest of the frame ...
//! }
//! println!("{} replies", ws.handler().replies);
//! # Ok::<(), nwebsocket::Error>(())
//! ```

use std::any::Any;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Client, CloseEvent, Error, Event, Message, OpenEvent, ReadyState, Result, SendHandle};

/// The close code and reason the adapter sends after a callback panicked.
///
/// 1011 "internal error" would say it better, but `SendHandle::close_with` accepts only what
/// the JS API allows (1000 and 3000–4999), and a private-use code would mean something else to
/// some application.
const PANIC_CLOSE: (u16, &str) = (1000, "internal error");

/// What a connection's events do: the "class protocol" style of the JS and Python APIs.
///
/// Every method has an empty default, so implement only the events you care about. Each gets a
/// [`Context`] to send or close from inside the callback, and its event's payload by value.
/// The calls follow the event contract: `on_open` at most once, then `on_message` for each
/// message in order, then `on_error` only when the connection failed, then `on_close` exactly
/// once. Where they run, and what a panic in them does, is in the [module docs](self).
///
/// # Examples
///
/// ```no_run
/// use nwebsocket::callback::{Context, Handler, WebSocket};
/// use nwebsocket::{Client, CloseEvent, Message};
///
/// #[derive(Default)]
/// struct Recorder {
///     messages: Vec<Message>,
/// }
///
/// impl Handler for Recorder {
///     fn on_message(&mut self, _ctx: &Context, message: Message) {
///         self.messages.push(message);
///     }
///
///     fn on_close(&mut self, _ctx: &Context, close: CloseEvent) {
///         println!("closed with {} after {} messages", close.code, self.messages.len());
///     }
/// }
///
/// let client = Client::connect("ws://127.0.0.1:9001/")?;
/// let mut ws = WebSocket::with_handler(client, Recorder::default());
/// ws.run();
/// println!("{:?}", ws.handler().messages);
/// # Ok::<(), nwebsocket::Error>(())
/// ```
pub trait Handler {
    /// The connection is open: the handshake succeeded.
    fn on_open(&mut self, ctx: &Context, open: OpenEvent) {
        let _ = (ctx, open);
    }

    /// A message arrived.
    fn on_message(&mut self, ctx: &Context, message: Message) {
        let _ = (ctx, message);
    }

    /// The connection failed; `on_close` follows.
    fn on_error(&mut self, ctx: &Context, error: Error) {
        let _ = (ctx, error);
    }

    /// The connection is over, with its code, reason and `was_clean`. The last call.
    fn on_close(&mut self, ctx: &Context, close: CloseEvent) {
        let _ = (ctx, close);
    }
}

/// What a callback can do with its connection: send, close, and look at its state.
///
/// Every call returns at once: sends are queued for the I/O thread, so calling them from a
/// callback cannot deadlock. There is deliberately no way to take events here: they belong to
/// the dispatcher.
#[derive(Debug)]
pub struct Context {
    client: Arc<Client>,
}

impl Context {
    /// The state, as [`Client::ready_state`]: `Open` from `on_open` on, `Closed` in `on_close`.
    pub fn ready_state(&self) -> ReadyState {
        self.client.ready_state()
    }

    /// The URL. Same as [`Client::url`].
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// The subprotocol the server chose, or `""`. Same as [`Client::protocol`].
    pub fn protocol(&self) -> String {
        self.client.protocol()
    }

    /// A cloneable handle to send from other threads. Same as [`Client::sender`].
    pub fn sender(&self) -> SendHandle {
        self.client.sender()
    }
}

/// The send calls ([`send`](SendHandle::send), [`close`](SendHandle::close), ...) are the
/// connection's own, as on the [`Client`].
impl Deref for Context {
    type Target = SendHandle;

    fn deref(&self) -> &SendHandle {
        &self.client
    }
}

type Callback<T> = Box<dyn FnMut(&Context, T) + Send>;

/// The [`Handler`] made of the closures set with [`WebSocket::on_open`],
/// [`on_message`](WebSocket::on_message), [`on_error`](WebSocket::on_error) and
/// [`on_close`](WebSocket::on_close). An unset one skips its event.
#[derive(Default)]
pub struct Callbacks {
    open: Option<Callback<OpenEvent>>,
    message: Option<Callback<Message>>,
    error: Option<Callback<Error>>,
    close: Option<Callback<CloseEvent>>,
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_open", &self.open.is_some())
            .field("on_message", &self.message.is_some())
            .field("on_error", &self.error.is_some())
            .field("on_close", &self.close.is_some())
            .finish()
    }
}

impl Handler for Callbacks {
    fn on_open(&mut self, ctx: &Context, open: OpenEvent) {
        if let Some(callback) = &mut self.open {
            callback(ctx, open);
        }
    }

    fn on_message(&mut self, ctx: &Context, message: Message) {
        if let Some(callback) = &mut self.message {
            callback(ctx, message);
        }
    }

    fn on_error(&mut self, ctx: &Context, error: Error) {
        if let Some(callback) = &mut self.error {
            callback(ctx, error);
        }
    }

    fn on_close(&mut self, ctx: &Context, close: CloseEvent) {
        if let Some(callback) = &mut self.close {
            callback(ctx, close);
        }
    }
}

/// A connection whose events run callbacks: `new WebSocket(url)` with `onmessage` and friends.
///
/// `H` is what handles the events: [`Callbacks`] (closures, the default) or your own
/// [`Handler`]. Nothing runs until you call [`dispatch`](Self::dispatch), [`run`](Self::run) or
/// [`spawn`](Self::spawn); events wait in the queue until then. It dereferences to its
/// [`Context`], so `ws.send_text(..)` and `ws.ready_state()` work as inside a callback.
///
/// Dropping it drops the [`Client`], which closes the connection with 1001 "going away"; no
/// callback runs after that.
#[must_use = "dropping the WebSocket closes the connection"]
#[derive(Debug)]
pub struct WebSocket<H = Callbacks> {
    ctx: Context,
    handler: H,
    closed: bool,
    /// The first panic caught in a callback, resumed once `on_close` has run.
    panic: Option<Box<dyn Any + Send>>,
}

impl WebSocket<Callbacks> {
    /// Opens a connection to `url` with the default config and no callbacks set yet. Like
    /// [`Client::connect`], it returns at once; set the callbacks, then run them.
    ///
    /// # Errors
    /// As [`Client::connect`]: [`Error::InvalidUrl`], or [`Error::Io`] if the I/O thread
    /// cannot be started.
    pub fn connect(url: &str) -> Result<Self> {
        Ok(WebSocket::new(Client::connect(url)?))
    }

    /// Takes over `client` (say, from [`Client::connect_with_config`]), with no callbacks set
    /// yet. Events it has queued so far go to the callbacks too.
    pub fn new(client: Client) -> Self {
        WebSocket::with_handler(client, Callbacks::default())
    }

    /// Sets the callback for [`Event::Open`], replacing any earlier one, as `ws.onopen = f`.
    pub fn on_open(&mut self, f: impl FnMut(&Context, OpenEvent) + Send + 'static) -> &mut Self {
        self.handler.open = Some(Box::new(f));
        self
    }

    /// Sets the callback for each [`Event::Message`], as `ws.onmessage = f`.
    pub fn on_message(&mut self, f: impl FnMut(&Context, Message) + Send + 'static) -> &mut Self {
        self.handler.message = Some(Box::new(f));
        self
    }

    /// Sets the callback for [`Event::Error`], as `ws.onerror = f`. It gets the cause.
    pub fn on_error(&mut self, f: impl FnMut(&Context, Error) + Send + 'static) -> &mut Self {
        self.handler.error = Some(Box::new(f));
        self
    }

    /// Sets the callback for [`Event::Close`], as `ws.onclose = f`. It gets the code, reason
    /// and `was_clean`.
    pub fn on_close(&mut self, f: impl FnMut(&Context, CloseEvent) + Send + 'static) -> &mut Self {
        self.handler.close = Some(Box::new(f));
        self
    }
}

impl<H: Handler> WebSocket<H> {
    /// Takes over `client`, with `handler` for its events. Events it has queued so far go to the
    /// handler too.
    pub fn with_handler(client: Client, handler: H) -> Self {
        WebSocket {
            ctx: Context {
                client: Arc::new(client),
            },
            handler,
            closed: false,
            panic: None,
        }
    }

    /// Runs the callbacks for the events queued now, on the calling thread, and returns the
    /// number handled. Never blocks: with nothing queued it returns 0 at once. Call it once per
    /// tick of a game or control loop. After `on_close` it does nothing.
    ///
    /// Events that arrive while it runs are handled too, so under a flood faster than your
    /// callbacks it keeps going; [`dispatch_max`](Self::dispatch_max) bounds a frame.
    ///
    /// # Panics
    /// With a callback's panic, in the call that ran `on_close`; see
    /// [Panics in callbacks](self#panics-in-callbacks).
    pub fn dispatch(&mut self) -> usize {
        self.dispatch_max(usize::MAX)
    }

    /// As [`dispatch`](Self::dispatch), but handles at most `max` events; the rest wait for the
    /// next call.
    ///
    /// # Panics
    /// As [`dispatch`](Self::dispatch).
    pub fn dispatch_max(&mut self, max: usize) -> usize {
        let mut handled = 0;
        while handled < max && !self.closed {
            let Ok(event) = self.ctx.client.try_recv() else {
                break;
            };
            self.handle(event);
            handled += 1;
        }
        self.resume_panic();
        handled
    }

    /// Runs the callbacks on the calling thread until the last `on_close` has run (with
    /// reconnection on, the one that no attempt follows), blocking in between.
    /// Returns at once if it already has. To stop early, close the connection (from a callback
    /// or through a [`SendHandle`] from another thread).
    ///
    /// # Panics
    /// With a callback's panic, after `on_close`; see
    /// [Panics in callbacks](self#panics-in-callbacks).
    pub fn run(&mut self) {
        while !self.closed {
            // The stream ends only after Close, which sets `closed`.
            let Ok(event) = self.ctx.client.recv() else {
                break;
            };
            self.handle(event);
        }
        self.resume_panic();
    }

    /// Moves the connection and its handler to a new thread, named `nwebsocket-callbacks`,
    /// that runs the callbacks until `on_close` (as [`run`](Self::run)), for fire-and-forget
    /// code as in JS. The returned handle sends and closes; dropping it detaches the thread,
    /// which then runs until the connection closes (from a callback, or by the server).
    ///
    /// # Errors
    /// The I/O error if the thread cannot be started; the `WebSocket` is dropped then, which
    /// closes the connection.
    pub fn spawn(mut self) -> io::Result<Spawned<H>>
    where
        H: Send + 'static,
    {
        let ctx = Context {
            client: self.ctx.client.clone(),
        };
        let (finished_tx, finished) = flume::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("nwebsocket-callbacks".into())
            .spawn(move || {
                let _finished = finished_tx;
                self.run();
                self.handler
            })?;
        Ok(Spawned {
            ctx,
            thread,
            finished,
        })
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, to change its state between dispatches.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The handler, dropping the connection (which closes it if still open).
    pub fn into_handler(self) -> H {
        self.handler
    }

    fn handle(&mut self, event: Event) {
        let WebSocket { ctx, handler, .. } = self;
        let (callback, outcome) = match event {
            Event::Open(open) => ("on_open", catch(|| handler.on_open(ctx, open))),
            Event::Message(message) => ("on_message", catch(|| handler.on_message(ctx, message))),
            Event::Error(error) => ("on_error", catch(|| handler.on_error(ctx, error))),
            Event::Close(close) => {
                // With reconnection on, a Close that another attempt follows is not the end.
                self.closed = close.is_final();
                ("on_close", catch(|| handler.on_close(ctx, close)))
            }
        };
        if let Err(payload) = outcome {
            log::error!(
                "{callback} panicked: {}; closing the connection",
                panic_message(&*payload)
            );
            let (code, reason) = PANIC_CLOSE;
            let _ = self.ctx.client.close_with(code, reason);
            self.panic.get_or_insert(payload);
        }
    }

    fn resume_panic(&mut self) {
        if self.closed {
            if let Some(payload) = self.panic.take() {
                panic::resume_unwind(payload);
            }
        }
    }
}

impl<H> Deref for WebSocket<H> {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

/// A [`WebSocket`] whose callbacks run on a thread of their own; from
/// [`WebSocket::spawn`].
///
/// It dereferences to the connection's [`Context`]: send, close and read the state from here.
/// Dropping it detaches the thread, like a [`JoinHandle`]: the connection stays up until it
/// closes.
pub struct Spawned<H> {
    ctx: Context,
    thread: JoinHandle<H>,
    /// Disconnects when the dispatcher thread has finished.
    finished: flume::Receiver<()>,
}

impl<H> Spawned<H> {
    /// Whether the dispatcher thread has finished: `on_close` has run.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Blocks up to `timeout` until `on_close` has run and the dispatcher thread has finished.
    /// Returns whether it has. Does not close the connection; call
    /// [`close`](SendHandle::close) first for that.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        !matches!(
            self.finished.recv_timeout(timeout),
            Err(flume::RecvTimeoutError::Timeout)
        )
    }

    /// Waits up to `timeout` for the dispatcher thread to finish, as
    /// [`wait_closed`](Self::wait_closed), and returns the handler. `None` if it has not
    /// finished in time; it then runs on, detached.
    ///
    /// # Panics
    /// With a callback's panic, resumed here after `on_close` has run; see
    /// [Panics in callbacks](self#panics-in-callbacks).
    pub fn join(self, timeout: Duration) -> Option<H> {
        if !self.wait_closed(timeout) {
            return None;
        }
        // The thread has dropped `_finished` and only returns now.
        match self.thread.join() {
            Ok(handler) => Some(handler),
            Err(payload) => panic::resume_unwind(payload),
        }
    }
}

impl<H> Deref for Spawned<H> {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl<H> fmt::Debug for Spawned<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned")
            .field("client", &self.ctx.client)
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

fn catch(callback: impl FnOnce()) -> std::thread::Result<()> {
    // Unwind safety: after a panic the handler is only used to dispatch the remaining events
    // and is then handed back with the panic; the docs warn that it may be half-updated.
    panic::catch_unwind(AssertUnwindSafe(callback))
}

/// The message of a caught panic, for the log. (The I/O thread has its own: this adapter uses
/// only the crate's public API.)
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "a non-string payload"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawnable_types_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<WebSocket<Callbacks>>();
        assert_send::<Spawned<Callbacks>>();
        assert_send::<Context>();
    }
}
