//! The I/O thread's end of the event queue: events go out in batches, and the backpressure
//! rule holds: stop reading when the queue is full, never block, never drop.

use std::sync::Arc;

use bytes::BytesMut;

use super::{Backpressure, Batch, Item, Packed, Received, Slot};
use crate::error::Error;
use crate::event::{CloseEvent, Event, OpenEvent};

/// The most events in one batch: large enough to amortise the queue and the consumer's
/// wake-up (a parked thread costs microseconds to wake on a VM: with 256 the inbound bench
/// spent a fifth of its CPU on wake-ups), small enough that the consumer starts on a long
/// burst while the I/O thread still parses it (1024 tiny messages take it well under 100 µs).
/// A batch is also at most a quarter of the queue's capacity, so that a full queue does not
/// mean one batch.
const MAX_BATCH: usize = 1024;

/// A batch also ends once its messages hold this many bytes, so that a burst of large
/// messages is handed over as it comes, not a thousand at a time.
const MAX_BATCH_BYTES: usize = 256 << 10;

/// The blocks that small payloads are copied into, one after another: the first of a burst
/// is this small, and each next one twice the size of the one before, up to [`MAX_BLOCK`].
/// A small message that the user keeps keeps its block alive (the `Message` docs say so),
/// so light traffic keeps to small blocks.
const MIN_BLOCK: usize = 1 << 10;

/// The largest block: one allocation, freed on the consumer's thread, per 16 KiB of small
/// messages (with 4 KiB blocks, the two threads' contention for the allocator's lock took
/// about a tenth of the inbound bench's CPU).
const MAX_BLOCK: usize = 16 << 10;

/// A batch of at most this many events, sent before the I/O thread sleeps, means light
/// traffic: the block is let go (an idle connection holds none), and the next starts small.
const LIGHT_BATCH: usize = 16;

/// The sending end of the event queue, owned by the I/O thread for the handle's whole life.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: flume::Sender<Item>,
    /// The current batch, not yet sent: a slot per event, the finished blocks of its small
    /// messages and its other events.
    slots: Vec<Slot>,
    blocks: Vec<bytes::Bytes>,
    pending: Vec<Event>,
    /// The block being filled: its content belongs to the current batch, the rest of its
    /// capacity to the next ones.
    block: BytesMut,
    /// The capacity of the next block.
    block_size: usize,
    pending_messages: usize,
    pending_bytes: usize,
    next_seq: u64,
    capacity: usize,
    max_bytes: usize,
    max_batch: usize,
    /// A lower bound on the free message slots; refreshed from the shared count only when it
    /// runs out, so that reading does not touch the consumer's cache line per message.
    room: usize,
    /// The same for bytes.
    room_bytes: usize,
    paused: bool,
    /// Whether the current connection's `Close` has been queued.
    closed: bool,
    backpressure: Arc<Backpressure>,
}

impl EventSink {
    pub(super) fn new(
        tx: flume::Sender<Item>,
        capacity: usize,
        max_bytes: usize,
        backpressure: Arc<Backpressure>,
    ) -> Self {
        EventSink {
            tx,
            slots: Vec::new(),
            blocks: Vec::new(),
            pending: Vec::new(),
            block: BytesMut::new(),
            block_size: MIN_BLOCK,
            pending_messages: 0,
            pending_bytes: 0,
            next_seq: 0,
            capacity,
            max_bytes,
            max_batch: (capacity / 4).clamp(1, MAX_BATCH),
            room: capacity,
            room_bytes: max_bytes,
            paused: false,
            closed: false,
            backpressure,
        }
    }

    /// A connection attempt starts: its `Close` is yet to come.
    pub(crate) fn begin_connection(&mut self) {
        self.closed = false;
    }

    /// The connection opened: queued at once.
    pub(crate) fn open(&mut self, open: OpenEvent) {
        self.push_event(Event::Open(open));
        self.flush();
    }

    /// Adds a message to the batch. When the queue is full (in messages or in bytes), reading
    /// pauses until [`can_read`](Self::can_read) says otherwise.
    #[inline]
    pub(crate) fn message(&mut self, message: Received<'_>) {
        let len = message.len();
        match message {
            Received::Small { text, payload } => self.push_small(text, payload),
            Received::Whole(message) => self.push_event(Event::Message(message)),
        }
        self.pending_bytes += len;
        self.pending_messages += 1;
        self.room -= 1;
        self.room_bytes = self.room_bytes.saturating_sub(len);
        if self.slots.len() >= self.max_batch || self.pending_bytes >= MAX_BATCH_BYTES {
            self.send_batch();
        }
        if self.room == 0 || self.room_bytes == 0 {
            self.send_batch();
            self.refresh_room();
        }
    }

    /// Copies a small message's payload into the block (a new one when it is full) and notes
    /// where it ends.
    fn push_small(&mut self, text: bool, payload: &[u8]) {
        if self.block.capacity() - self.block.len() < payload.len() {
            if !self.block.is_empty() {
                self.blocks.push(self.block.split().freeze());
                self.slots.push(Slot::NextBlock);
            }
            self.block = BytesMut::with_capacity(self.block_size.max(payload.len()));
            self.block_size = (self.block_size * 2).min(MAX_BLOCK);
        }
        self.block.extend_from_slice(payload);
        let end = u32::try_from(self.block.len()).expect("a block holds a few KiB");
        self.slots.push(if text {
            Slot::Text { end }
        } else {
            Slot::Binary { end }
        });
    }

    fn push_event(&mut self, event: Event) {
        // With room known to be there, the event is written straight into the batch: through
        // a stack copy (the push's growth path) it cost a store-forwarding stall per message.
        if self.pending.len() < self.pending.capacity() {
            self.pending.push(event);
        } else {
            self.push_growing(event);
        }
        self.slots.push(Slot::Event);
    }

    /// Adds an event to a batch that has no room left.
    #[cold]
    #[inline(never)]
    fn push_growing(&mut self, event: Event) {
        self.pending.push(event);
    }

    /// Sends the pending batch. Called before the I/O thread sleeps, so nothing waits in it.
    /// A light batch lets the block go: see [`LIGHT_BATCH`].
    pub(crate) fn flush(&mut self) {
        if self.slots.len() <= LIGHT_BATCH {
            self.send_batch();
            self.block = BytesMut::new();
            self.block_size = MIN_BLOCK;
        } else {
            self.send_batch();
        }
    }

    /// Sends the pending batch.
    fn send_batch(&mut self) {
        let events = match self.slots.as_slice() {
            [] => return,
            [Slot::Event] => {
                self.slots.clear();
                Batch::One(self.pending.pop().expect("one pending event"))
            }
            slots => {
                let capacity = slots.len().min(self.max_batch);
                if !self.block.is_empty() {
                    self.blocks.push(self.block.split().freeze());
                }
                Batch::Many(Packed {
                    blocks: std::mem::take(&mut self.blocks),
                    slots: std::mem::replace(&mut self.slots, Vec::with_capacity(capacity)),
                    events: std::mem::take(&mut self.pending),
                })
            }
        };
        let messages = std::mem::take(&mut self.pending_messages);
        let bytes = std::mem::take(&mut self.pending_bytes);
        self.backpressure.add(messages, bytes);
        let seq = self.next_seq;
        self.next_seq += 1;
        // A gone receiver means nobody listens any more: the events have nowhere to go.
        let _ = self.tx.send(Item {
            seq,
            messages,
            bytes,
            events,
        });
    }

    /// Whether the I/O thread may read: false while paused and the consumer has not made room.
    pub(crate) fn can_read(&mut self) -> bool {
        if self.paused && (!self.backpressure.is_paused() || self.tx.is_disconnected()) {
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
            self.room_bytes = self.max_bytes;
            return;
        }
        self.measure_room();
        if self.room > 0 && self.room_bytes > 0 {
            return;
        }
        self.paused = self.backpressure.pause();
        if self.paused {
            log::trace!("event queue full: reading paused");
        } else {
            self.measure_room();
            // The consumer took the queue down to half meanwhile: there is room.
            self.room = self.room.max(1);
            self.room_bytes = self.room_bytes.max(1);
        }
    }

    fn measure_room(&mut self) {
        let queued = self.backpressure.queued() + self.pending_messages;
        let queued_bytes = self.backpressure.queued_bytes() + self.pending_bytes;
        self.room = self.capacity.saturating_sub(queued);
        self.room_bytes = self.max_bytes.saturating_sub(queued_bytes);
    }

    /// Queues what is pending, then the connection's terminal events: the error, if any, then
    /// its one `Close`.
    pub(crate) fn close(&mut self, error: Option<Error>, close: CloseEvent) {
        log::debug!(
            "connection closed: code {} clean {}",
            close.code,
            close.was_clean
        );
        if let Some(error) = error {
            self.push_event(Event::Error(error));
        }
        self.push_event(Event::Close(close));
        self.closed = true;
        self.flush();
    }

    /// The I/O thread panicked: ends the connection with `error` unless its `Close` went out
    /// already, so that the stream still ends by the contract.
    pub(crate) fn close_after_panic(&mut self, error: Error) {
        if !self.closed {
            self.close(Some(error), CloseEvent::abnormal());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::event::Message;

    fn sink(capacity: usize) -> (EventSink, flume::Receiver<Item>) {
        let (tx, rx) = flume::unbounded();
        let backpressure = Arc::new(Backpressure::new(capacity, usize::MAX));
        (EventSink::new(tx, capacity, usize::MAX, backpressure), rx)
    }

    fn binary(bytes: usize) -> Received<'static> {
        Received::Whole(Message::Binary(Bytes::from(vec![0; bytes])))
    }

    #[test]
    fn a_batch_ends_at_a_quarter_of_the_capacity_and_at_most_1024_messages() {
        for (capacity, batch) in [(16, 4), (4096, 1024), (100_000, 1024)] {
            let (mut sink, rx) = sink(capacity);
            for _ in 1..batch {
                sink.message(binary(1));
            }
            assert!(rx.is_empty(), "capacity {capacity}: sent early");
            sink.message(binary(1));
            let item = rx.try_recv().expect("a batch");
            let Batch::Many(packed) = &item.events else {
                panic!("capacity {capacity}: a batch of one")
            };
            assert_eq!(
                (item.messages, packed.slots.len()),
                (batch, batch),
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn blocks_grow_during_a_burst_and_an_idle_connection_keeps_none() {
        let (mut sink, rx) = sink(100_000);
        let small = |sink: &mut EventSink| {
            sink.message(Received::Small {
                text: false,
                payload: &[1; 100],
            });
        };
        small(&mut sink);
        assert_eq!((sink.block.capacity(), sink.block.len()), (MIN_BLOCK, 100));
        for _ in 0..2000 {
            small(&mut sink);
        }
        let Batch::Many(packed) = rx.try_recv().expect("a full batch").events else {
            panic!("a batch of one")
        };
        let sizes: Vec<usize> = packed.blocks.iter().map(bytes::Bytes::len).collect();
        assert_eq!(&sizes[..5], [1000, 2000, 4000, 8100, 16_300]);
        assert!(sizes[5..sizes.len() - 1].iter().all(|&size| size == 16_300));
        // The burst's last batch keeps the block; a light one lets it go.
        sink.flush();
        assert!(sink.block.capacity() > 0);
        small(&mut sink);
        sink.flush();
        assert_eq!(sink.block.capacity(), 0);
        small(&mut sink);
        assert_eq!((sink.block.capacity(), sink.block.len()), (MIN_BLOCK, 100));
    }

    #[test]
    fn a_batch_ends_at_256_kib_of_payload() {
        let (mut sink, rx) = sink(4096);
        sink.message(binary(100 << 10));
        sink.message(binary(100 << 10));
        assert!(rx.is_empty());
        sink.message(binary(100 << 10));
        assert_eq!(rx.try_recv().expect("a batch").messages, 3);
    }
}
