//! `Connection`: one core [`Client`] as Python sees it. The `WebSocket` class of
//! `nwebsocket/websocket.py` wraps one; every blocking call here releases the GIL.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nwebsocket::{
    Client, Error as CoreError, Event, OfflineSends, ReadyState, RecvTimeoutError, TryRecvError,
};
use pyo3::prelude::*;
use pyo3::types::PyInt;

use crate::dispatch::Dispatcher;
use crate::errors::{describe, new_error, to_pyerr};
use crate::payload::to_message;
use crate::{events, options, wait};

/// `readyState` values, as in JS.
pub(crate) const CONNECTING: u8 = 0;
/// The handshake succeeded.
pub(crate) const OPEN: u8 = 1;
/// The close handshake has started.
pub(crate) const CLOSING: u8 = 2;
/// The connection is over.
pub(crate) const CLOSED: u8 = 3;

/// The longest close reason JS allows, in UTF-8 bytes.
const MAX_REASON_BYTES: usize = 123;

/// One WebSocket connection: the core client, plus what the Python API needs on top.
#[pyclass(frozen, module = "nwebsocket._nwebsocket", name = "Connection")]
#[derive(Debug)]
pub(crate) struct Connection {
    client: Client,
    /// The lock every taker of events holds while it takes one (so that events leave in
    /// order), and an event that `readyState` took from the queue early, to learn that the
    /// connection is open, and that the next taker gets first.
    slot: Mutex<Option<Event>>,
    /// The state implied by the events handed to Python so far (as return values, or to the
    /// callbacks), or seen early in `slot`.
    observed: AtomicU8,
    /// Whether Python has seen an `Open`: a connection that never opened is not "closing".
    ever_opened: AtomicBool,
    /// How the connection that never opened failed (its `Error` event, described), once Python
    /// has seen that event; for the message of a `send()` that comes too late.
    failure: Mutex<Option<String>>,
    /// The callback dispatcher, if the `WebSocket` has callbacks.
    pub(crate) dispatcher: Dispatcher,
    /// Whether `send()` while no connection is open is left to the core's offline policy
    /// (with `reconnect` or `offline_sends`), rather than raising before the first `Open`.
    sends_follow_offline_policy: bool,
    /// The most bytes that may wait to be written while a connection is open.
    max_buffered_amount: usize,
    /// The most bytes that may wait for a connection while none is open, if sends are queued.
    offline_queue_bytes: Option<usize>,
}

/// What a take from the event queue gave.
pub(crate) enum Taken {
    /// The next event.
    Event(Event),
    /// Nothing yet (no wait asked for, or the timeout passed).
    Nothing,
    /// The stream has ended after its `Close`.
    Ended,
}

#[pymethods]
impl Connection {
    /// Starts connecting to `url`; returns at once.
    #[new]
    #[pyo3(signature = (url, options=None))]
    fn new(py: Python<'_>, url: &str, options: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let options = options::config(py, options)?;
        let max_buffered_amount = options.config.max_buffered_amount();
        let offline_queue_bytes = match options.config.offline_sends() {
            OfflineSends::Queue { max_bytes } => Some(max_bytes),
            _ => None,
        };
        let client =
            Client::connect_with_config(url, options.config).map_err(|err| to_pyerr(py, &err))?;
        Ok(Connection {
            client,
            slot: Mutex::new(None),
            observed: AtomicU8::new(CONNECTING),
            ever_opened: AtomicBool::new(false),
            failure: Mutex::new(None),
            dispatcher: Dispatcher::default(),
            sends_follow_offline_policy: options.sends_follow_offline_policy,
            max_buffered_amount,
            offline_queue_bytes,
        })
    }

    /// Sends `str` as a text message, `bytes`, `bytearray` or `memoryview` as binary.
    ///
    /// Raises `InvalidStateError` (a `ConnectionError`) before the connection is open and once
    /// it is closing or closed; `TypeError` for another type. With `reconnect` or
    /// `offline_sends`, a send while no connection is open follows that policy instead: it is
    /// queued for the next connection (`QueueFullError` over the limit), or, with `"fail"`,
    /// raises `InvalidStateError`.
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if !self.sends_follow_offline_policy
            && self.observed.load(Ordering::Acquire) != OPEN
            && self.state(py) == CONNECTING
        {
            return Err(new_error(
                py,
                "InvalidStateError",
                "send() before the connection is open (readyState is CONNECTING)",
            ));
        }
        let message = to_message(py, data)?;
        let len = message.len();
        self.client.send(message).map_err(|err| match err {
            CoreError::QueueFull(queued) => self.queue_full(py, queued, len),
            CoreError::Closed => self.too_late(py),
            CoreError::NotOpen => new_error(
                py,
                "InvalidStateError",
                "send() while no connection is open, and offline_sends is \"fail\"",
            ),
            other => to_pyerr(py, &other),
        })
    }

    /// Sends a ping (at most 125 bytes of payload); the pong is not an event.
    #[pyo3(signature = (payload=None))]
    fn ping(&self, py: Python<'_>, payload: Option<&[u8]>) -> PyResult<()> {
        let payload = payload.unwrap_or_default().to_vec();
        self.client.ping(payload).map_err(|err| to_pyerr(py, &err))
    }

    /// Validates `code` and `reason` as JS does, starts the close handshake and, unless called
    /// from a callback, waits until the connection is closed (with callbacks: until `onclose`
    /// has returned).
    #[pyo3(signature = (code=None, reason=None))]
    fn close(
        &self,
        py: Python<'_>,
        code: Option<&Bound<'_, PyAny>>,
        reason: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let code = close_code(py, code)?;
        let reason = match reason {
            None => String::new(),
            Some(reason) if reason.is_none() => String::new(),
            Some(reason) => reason.extract::<String>()?,
        };
        if reason.len() > MAX_REASON_BYTES {
            return Err(new_error(
                py,
                "DOMSyntaxError",
                format!(
                    "close reason is {} bytes of UTF-8, the limit is {MAX_REASON_BYTES}",
                    reason.len()
                ),
            ));
        }
        self.client
            .close_with(code, &reason)
            .map_err(|err| to_pyerr(py, &err))?;
        if !self.dispatcher.is_current_thread() {
            self.wait_closed(py, None)?;
        }
        Ok(())
    }

    /// Starts a close with code 1000 and returns at once (used at interpreter exit).
    fn close_nowait(&self) {
        // Fails only when the connection is already closing, which is what we want.
        let _ = self.client.close();
    }

    /// Waits up to `timeout` seconds (for ever if `None`) until the connection is over (with
    /// `reconnect`: the last one): the I/O thread has finished and, with callbacks, the last
    /// `onclose` has returned. Returns whether it
    /// is. Does not close by itself.
    #[pyo3(signature = (timeout=None))]
    fn wait_closed(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = wait::deadline(timeout)?;
        if self.dispatcher.is_claimed() {
            if self.dispatcher.is_current_thread() {
                // onclose runs on this very thread, after the callback that waits here.
                return Ok(false);
            }
            return Ok(wait::block_on(py, deadline, |until| {
                self.dispatcher.wait_done(until).then_some(())
            })?
            .is_some());
        }
        Ok(wait::block_on(py, deadline, |until| {
            let timeout = until.map_or(Duration::MAX, |until| {
                until.saturating_duration_since(Instant::now())
            });
            self.client.wait_closed(timeout).then_some(())
        })?
        .is_some())
    }

    /// The next event, waiting up to `timeout` seconds (for ever if `None`).
    ///
    /// Raises `TimeoutError` if none came in time, `StreamEndedError` after the last `Close`.
    #[pyo3(signature = (timeout=None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let deadline = wait::deadline(timeout)?;
        self.next(py, deadline)?.ok_or_else(|| ended(py))
    }

    /// The next event if one is queued, else `None`; never blocks.
    ///
    /// Raises `StreamEndedError` after the `Close`.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        loop {
            match self.take(py, None)? {
                Taken::Event(event) => {
                    if let Some(object) = events::to_python(py, &event)? {
                        return Ok(Some(object));
                    }
                }
                Taken::Nothing => return Ok(None),
                Taken::Ended => return Err(ended(py)),
            }
        }
    }

    /// The next event, or `None` once the stream has ended (the iterator protocol's end).
    fn next_event(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.next(py, None)
    }

    /// JS `readyState`: 0 connecting, 1 open, 2 closing, 3 closed.
    #[getter]
    fn ready_state(&self, py: Python<'_>) -> u8 {
        self.state(py)
    }

    /// JS `bufferedAmount`: bytes accepted by `send` and not yet written to the socket.
    #[getter]
    fn buffered_amount(&self) -> usize {
        self.client.buffered_amount()
    }

    /// JS `protocol`: the subprotocol the server chose, or `""`.
    #[getter]
    fn protocol(&self) -> String {
        self.client.protocol()
    }

    /// JS `extensions`: the extensions the server agreed to, as it named them (e.g.
    /// `"permessage-deflate; server_max_window_bits=12"`), or `""`; known from the `Open` on.
    #[getter]
    fn extensions(&self) -> String {
        self.client.extensions()
    }

    /// Marks the connection as dispatched to callbacks. Returns `True` only for the first
    /// caller, which must then run `dispatch` on a thread of its own.
    fn claim_dispatcher(&self) -> bool {
        self.dispatcher.claim()
    }

    /// Lets the dispatcher begin; called by the thread that started it, once `start()` has
    /// returned.
    fn open_dispatcher_gate(&self) {
        self.dispatcher.open_gate();
    }

    /// Marks a claimed dispatcher that could not be started as finished, so that nothing
    /// waits for it.
    fn abandon_dispatcher(&self) {
        self.dispatcher.abandon();
    }

    /// How many batches of events the dispatcher has handed to the callbacks, i.e. how often
    /// it attached to the interpreter (for tests and curiosity).
    #[getter]
    fn dispatched_batches(&self) -> usize {
        self.dispatcher.batches()
    }

    /// Whether callbacks get the events (a dispatcher was claimed).
    #[getter]
    fn has_dispatcher(&self) -> bool {
        self.dispatcher.is_claimed()
    }

    /// The dispatcher loop: hands every event to the callbacks of `target` until the last
    /// `Close`.
    /// `call_with_event(callback, event)` calls `onerror` and `onclose`, with or without the
    /// event as their signature wants.
    fn dispatch(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        call_with_event: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        crate::dispatch::run(self, py, target, call_with_event)
    }
}

impl Connection {
    /// The next event, waiting until `deadline` (for ever if `None`); `None` once the stream
    /// has ended. Raises `TimeoutError` when the deadline passes.
    fn next(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Option<Py<PyAny>>> {
        loop {
            match self.take(py, Some(deadline))? {
                Taken::Event(event) => {
                    if let Some(object) = events::to_python(py, &event)? {
                        return Ok(Some(object));
                    }
                }
                Taken::Nothing => {
                    return Err(pyo3::exceptions::PyTimeoutError::new_err(
                        "no event within the timeout",
                    ));
                }
                Taken::Ended => return Ok(None),
            }
        }
    }

    /// The state as Python sees it. With callbacks: as of the last event dispatched. Without:
    /// as of the events that have arrived, whether taken yet or not.
    fn state(&self, py: Python<'_>) -> u8 {
        let observed = self.observed.load(Ordering::Acquire);
        if observed == CLOSED {
            return CLOSED;
        }
        let dispatched = self.dispatcher.is_claimed();
        if !dispatched && self.client.wait_closed(Duration::ZERO) {
            // The I/O thread is done: the Close is queued.
            return CLOSED;
        }
        match self.client.ready_state() {
            ReadyState::Closing | ReadyState::Closed => return CLOSING,
            _ => {}
        }
        if observed == OPEN || (!dispatched && self.peek_open(py)) {
            return OPEN;
        }
        CONNECTING
    }

    /// Without callbacks: takes the first event early (if no one else is taking) so that
    /// `readyState` turns OPEN without the caller taking events. Whether it is the `Open`.
    fn peek_open(&self, _py: Python<'_>) -> bool {
        let Ok(mut slot) = self.slot.try_lock() else {
            // Someone is taking events right now, and will mark the state.
            return false;
        };
        if slot.is_none() {
            if let Ok(event) = self.client.try_recv() {
                *slot = Some(event);
            }
        }
        let open = matches!(*slot, Some(Event::Open(_)));
        if open {
            // Python has seen OPEN now; it must stay so when callbacks take over the events.
            self.observed.fetch_max(OPEN, Ordering::AcqRel);
        }
        open
    }

    /// Takes the next event: without waiting if `deadline` is `None`, else waiting until
    /// `Some(deadline)` (for ever if that is `None`), with the GIL released.
    fn take(&self, py: Python<'_>, deadline: Option<Option<Instant>>) -> PyResult<Taken> {
        if self.dispatcher.is_claimed() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this WebSocket has callbacks, which get every event: \
                 recv(), try_recv() and iteration are for WebSockets without callbacks",
            ));
        }
        let mut slot = self.lock_slot(py);
        // Each event is observed before the slot is unlocked, so that `peek_open` never sees
        // the next connection's `Open` before this connection's `Close` is recorded.
        if let Some(event) = slot.take() {
            self.observe(&event);
            return Ok(Taken::Event(event));
        }
        match self.client.try_recv() {
            Ok(event) => {
                self.observe(&event);
                return Ok(Taken::Event(event));
            }
            Err(TryRecvError::Disconnected) => return Ok(Taken::Ended),
            Err(TryRecvError::Empty) => {}
        }
        let Some(deadline) = deadline else {
            return Ok(Taken::Nothing);
        };
        // The slot stays locked while we wait, so nobody takes an event past us. The wait is
        // the core's blocking one: the thread parks until an event or the deadline.
        let taken = wait::block_on(py, deadline, |until| {
            let result = match until {
                None => self
                    .client
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(until) => self.client.recv_deadline(until),
            };
            match result {
                Ok(event) => Some(Taken::Event(event)),
                Err(RecvTimeoutError::Disconnected) => Some(Taken::Ended),
                Err(RecvTimeoutError::Timeout) => None,
            }
        })?;
        if let Some(Taken::Event(event)) = &taken {
            self.observe(event);
        }
        drop(slot);
        Ok(taken.unwrap_or(Taken::Nothing))
    }

    /// Locks the slot, releasing the GIL while another thread holds it.
    fn lock_slot(&self, py: Python<'_>) -> MutexGuard<'_, Option<Event>> {
        loop {
            match self.slot.try_lock() {
                Ok(slot) => return slot,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    // Wait for the holder without the GIL, which it may need to finish.
                    py.detach(|| drop(self.slot.lock().unwrap_or_else(PoisonError::into_inner)));
                }
            }
        }
    }

    /// Takes up to `limit` events for the dispatcher, waiting for the first: an empty batch
    /// means the stream has ended. Called without the GIL.
    pub(crate) fn take_batch(&self, limit: usize) -> Vec<Event> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let first = match slot.take() {
            Some(event) => event,
            // The dispatcher is never the main thread, so it needs no slices for Ctrl-C: it
            // parks until the next event.
            None => match self.client.recv() {
                Ok(event) => event,
                Err(_) => return Vec::new(),
            },
        };
        let mut batch = Vec::with_capacity(limit.min(16));
        batch.push(first);
        while batch.len() < limit {
            match self.client.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        batch
    }

    /// Records what handing `event` to Python means for `readyState`: OPEN after an `Open`;
    /// after a `Close`, CLOSED, or CONNECTING when another attempt follows (the backoff).
    /// Also remembers whether a connection opened, and how one that never opened failed.
    pub(crate) fn observe(&self, event: &Event) {
        match event {
            Event::Open(_) => {
                self.ever_opened.store(true, Ordering::Release);
                self.observed.store(OPEN, Ordering::Release);
            }
            Event::Error(err) if !self.ever_opened.load(Ordering::Acquire) => {
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(describe(err));
            }
            Event::Close(close) if close.is_final() => {
                self.observed.store(CLOSED, Ordering::Release);
            }
            Event::Close(_) => self.observed.store(CONNECTING, Ordering::Release),
            _ => {}
        }
    }
}

impl Connection {
    /// The `QueueFullError` for a `send()` of `len` bytes that would take the `queued` bytes
    /// waiting past a limit: `max_buffered_amount` while a connection is open,
    /// `offline_queue_bytes` while none is. Its `queued` attribute is `queued`.
    fn queue_full(&self, py: Python<'_>, queued: usize, len: usize) -> PyErr {
        let (name, limit, waiting) = match self.offline_queue_bytes {
            Some(max_bytes) if self.client.ready_state() != ReadyState::Open => {
                ("offline_queue_bytes", max_bytes, "for a connection")
            }
            _ => (
                "max_buffered_amount",
                self.max_buffered_amount,
                "to be written",
            ),
        };
        let err = new_error(
            py,
            "QueueFullError",
            format!(
                "send() of {len} bytes refused: {queued} bytes already wait {waiting}, \
                 and {name} allows {limit}"
            ),
        );
        if let Err(failed) = err.value(py).setattr("queued", queued) {
            return failed;
        }
        err
    }

    /// The `InvalidStateError` for a `send()` the core refused because the connection is over
    /// or closing: "after the connection started closing" only if it ever opened; otherwise
    /// that it never opened, and how it failed, when that is known (the `Error` event taken, or
    /// the first one still queued).
    fn too_late(&self, py: Python<'_>) -> PyErr {
        if self.ever_opened.load(Ordering::Acquire) {
            let when = if self.state(py) == CLOSED {
                "closed"
            } else {
                "started closing"
            };
            return new_error(
                py,
                "InvalidStateError",
                format!("send() after the connection {when}"),
            );
        }
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .or_else(|| self.queued_failure());
        let message = match failure {
            Some(why) => format!("send() on a connection that never opened: {why}"),
            None => "send() on a connection that never opened and is over".to_owned(),
        };
        new_error(py, "InvalidStateError", message)
    }

    /// Without callbacks, before the caller took it: the `Error` that is the first queued
    /// event, described. It stays queued (in the slot) for the caller.
    fn queued_failure(&self) -> Option<String> {
        if self.dispatcher.is_claimed() {
            return None;
        }
        let mut slot = self.slot.try_lock().ok()?;
        if slot.is_none() {
            *slot = self.client.try_recv().ok();
        }
        match &*slot {
            Some(Event::Error(err)) => Some(describe(err)),
            _ => None,
        }
    }
}

/// JS `close(code)` validation: an integer, 1000 or 3000-4999, else `InvalidAccessError`.
fn close_code(py: Python<'_>, code: Option<&Bound<'_, PyAny>>) -> PyResult<u16> {
    let Some(code) = code.filter(|code| !code.is_none()) else {
        return Ok(1000);
    };
    if !code.is_instance_of::<PyInt>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "close code must be an int",
        ));
    }
    match code.extract::<i64>() {
        Ok(code @ (1000 | 3000..=4999)) => Ok(u16::try_from(code).unwrap_or(1000)),
        _ => Err(new_error(
            py,
            "InvalidAccessError",
            format!("close code {code} is neither 1000 nor in 3000-4999"),
        )),
    }
}

fn ended(py: Python<'_>) -> PyErr {
    new_error(
        py,
        "StreamEndedError",
        "the event stream has ended after its Close event",
    )
}
