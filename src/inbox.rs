//! The event queue: the I/O thread sends events in batches (everything one socket read
//! produced), and the handle hands them out one at a time. One queue operation and at most
//! one consumer wake-up per batch, not per message.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::event::Event;

/// What travels through the flume queue: a batch with its sequence number. A lone event
/// needs no `Vec`.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) seq: u64,
    pub(crate) events: Batch,
}

#[derive(Debug)]
pub(crate) enum Batch {
    One(Event),
    Many(Vec<Event>),
}

/// How many messages are queued but not yet handed out: the I/O thread adds a batch's count
/// when it sends the batch, the handle takes one off per message it hands out. Backpressure
/// compares it with the configured capacity.
#[derive(Debug, Default)]
pub(crate) struct QueuedMessages(AtomicUsize);

impl QueuedMessages {
    pub(crate) fn add(&self, count: usize) {
        self.0.fetch_add(count, Ordering::SeqCst);
    }

    /// Takes one off; returns how many are left.
    pub(crate) fn take_one(&self) -> usize {
        self.0.fetch_sub(1, Ordering::SeqCst) - 1
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

/// The handle's end of the queue.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: flume::Receiver<Item>,
    /// The rest of the batch being handed out, each event with its batch's sequence number.
    /// Only ever locked briefly, never across a wait.
    rest: Mutex<VecDeque<(u64, Event)>>,
}

impl Inbox {
    pub(crate) fn new(rx: flume::Receiver<Item>) -> Self {
        Inbox {
            rx,
            rest: Mutex::new(VecDeque::new()),
        }
    }

    /// The next event if one is queued now.
    pub(crate) fn try_recv(&self) -> Result<Event, NoEvent> {
        let mut rest = self
            .rest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, event)) = rest.pop_front() {
            return Ok(event);
        }
        // Taken under the lock, so that two consumers cannot reorder batches.
        match self.rx.try_recv() {
            Ok(item) => Ok(unpack(item, &mut rest)),
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
        let mut rest = self
            .rest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if rest.is_empty() {
            return Ok(unpack(item, &mut rest));
        }
        // Another consumer took a batch meanwhile (only when several threads receive at once):
        // put ours in its place by sequence number and hand out the oldest event.
        let at = rest.partition_point(|(seq, _)| *seq < item.seq);
        let events = match item.events {
            Batch::One(event) => vec![event],
            Batch::Many(events) => events,
        };
        for (offset, event) in events.into_iter().enumerate() {
            rest.insert(at + offset, (item.seq, event));
        }
        let (_, event) = rest.pop_front().expect("just inserted at least one event");
        Ok(event)
    }
}

/// Returns the first event of `item` and keeps the rest.
fn unpack(item: Item, rest: &mut VecDeque<(u64, Event)>) -> Event {
    match item.events {
        Batch::One(event) => event,
        Batch::Many(events) => {
            let mut events = events.into_iter();
            let first = events.next().expect("the I/O thread sends no empty batch");
            rest.extend(events.map(|event| (item.seq, event)));
            first
        }
    }
}
