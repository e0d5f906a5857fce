//! The handle's end of the event queue: takes batches and hands their events out one at a
//! time, in order, also when several threads receive at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tungstenite::Utf8Bytes;

use super::{Backpressure, Batch, Item, Packed, Slot};
use crate::event::{Event, Message, Text};
use crate::shared::Shared;

/// Why no event was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoEvent {
    Empty,
    Timeout,
    Ended,
}

/// Batches taken from the queue and not yet handed out, oldest first; almost always one.
type Unpacked = VecDeque<(u64, Unpacking)>;

/// A batch being handed out: small messages get their `Bytes` here, on the consumer's thread.
#[derive(Debug)]
struct Unpacking {
    slots: std::vec::IntoIter<Slot>,
    events: std::vec::IntoIter<Event>,
    blocks: std::vec::IntoIter<Bytes>,
    /// The block of the next small message, and where that message starts in it.
    block: Bytes,
    at: usize,
}

impl Unpacking {
    fn new(packed: Packed) -> Self {
        let mut blocks = packed.blocks.into_iter();
        Unpacking {
            block: blocks.next().unwrap_or_default(),
            blocks,
            at: 0,
            slots: packed.slots.into_iter(),
            events: packed.events.into_iter(),
        }
    }

    fn is_done(&self) -> bool {
        self.slots.len() == 0
    }

    fn next(&mut self) -> Option<Event> {
        loop {
            let (end, text) = match self.slots.next()? {
                Slot::Event => return self.events.next(),
                Slot::NextBlock => {
                    self.block = self.blocks.next().unwrap_or_default();
                    self.at = 0;
                    continue;
                }
                Slot::Binary { end } => (end as usize, false),
                Slot::Text { end } => (end as usize, true),
            };
            let payload = self.block.slice(self.at..end);
            self.at = end;
            let message = if text {
                let text = Utf8Bytes::try_from(payload)
                    .expect("the I/O thread checked the text before queueing it");
                Message::Text(Text::from_tungstenite(text))
            } else {
                Message::Binary(payload)
            };
            return Some(Event::Message(message));
        }
    }
}

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
            Err(flume::TryRecvError::Empty) => {
                // Whoever looks for an event may be waiting for the answer to what it sent.
                self.shared.end_gathering();
                Err(NoEvent::Empty)
            }
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
        let packed = match item.events {
            Batch::One(event) if taken.is_empty() => return event,
            Batch::One(event) => Packed {
                slots: vec![Slot::Event],
                events: vec![event],
                blocks: Vec::new(),
            },
            Batch::Many(packed) => packed,
        };
        // Another consumer may have taken a batch while we waited (only when several threads
        // receive at once): keep the batches in sequence order.
        let at = taken.partition_point(|(seq, _)| *seq < item.seq);
        taken.insert(at, (item.seq, Unpacking::new(packed)));
        next_taken(taken).expect("the I/O thread sends no empty batch")
    }
}

/// The next event of the oldest batch; a batch leaves the deque with its last event.
fn next_taken(taken: &mut Unpacked) -> Option<Event> {
    let (_, events) = taken.front_mut()?;
    let event = events.next();
    if events.is_done() {
        taken.pop_front();
    }
    event
}
