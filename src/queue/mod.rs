//! The event queue between the I/O thread and the handle, both ends: the I/O thread's
//! [`EventSink`] sends events in batches (everything one socket read produced), the handle's
//! [`Inbox`] hands them out one at a time. One queue operation, one update of the shared
//! message count and at most one consumer wake-up per batch, not per message.
//!
//! Backpressure: the queue holds at most `capacity` messages and `max_bytes` bytes of
//! payload (with permessage-deflate a few bytes on the wire can inflate to a large message,
//! so a count alone does not bound memory). At either limit the I/O thread stops reading the
//! socket (TCP then slows the server down); the consumer lifts the pause once it has taken
//! the queue down to half of both. Nothing is dropped and nothing blocks.

mod inbox;
mod sink;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

pub(crate) use inbox::{Inbox, NoEvent};
pub(crate) use sink::EventSink;

use crate::event::Event;
use crate::shared::Shared;

/// Both ends of a new event queue for `capacity` messages and `max_bytes` bytes of payload.
pub(crate) fn channel(
    capacity: usize,
    max_bytes: usize,
    shared: Arc<Shared>,
) -> (EventSink, Inbox) {
    // Unbounded as a channel; bounded by the I/O thread, which stops reading at `capacity`
    // queued messages and so never blocks on the queue.
    let (tx, rx) = flume::unbounded();
    let backpressure = Arc::new(Backpressure::new(capacity, max_bytes));
    (
        EventSink::new(tx, capacity, max_bytes, backpressure.clone()),
        Inbox::new(rx, backpressure, shared),
    )
}

/// What travels through the flume queue: a batch, its sequence number and how many of its
/// events are messages. A lone event needs no `Vec`.
#[derive(Debug)]
struct Item {
    seq: u64,
    messages: usize,
    /// The payload bytes of its messages.
    bytes: usize,
    events: Batch,
}

#[derive(Debug)]
enum Batch {
    One(Event),
    Many(Vec<Event>),
}

/// The count of queued messages and their bytes, and the pause flag, shared by the two ends.
///
/// Each side writes one of the two and then reads the other (the producer pauses, then looks
/// at the count; the consumer lowers the count, then looks for a pause). A store followed by a
/// load of another location may be reordered, even with `SeqCst` on both: a `SeqCst` fence on
/// each side between them is what makes at least one side see the other's write, so that a
/// pause is never left standing over an empty queue.
#[derive(Debug)]
struct Backpressure {
    queued: AtomicUsize,
    queued_bytes: AtomicUsize,
    paused: AtomicBool,
    /// The count at or below which a consumer lifts a pause: half the capacity, so that a
    /// paused I/O thread is woken once per half queue, not once per event.
    low_water: usize,
    /// The same for bytes: half of `max_bytes`.
    low_water_bytes: usize,
}

impl Backpressure {
    fn new(capacity: usize, max_bytes: usize) -> Self {
        Backpressure {
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            low_water: capacity / 2,
            low_water_bytes: max_bytes / 2,
        }
    }

    /// The producer counts a batch before the consumer can see it, so the counts never go
    /// below zero.
    fn add(&self, messages: usize, bytes: usize) {
        self.queued.fetch_add(messages, Ordering::Relaxed);
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// The consumer took `messages` of `bytes`; true if that lifted a pause (the caller wakes
    /// the I/O thread).
    fn take(&self, messages: usize, bytes: usize) -> bool {
        let left = self.queued.fetch_sub(messages, Ordering::Relaxed) - messages;
        let left_bytes = self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed) - bytes;
        fence(Ordering::SeqCst);
        left <= self.low_water && left_bytes <= self.low_water_bytes && self.lift()
    }

    /// Whether the queue is down to the point where a pause is lifted.
    fn is_low(&self) -> bool {
        self.queued() <= self.low_water && self.queued_bytes() <= self.low_water_bytes
    }

    /// The producer pauses; returns whether the pause still stands after a second look at the
    /// counts (the consumer may have drained the queue meanwhile and seen no pause to lift).
    fn pause(&self) -> bool {
        self.paused.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        !(self.is_low() && self.lift())
    }

    fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Lifts the pause; true if this call lifted it.
    fn lift(&self) -> bool {
        self.paused.load(Ordering::Relaxed) && self.paused.swap(false, Ordering::Relaxed)
    }
}
