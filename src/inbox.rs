//! The event queue: the I/O thread sends events in batches (everything one socket read
//! produced), and the handle hands them out one at a time. One queue operation, one update of
//! the shared message count and at most one consumer wake-up per batch, not per message.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::event::Event;
use crate::shared::Shared;

/// What travels through the flume queue: a batch, its sequence number and how many of its
/// events are messages. A lone event needs no `Vec`.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) seq: u64,
    pub(crate) messages: usize,
    pub(crate) events: Batch,
}

#[derive(Debug)]
pub(crate) enum Batch {
    One(Event),
    Many(Vec<Event>),
}

/// How many messages wait in the queue: the I/O thread adds a batch's count when it sends
/// the batch, the handle takes it off when it takes the batch. Backpressure compares it with
/// the configured capacity.
#[derive(Debug, Default)]
pub(crate) struct QueuedMessages(AtomicUsize);

impl QueuedMessages {
    pub(crate) fn add(&self, count: usize) {
        self.0.fetch_add(count, Ordering::SeqCst);
    }

    /// Takes `count` off; returns how many are left.
    fn take(&self, count: usize) -> usize {
        self.0.fetch_sub(count, Ordering::SeqCst) - count
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why no event was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoEvent {
    Empty,
    Timeout,
    Ended,
}

/// Batches taken from the queue and not yet handed out, oldest first; almost always one.
type Taken = VecDeque<(u64, std::vec::IntoIter<Event>)>;

/// The handle's end of the queue.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: flume::Receiver<Item>,
    /// Only ever locked briefly, never across a wait.
    taken: Mutex<Taken>,
    shared: Arc<Shared>,
    low_water: usize,
}

impl Inbox {
    pub(crate) fn new(rx: flume::Receiver<Item>, shared: Arc<Shared>, low_water: usize) -> Self {
        Inbox {
            rx,
            taken: Mutex::new(VecDeque::new()),
            shared,
            low_water,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Taken> {
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
    fn unpack(&self, item: Item, taken: &mut Taken) -> Event {
        if item.messages > 0 {
            let left = self.shared.queued_messages.take(item.messages);
            if left <= self.low_water && self.shared.resume_reading() {
                self.shared.wake_driver();
            }
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
fn next_taken(taken: &mut Taken) -> Option<Event> {
    let (_, events) = taken.front_mut()?;
    let event = events.next();
    if events.len() == 0 {
        taken.pop_front();
    }
    event
}
