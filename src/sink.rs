//! The I/O thread's end of the event queue: events go out in batches, and the backpressure
//! rule holds: stop reading when the queue is full, never block, never drop.

use std::sync::Arc;

use crate::error::Error;
use crate::event::{CloseEvent, Event, Message, OpenEvent};
use crate::inbox::{Batch, Item};
use crate::shared::Shared;

/// The most events in one batch: large enough to amortise the queue, small enough that the
/// consumer starts on a long burst while the I/O thread still parses it. A batch is also at
/// most a quarter of the queue's capacity, so that a full queue does not mean one batch.
const MAX_BATCH: usize = 256;

/// How the connection ended: the optional error and the one close event.
#[derive(Debug)]
pub(crate) struct Ending {
    pub(crate) error: Option<Error>,
    pub(crate) close: CloseEvent,
}

impl Ending {
    pub(crate) fn failed(error: Error) -> Self {
        Ending {
            error: Some(error),
            close: CloseEvent::abnormal(),
        }
    }

    pub(crate) fn clean(code: u16, reason: String) -> Self {
        Ending {
            error: None,
            close: CloseEvent {
                code,
                reason,
                was_clean: true,
            },
        }
    }
}

/// The sending end of the event queue, owned by the I/O thread.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: flume::Sender<Item>,
    /// Events not yet sent: the current batch.
    pending: Vec<Event>,
    pending_messages: usize,
    next_seq: u64,
    capacity: usize,
    max_batch: usize,
    low_water: usize,
    /// A lower bound on the free message slots; refreshed from the shared count only when it
    /// runs out, so that reading does not touch the consumer's cache line per message.
    room: usize,
    paused: bool,
    shared: Arc<Shared>,
}

impl EventSink {
    pub(crate) fn new(tx: flume::Sender<Item>, capacity: usize, shared: Arc<Shared>) -> Self {
        EventSink {
            tx,
            pending: Vec::new(),
            pending_messages: 0,
            next_seq: 0,
            capacity,
            max_batch: (capacity / 4).clamp(1, MAX_BATCH),
            low_water: low_water(capacity),
            room: capacity,
            paused: false,
            shared,
        }
    }

    pub(crate) fn open(&mut self, open: OpenEvent) {
        self.pending.push(Event::Open(open));
        self.flush();
    }

    /// Adds a message to the batch. When the queue is full, reading pauses until
    /// [`can_read`](Self::can_read) says otherwise.
    pub(crate) fn message(&mut self, message: Message) {
        self.pending.push(Event::Message(message));
        self.pending_messages += 1;
        self.room -= 1;
        if self.pending.len() >= self.max_batch {
            self.flush();
        }
        if self.room == 0 {
            self.flush();
            self.refresh_room();
        }
    }

    /// Sends the pending batch. Called before the I/O thread sleeps, so nothing waits in it.
    pub(crate) fn flush(&mut self) {
        let events = match self.pending.len() {
            0 => return,
            1 => Batch::One(self.pending.pop().expect("one pending event")),
            n => Batch::Many(std::mem::replace(
                &mut self.pending,
                Vec::with_capacity(n.min(self.max_batch)),
            )),
        };
        let messages = std::mem::take(&mut self.pending_messages);
        // Counted before the consumer can see them, so its count never goes below zero.
        self.shared.queued_messages.add(messages);
        let seq = self.next_seq;
        self.next_seq += 1;
        // A gone receiver means nobody listens any more: the events have nowhere to go.
        let _ = self.tx.send(Item {
            seq,
            messages,
            events,
        });
    }

    /// Whether the I/O thread may read: false while paused and the consumer has not made room.
    pub(crate) fn can_read(&mut self) -> bool {
        if self.paused && (!self.shared.is_reading_paused() || self.tx.is_disconnected()) {
            self.paused = false;
            self.refresh_room();
        }
        !self.paused
    }

    /// Whether a pause was lifted since the I/O thread last looked: reading is work again.
    pub(crate) fn resumed(&mut self) -> bool {
        self.paused && self.can_read()
    }

    fn refresh_room(&mut self) {
        if self.tx.is_disconnected() {
            // Nobody reads: never pause, the events are dropped with the queue.
            self.room = self.capacity;
            return;
        }
        let queued = self.shared.queued_messages.get() + self.pending_messages;
        self.room = self.capacity.saturating_sub(queued);
        if self.room > 0 {
            return;
        }
        self.paused = true;
        self.shared.pause_reading();
        // The consumer may have drained the queue between our look and the store above; it
        // then saw no pause to lift. Look again, now that the pause is visible.
        let queued = self.shared.queued_messages.get();
        if queued <= self.low_water && self.shared.resume_reading() {
            self.paused = false;
            self.room = self.capacity - queued;
        }
        if self.paused {
            log::trace!("event queue full: reading paused");
        }
    }

    /// Sends what is pending, then the terminal events: the error, if any, then the one close
    /// event. Ends the queue.
    pub(crate) fn finish(mut self, ending: Ending) {
        log::debug!(
            "connection closed: code {} clean {}",
            ending.close.code,
            ending.close.was_clean
        );
        if let Some(error) = ending.error {
            self.pending.push(Event::Error(error));
        }
        self.pending.push(Event::Close(ending.close));
        self.flush();
    }
}

/// The number of queued messages at which a consumer lifts a pause: half the capacity, so that
/// a paused I/O thread is woken once per half queue, not once per event.
pub(crate) fn low_water(capacity: usize) -> usize {
    capacity / 2
}
