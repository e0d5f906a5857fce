//! The I/O thread's end of the event queue, with the backpressure rule: stop reading when the
//! queue is full, never block, never drop.

use std::sync::Arc;

use crate::error::Error;
use crate::event::{CloseEvent, Event, Message, OpenEvent};
use crate::shared::Shared;

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

/// Room for the events that never wait for space: `Open`, `Error` and `Close`. Messages use
/// only the configured capacity, so these always fit and the I/O thread never blocks.
pub(crate) const RESERVED_SLOTS: usize = 3;

/// The sending end of the event queue, owned by the I/O thread.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: flume::Sender<Event>,
    capacity: usize,
    low_water: usize,
    /// A lower bound on the free message slots; refreshed from the queue only when it runs
    /// out, so that most pushes take the queue's lock once, not twice.
    room: usize,
    paused: bool,
    shared: Arc<Shared>,
}

impl EventSink {
    pub(crate) fn new(tx: flume::Sender<Event>, capacity: usize, shared: Arc<Shared>) -> Self {
        EventSink {
            tx,
            capacity,
            low_water: low_water(capacity),
            room: capacity,
            paused: false,
            shared,
        }
    }

    pub(crate) fn open(&mut self, open: OpenEvent) {
        let _ = self.tx.try_send(Event::Open(open));
    }

    /// Queues a message. Returns `false` when the queue is now full: stop reading until
    /// [`can_read`](Self::can_read) says otherwise.
    pub(crate) fn message(&mut self, message: Message) -> bool {
        // A full queue cannot happen here (we pause first); a gone receiver means nobody
        // listens any more, and the message has nowhere to go.
        let _ = self.tx.try_send(Event::Message(message));
        self.room -= 1;
        if self.room == 0 {
            self.refresh_room();
        }
        !self.paused
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
        self.room = self.capacity.saturating_sub(self.tx.len());
        if self.room > 0 {
            return;
        }
        self.paused = true;
        self.shared.pause_reading();
        // The consumer may have drained the queue between our look and the store above; it
        // then saw no pause to lift. Look again, now that the pause is visible.
        if self.tx.len() <= self.low_water && self.shared.resume_reading() {
            self.paused = false;
            self.room = self.capacity.saturating_sub(self.tx.len());
        }
        if self.paused {
            log::trace!("event queue full: reading paused");
        }
    }

    /// Queues the terminal events: the error, if any, then the one close event. Ends the queue.
    pub(crate) fn finish(self, ending: Ending) {
        log::debug!(
            "connection closed: code {} clean {}",
            ending.close.code,
            ending.close.was_clean
        );
        if let Some(error) = ending.error {
            let _ = self.tx.try_send(Event::Error(error));
        }
        let _ = self.tx.try_send(Event::Close(ending.close));
    }
}

/// The queue length at which a consumer lifts a pause: half the capacity, so that a paused
/// I/O thread is woken once per half queue, not once per event.
pub(crate) fn low_water(capacity: usize) -> usize {
    capacity / 2
}
