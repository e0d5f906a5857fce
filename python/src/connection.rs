//! `Connection`: one core [`Client`] as Python sees it. The `WebSocket` class of
//! `nwebsocket/websocket.py` wraps one; every blocking call here releases the GIL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nwebsocket::{Client, Error as CoreError, OfflineSends, ReadyState};
use pyo3::prelude::*;
use pyo3::types::PyInt;

use crate::dispatch::{self, Dispatcher, Shared};
use crate::errors::{new_error, to_pyerr};
use crate::payload::to_message;
use crate::taking::{CLOSED, CLOSING, CONNECTING, OPEN, Taken, Taking};
use crate::{events, options, wait};

/// The longest close reason JS allows, in UTF-8 bytes.
const MAX_REASON_BYTES: usize = 123;

/// One WebSocket connection: the core client, plus what the Python API needs on top.
#[pyclass(frozen, module = "nwebsocket._nwebsocket", name = "Connection")]
#[derive(Debug)]
pub(crate) struct Connection {
    /// Shared with the dispatcher thread, if there is one (as are the next two).
    client: Arc<Client>,
    /// Who takes events, and what those taken say.
    taking: Arc<Taking>,
    /// The callback dispatcher, if the `WebSocket` has callbacks.
    dispatcher: Arc<Dispatcher>,
    /// Whether `send()` while no connection is open is left to the core's offline policy
    /// (with `reconnect` or `offline_sends`), rather than raising before the first `Open`.
    sends_follow_offline_policy: bool,
    /// The most bytes that may wait to be written while a connection is open.
    max_buffered_amount: usize,
    /// The most bytes that may wait for a connection while none is open, if sends are queued.
    offline_queue_bytes: Option<usize>,
}

#[pymethods]
impl Connection {
    /// Starts connecting to `url`; returns at once.
    #[new]
    ///
    /// `io_threads` (the `WebSocket` argument), like the option of that name, is an
    /// `IoThreads` to connect on, or `None`; given both ways, it is an `OptionsError`.
    #[pyo3(signature = (url, options=None, io_threads=None))]
    fn new(
        py: Python<'_>,
        url: &str,
        options: Option<&Bound<'_, PyAny>>,
        io_threads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options = options::config(py, options)?;
        let io_threads = match io_threads {
            Some(value) => crate::io_threads::from_option(py, "io_threads", value)?,
            None => None,
        };
        let io_threads = match (io_threads, options.io_threads) {
            (Some(_), Some(_)) => {
                return Err(new_error(
                    py,
                    "OptionsError",
                    "give io_threads as the argument or as the option, not both",
                ));
            }
            (argument, option) => argument.or(option),
        };
        let max_buffered_amount = options.config.max_buffered_amount();
        let offline_queue_bytes = match options.config.offline_sends() {
            OfflineSends::Queue { max_bytes } => Some(max_bytes),
            _ => None,
        };
        let client = match io_threads {
            Some(io) => io.connect_with_config(url, options.config),
            None => Client::connect_with_config(url, options.config),
        }
        .map_err(|err| to_pyerr(py, &err))?;
        Ok(Connection {
            client: Arc::new(client),
            taking: Arc::default(),
            dispatcher: Arc::default(),
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
            && self.taking.observed() != OPEN
            && self.state() == CONNECTING
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
    fn ready_state(&self) -> u8 {
        self.state()
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

    /// Hands the events to the callbacks of `target` from now on, on a dispatcher thread of
    /// their own (`thread` is its Python side); `False`, doing nothing, if that was done before.
    ///
    /// Raises `RuntimeError` if the OS refuses a thread.
    fn start_dispatcher(&self, target: Py<PyAny>, thread: Py<PyAny>) -> PyResult<bool> {
        if !self.dispatcher.claim() {
            return Ok(false);
        }
        let shared = Shared {
            client: Arc::clone(&self.client),
            taking: Arc::clone(&self.taking),
            dispatcher: Arc::clone(&self.dispatcher),
        };
        dispatch::start(shared, target, thread)?;
        Ok(true)
    }

    /// Waits up to `timeout` seconds (for ever if `None`) until the dispatcher thread has
    /// finished; whether it has (`True` at once without a dispatcher). `False` at once on the
    /// dispatcher thread itself.
    #[pyo3(signature = (timeout=None))]
    fn join_dispatcher(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = wait::deadline(timeout)?;
        if !self.dispatcher.is_claimed() {
            return Ok(true);
        }
        if self.dispatcher.is_current_thread() {
            return Ok(false);
        }
        Ok(wait::block_on(py, deadline, |until| {
            self.dispatcher.wait_done(until).then_some(())
        })?
        .is_some())
    }

    /// Whether a dispatcher was started and has not finished yet.
    #[getter]
    fn dispatcher_running(&self) -> bool {
        self.dispatcher.is_claimed() && !self.dispatcher.is_done()
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

    /// Takes the next event as `Taking::take` does, for a caller without callbacks.
    fn take(&self, py: Python<'_>, deadline: Option<Option<Instant>>) -> PyResult<Taken> {
        if self.dispatcher.is_claimed() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this WebSocket has callbacks, which get every event: \
                 recv(), try_recv() and iteration are for WebSockets without callbacks",
            ));
        }
        self.taking.take(py, &self.client, deadline)
    }

    /// The state as Python sees it. With callbacks: as of the last event dispatched. Without:
    /// as of the events that have arrived, whether taken yet or not.
    fn state(&self) -> u8 {
        let observed = self.taking.observed();
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
        if observed == OPEN || (!dispatched && self.taking.peek_open(&self.client)) {
            return OPEN;
        }
        CONNECTING
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
        if self.taking.ever_opened() {
            let when = if self.state() == CLOSED {
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
        // The dispatcher takes every event at once: none waits in the queue to describe.
        let failure = self.taking.failure().or_else(|| {
            (!self.dispatcher.is_claimed())
                .then(|| self.taking.queued_failure(&self.client))
                .flatten()
        });
        let message = match failure {
            Some(why) => format!("send() on a connection that never opened: {why}"),
            None => "send() on a connection that never opened and is over".to_owned(),
        };
        new_error(py, "InvalidStateError", message)
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
