//! Taking events from the core client, for the polling calls (`recv`, `try_recv`, iteration)
//! and the callback dispatcher alike: one taker at a time, so that events leave in order, and
//! what the events handed to Python say about the connection (its `readyState`, whether it
//! ever opened, how it failed).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use nwebsocket::{Client, Event, RecvTimeoutError, TryRecvError};
use pyo3::prelude::*;

use crate::errors::describe;
use crate::wait;

/// `readyState` values, as in JS.
pub(crate) const CONNECTING: u8 = 0;
/// The handshake succeeded.
pub(crate) const OPEN: u8 = 1;
/// The close handshake has started.
pub(crate) const CLOSING: u8 = 2;
/// The connection is over.
pub(crate) const CLOSED: u8 = 3;

/// What a take from the event queue gave.
pub(crate) enum Taken {
    /// The next event.
    Event(Event),
    /// Nothing yet (no wait asked for, or the timeout passed).
    Nothing,
    /// The stream has ended after its `Close`.
    Ended,
}

/// The taking state of one connection.
#[derive(Debug)]
pub(crate) struct Taking {
    /// The lock every taker of events holds while it takes one (so that events leave in
    /// order), and an event taken from the queue early (by `readyState`, to learn that the
    /// connection is open; or to describe a failure) that the next taker gets first.
    slot: Mutex<Option<Event>>,
    /// The state implied by the events handed to Python so far (as return values, or to the
    /// callbacks), or seen early in `slot`.
    observed: AtomicU8,
    /// Whether Python has seen an `Open`: a connection that never opened is not "closing".
    ever_opened: AtomicBool,
    /// How the connection that never opened failed (its `Error` event, described), once Python
    /// has seen that event; for the message of a `send()` that comes too late.
    failure: Mutex<Option<String>>,
}

impl Default for Taking {
    fn default() -> Self {
        Taking {
            slot: Mutex::new(None),
            observed: AtomicU8::new(CONNECTING),
            ever_opened: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }
}

impl Taking {
    /// The state implied by the events handed to Python so far.
    pub(crate) fn observed(&self) -> u8 {
        self.observed.load(Ordering::Acquire)
    }

    /// Whether Python has seen an `Open`.
    pub(crate) fn ever_opened(&self) -> bool {
        self.ever_opened.load(Ordering::Acquire)
    }

    /// How the connection that never opened failed, if Python has seen its `Error`.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Without callbacks: takes the first event early (if no one else is taking) so that
    /// `readyState` turns OPEN without the caller taking events. Whether it is the `Open`.
    pub(crate) fn peek_open(&self, client: &Client) -> bool {
        let Ok(mut slot) = self.slot.try_lock() else {
            // Someone is taking events right now, and will mark the state.
            return false;
        };
        if slot.is_none() {
            if let Ok(event) = client.try_recv() {
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
    pub(crate) fn take(
        &self,
        py: Python<'_>,
        client: &Client,
        deadline: Option<Option<Instant>>,
    ) -> PyResult<Taken> {
        let mut slot = self.lock_slot(py);
        // Each event is observed before the slot is unlocked, so that `peek_open` never sees
        // the next connection's `Open` before this connection's `Close` is recorded.
        if let Some(event) = slot.take() {
            self.observe(&event);
            return Ok(Taken::Event(event));
        }
        match client.try_recv() {
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
                None => client.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(until) => client.recv_deadline(until),
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
    pub(crate) fn take_batch(&self, client: &Client, limit: usize) -> Vec<Event> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let first = match slot.take() {
            Some(event) => event,
            // The dispatcher is never the main thread, so it needs no slices for Ctrl-C: it
            // parks until the next event.
            None => match client.recv() {
                Ok(event) => event,
                Err(_) => return Vec::new(),
            },
        };
        let mut batch = Vec::with_capacity(limit.min(16));
        batch.push(first);
        while batch.len() < limit {
            match client.try_recv() {
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

    /// For a caller without callbacks (the dispatcher takes every event at once): the `Error`
    /// that is the first queued event, described. It stays queued (in the slot).
    pub(crate) fn queued_failure(&self, client: &Client) -> Option<String> {
        let mut slot = self.slot.try_lock().ok()?;
        if slot.is_none() {
            *slot = client.try_recv().ok();
        }
        match &*slot {
            Some(Event::Error(err)) => Some(describe(err)),
            _ => None,
        }
    }
}
