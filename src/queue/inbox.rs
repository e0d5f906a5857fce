//! The handle's end of the event queue: takes batches and hands their events out one at a
//! time, in order, also when several threads receive at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Backpressure, Batch, Item};
use crate::event::Event;
use crate::shared::Shared;

/// Why no event was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoEvent {
    Empty,
    Timeout,
    Ended,
}

/// Batches taken from the queue and not yet handed out, oldest first; almost always one.
type Unpacked = VecDeque<(u64, std::vec::IntoIter<Event>)>;

/// The handle's end of the queue.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: flume::Receiver<Item>,
    /// Only ever locked briefly, never across a wait.
    taken: Mutex<Unpacked>,
    backpressure: Arc<Backpressure>,
    /// To wake the I/O thread when a pause is lifted.
    shared: Arc<Shared>,
}

impl Inbox {
    pub(super) fn new(
        rx: flume::Receiver<Item>,
        backpressure: Arc<Backpressure>,
        shared: Arc<Shared>,
    ) -> Self {
        Inbox {
            rx,
            taken: Mutex::new(VecDeque::new()),
            backpressure,
            shared,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Unpacked> {
        // A panic while the lock is held cannot leave the deque half-updated.
        self.taken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next event if one is queued now.
    pub(crate) fn try_recv(&self) -> Result<Event, NoEvent> {
        let mut taken = self.lock();
        if let Some(event) = next_taken(&mut taken) {
            return Ok(event);
        }
        // Taken under the lock, so that two consumers cannot reorder batches.
        match self.rx.try_recv() {
            Ok(item) => Ok(self.unpack(item, &mut taken)),
            Err(flume::TryRecvError::Empty) => Err(NoEvent::Empty),
            Err(flume::TryRecvError::Disconnected) => Err(NoEvent::Ended),
        }
    }

    /// Waits for the next event until `deadline` (forever if `None`).
    pub(crate) fn recv_deadline(&self, deadline: Option<Instant>) -> Result<Event, NoEvent> {
        match self.try_recv() {
            Err(NoEvent::Empty) => {}
            other => return other,
        }
        // Wait without the lock, so that `try_recv` on another thread never waits for us.
        let item = match deadline {
            None => self.rx.recv().map_err(|_| NoEvent::Ended)?,
            Some(deadline) => self.rx.recv_deadline(deadline).map_err(|err| match err {
                flume::RecvTimeoutError::Timeout => NoEvent::Timeout,
                flume::RecvTimeoutError::Disconnected => NoEvent::Ended,
            })?,
        };
        let mut taken = self.lock();
        Ok(self.unpack(item, &mut taken))
    }

    /// Accounts for a batch taken from the queue, keeps it and returns its oldest event.
    fn unpack(&self, item: Item, taken: &mut Unpacked) -> Event {
        if item.messages > 0 && self.backpressure.take(item.messages, item.bytes) {
            self.shared.wake_driver();
        }
        let events = match item.events {
            Batch::One(event) if taken.is_empty() => return event,
            Batch::One(event) => vec![event],
            Batch::Many(events) => events,
        };
        // Another consumer may have taken a batch while we waited (only when several threads
        // receive at once): keep the batches in sequence order.
        let at = taken.partition_point(|(seq, _)| *seq < item.seq);
        taken.insert(at, (item.seq, events.into_iter()));
        next_taken(taken).expect("the I/O thread sends no empty batch")
    }
}

/// The next event of the oldest batch; a batch leaves the deque with its last event.
fn next_taken(taken: &mut Unpacked) -> Option<Event> {
    let (_, events) = taken.front_mut()?;
    let event = events.next();
    if events.len() == 0 {
        taken.pop_front();
    }
    event
}
