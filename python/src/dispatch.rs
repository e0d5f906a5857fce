//! The callback dispatcher: one native thread per `WebSocket` with callbacks, named
//! `nwebsocket-dispatch`, which takes events in batches without the GIL and calls `onopen`,
//! `onmessage`, `onerror` and `onclose` with it, attaching to the interpreter once per batch.
//!
//! A native thread rather than a `threading.Thread`: `Thread.start()` waits until the new
//! thread has run in Python and handed the GIL back (about 100 µs on a 2-vCPU VM, most of a
//! loopback connect), while spawning this one returns at once and the thread attaches while
//! the caller waits for the connection. To `threading` it is an ordinary thread of that name
//! from its start to its end (see `websocket.py`'s `_DispatcherThread`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::ThreadId;
use std::time::Instant;

use nwebsocket::{Client, Event};
use pyo3::intern;
use pyo3::prelude::*;

use crate::errors::to_exception;
use crate::events::{self, Close};
use crate::taking::Taking;

/// The most events taken per batch: bounds the memory a batch holds and how long the
/// dispatcher keeps the GIL at a time.
const BATCH: usize = 256;

/// The dispatcher thread's name, for the OS and for `threading`.
pub(crate) const THREAD_NAME: &str = "nwebsocket-dispatch";

/// Whether a connection has a dispatcher, which thread it is, and whether it has finished.
#[derive(Debug, Default)]
pub(crate) struct Dispatcher {
    claimed: AtomicBool,
    /// How many batches were dispatched: how often the dispatcher attached to the interpreter.
    batches: AtomicUsize,
    thread: OnceLock<ThreadId>,
    done: Mutex<bool>,
    finished: Condvar,
}

impl Dispatcher {
    /// Claims the dispatcher role; `true` only the first time.
    pub(crate) fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// Whether the calling thread is this connection's dispatcher (i.e. we are in a callback).
    pub(crate) fn is_current_thread(&self) -> bool {
        self.thread.get() == Some(&std::thread::current().id())
    }

    /// Whether the dispatcher has finished (or never started).
    pub(crate) fn is_done(&self) -> bool {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the dispatcher has finished, at most until `until`; whether it has.
    pub(crate) fn wait_done(&self, until: Option<Instant>) -> bool {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let not_done = |done: &mut bool| !*done;
        match until {
            None => *self
                .finished
                .wait_while(done, not_done)
                .unwrap_or_else(PoisonError::into_inner),
            Some(until) => {
                let timeout = until.saturating_duration_since(Instant::now());
                *self
                    .finished
                    .wait_timeout_while(done, timeout, not_done)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        }
    }

    /// How many batches have been dispatched so far.
    pub(crate) fn batches(&self) -> usize {
        self.batches.load(Ordering::Relaxed)
    }

    fn set_done(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.finished.notify_all();
    }
}

/// Marks the dispatcher finished however its thread ends, so that `close()` never waits for
/// ever.
struct DoneGuard<'a>(&'a Dispatcher);

impl Drop for DoneGuard<'_> {
    fn drop(&mut self) {
        self.0.set_done();
    }
}

/// What the dispatcher thread shares with its `Connection`.
pub(crate) struct Shared {
    pub(crate) client: Arc<Client>,
    pub(crate) taking: Arc<Taking>,
    pub(crate) dispatcher: Arc<Dispatcher>,
}

/// Starts the dispatcher thread of a claimed dispatcher: it hands every event to the callbacks
/// of `target` until the last `Close`.
///
/// `thread` is the Python side of the thread (`websocket.py`'s `_DispatcherThread`):
/// `thread._begin()` runs on the new thread first, `thread._end()` last, and
/// `thread._call(callback, event)` calls `onerror` and `onclose`, with or without the event as
/// their signature wants.
///
/// # Errors
/// `RuntimeError` if the OS refuses a thread; the dispatcher is then marked finished, so that
/// nothing waits for it.
pub(crate) fn start(shared: Shared, target: Py<PyAny>, thread: Py<PyAny>) -> PyResult<()> {
    let dispatcher = Arc::clone(&shared.dispatcher);
    let spawned = std::thread::Builder::new()
        .name(THREAD_NAME.to_owned())
        .spawn(move || thread_main(&shared, target, thread));
    match spawned {
        Ok(_detached) => Ok(()),
        Err(err) => {
            dispatcher.set_done();
            Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "cannot start the dispatcher thread: {err}"
            )))
        }
    }
}

/// The dispatcher thread: attached to the interpreter for its whole life (one thread state,
/// so that `threading` sees one thread), but with the GIL released while it waits.
///
/// It attaches at once rather than at the first event: the thread state is then made while
/// the caller waits for the connection, not between the `Open` and `onopen` (connect+close
/// measured 0.53 ms against 0.63 ms, median of 5 interleaved rounds on a 2-vCPU VM). The
/// caller keeps the GIL until it blocks or its switch interval ends, so the callbacks it
/// assigns on the next lines are in place before the first one is called, as with a
/// `threading.Thread`.
fn thread_main(shared: &Shared, target: Py<PyAny>, thread: Py<PyAny>) {
    let dispatcher = &*shared.dispatcher;
    // Set before any callback runs: `close()` and `wait_closed()` in a callback must know it.
    let _ = dispatcher.thread.set(std::thread::current().id());
    // Finished only once detached, so that the thread woken by it finds the GIL free.
    let _done = DoneGuard(dispatcher);
    Python::attach(|py| {
        let target = target.into_bound(py);
        let thread = thread.into_bound(py);
        if let Err(err) = thread.call_method0(intern!(py, "_begin")) {
            err.write_unraisable(py, Some(&thread));
        }
        match thread.getattr(intern!(py, "_call")) {
            Ok(call_with_event) => run(shared, py, &target, &call_with_event),
            Err(err) => err.write_unraisable(py, Some(&thread)),
        }
        if let Err(err) = thread.call_method0(intern!(py, "_end")) {
            err.write_unraisable(py, Some(&thread));
        }
    });
}

/// Dispatches until the last `Close` has been dispatched, or the stream has ended.
///
/// The wait for events releases the GIL and never wakes on an idle connection. An exception in
/// a callback goes to `sys.unraisablehook` and the loop goes on.
fn run(
    shared: &Shared,
    py: Python<'_>,
    target: &Bound<'_, PyAny>,
    call_with_event: &Bound<'_, PyAny>,
) {
    loop {
        let batch = py.detach(|| shared.taking.take_batch(&shared.client, BATCH));
        if batch.is_empty() {
            return;
        }
        shared.dispatcher.batches.fetch_add(1, Ordering::Relaxed);
        for event in batch {
            // With reconnection, only the last `Close` ends the loop: the others are followed
            // by the next connection's events.
            let last = matches!(&event, Event::Close(close) if close.is_final());
            shared.taking.observe(&event);
            fire(py, target, call_with_event, &event);
            if last {
                return;
            }
        }
    }
}

/// Calls the callback for `event`, looked up on `target` now (so late assignment works).
fn fire(
    py: Python<'_>,
    target: &Bound<'_, PyAny>,
    call_with_event: &Bound<'_, PyAny>,
    event: &Event,
) {
    let name = match event {
        Event::Open(_) => intern!(py, "onopen"),
        Event::Message(_) => intern!(py, "onmessage"),
        Event::Error(_) => intern!(py, "onerror"),
        Event::Close(_) => intern!(py, "onclose"),
        _ => return,
    };
    let callback = match target.getattr(name) {
        Ok(callback) if callback.is_none() => return,
        Ok(callback) => callback,
        Err(err) => return err.write_unraisable(py, Some(target)),
    };
    let result = match event {
        Event::Open(_) => callback.call0(),
        Event::Message(message) => callback.call1((events::data(py, message),)),
        Event::Error(err) => call_with_event.call1((&callback, to_exception(py, err))),
        Event::Close(close) => match Close::new(close).into_pyobject(py) {
            Ok(close) => call_with_event.call1((&callback, close)),
            Err(err) => Err(err),
        },
        _ => return,
    };
    if let Err(err) = result {
        err.write_unraisable(py, Some(&callback));
    }
}
