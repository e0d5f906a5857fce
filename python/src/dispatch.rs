//! The callback dispatcher: one Python thread per `WebSocket` with callbacks, which takes
//! events in batches without the GIL and calls `onopen`, `onmessage`, `onerror` and `onclose`
//! with it, attaching to the interpreter once per batch.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
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

/// Whether a connection has a dispatcher, which thread it is, and whether it has finished.
#[derive(Debug, Default)]
pub(crate) struct Dispatcher {
    claimed: AtomicBool,
    /// Opened by the thread that started the dispatcher once `Thread.start()` has returned to
    /// it. That wait hands the GIL around; without the gate, events already queued (a refused
    /// connection fails in microseconds) would be dispatched before the next lines of the
    /// caller, e.g. `ws.onclose = ...`, had run. After it, the caller keeps the GIL until it
    /// blocks or its switch interval ends, so that consecutive assignments all take effect.
    gate: Mutex<bool>,
    gate_opened: Condvar,
    /// How many batches were dispatched: how often the dispatcher attached to the interpreter.
    batches: AtomicUsize,
    thread: Mutex<Option<ThreadId>>,
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
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        *thread == Some(std::thread::current().id())
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

    /// Marks a dispatcher that never started as finished.
    pub(crate) fn abandon(&self) {
        self.set_done();
    }

    /// Lets the dispatcher start dispatching.
    pub(crate) fn open_gate(&self) {
        *self.gate.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.gate_opened.notify_all();
    }

    fn wait_for_gate(&self) {
        let gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let _open = self
            .gate_opened
            .wait_while(gate, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
    }

    fn set_done(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.finished.notify_all();
    }
}

/// Marks the dispatcher finished however the loop ends, so that `close()` never waits for ever.
struct DoneGuard<'a>(&'a Dispatcher);

impl Drop for DoneGuard<'_> {
    fn drop(&mut self) {
        self.0.set_done();
    }
}

/// Runs the dispatcher on the calling (Python) thread until the last `Close` has been
/// dispatched.
///
/// The wait for events releases the GIL and never wakes on an idle connection. An exception in
/// a callback goes to `sys.unraisablehook` and the loop goes on.
pub(crate) fn run(
    client: &Client,
    taking: &Taking,
    dispatcher: &Dispatcher,
    py: Python<'_>,
    target: &Bound<'_, PyAny>,
    call_with_event: &Bound<'_, PyAny>,
) -> PyResult<()> {
    *dispatcher
        .thread
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(std::thread::current().id());
    let _done = DoneGuard(dispatcher);
    let mut gate_passed = false;
    loop {
        let batch = py.detach(|| taking.take_batch(client, BATCH));
        if !gate_passed {
            // The first batch is taken before the gate is looked at, so that the thread parks
            // once, on the event queue, rather than first on the gate and then on the queue
            // (the gate is open by the time a connection opens, as a rule). Its events still
            // reach the callbacks only once the gate is open.
            py.detach(|| dispatcher.wait_for_gate());
            gate_passed = true;
        }
        if batch.is_empty() {
            return Ok(());
        }
        dispatcher.batches.fetch_add(1, Ordering::Relaxed);
        for event in batch {
            // With reconnection, only the last `Close` ends the loop: the others are followed
            // by the next connection's events.
            let last = matches!(&event, Event::Close(close) if close.is_final());
            taking.observe(&event);
            fire(py, target, call_with_event, &event);
            if last {
                return Ok(());
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
