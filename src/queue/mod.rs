//! The event queue between the I/O thread and the handle, both ends: the I/O thread's
//! [`EventSink`] sends events in batches (everything one socket read produced), the handle's
//! [`Inbox`] hands them out one at a time. One queue operation, one update of the shared
//! message count and at most one consumer wake-up per batch, not per message.
//!
//! Small messages travel packed: the sink copies their payloads out of the read buffer into
//! 4 KiB blocks, one after another, and notes where each ends; the consumer's thread makes
//! each message's `Bytes` as it hands it out. So the block's refcount is counted up and down
//! on the consumer's thread only (counted up on the I/O thread, it bounced between the two
//! cores for every message: 15% of the inbound bench's samples), and a batch holds an 8-byte
//! slot per small message instead of a 48-byte event.
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

use bytes::Bytes;

pub(crate) use inbox::{Inbox, NoEvent};
pub(crate) use sink::EventSink;

use crate::event::{Event, Message};
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

/// A message as the I/O thread hands it to the queue.
#[derive(Debug)]
pub(crate) enum Received<'a> {
    /// A message of one small frame, still in the read buffer (its text, if text, checked):
    /// the queue copies it.
    Small {
        text: bool,
        payload: &'a [u8],
    },
    Whole(Message),
}

impl Received<'_> {
    /// Its payload's length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Received::Small { payload, .. } => payload.len(),
            Received::Whole(message) => message.len(),
        }
    }
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
    Many(Packed),
}

/// The events of a batch, in order: one [`Slot`] each, small messages packed into blocks.
#[derive(Debug, Default)]
struct Packed {
    /// The payloads of the small messages, one after another, block after block.
    blocks: Vec<Bytes>,
    slots: Vec<Slot>,
    /// The other events, in order.
    events: Vec<Event>,
}

/// One event of a [`Packed`] batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A small message: its payload ends at `end` in the current block, where the one before
    /// it ended (or at the block's start).
    Binary {
        end: u32,
    },
    Text {
        end: u32,
    },
    /// The next of the other events.
    Event,
    /// The small messages after this one are in the next block.
    NextBlock,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CloseEvent;
    use crate::staying_connected::OfflineSends;

    fn queue(capacity: usize) -> (EventSink, Inbox, mio::Poll) {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let doorbell = crate::doorbell::Doorbell::Own(waker);
        let shared = Arc::new(Shared::new(doorbell, OfflineSends::Fail, 1 << 20));
        let (sink, inbox) = channel(capacity, usize::MAX, shared);
        (sink, inbox, poll)
    }

    /// The i-th message of the test: small text, small binary (over many blocks), empty,
    /// or a whole one.
    fn nth(i: usize) -> (Message, bool) {
        let small = i % 7 != 3;
        let payload = vec![b'a' + (i % 26) as u8; (i * 37) % 500];
        let message = if i % 2 == 0 {
            Message::from(String::from_utf8(payload).unwrap())
        } else {
            Message::Binary(payload.into())
        };
        (message, small)
    }

    fn send(sink: &mut EventSink, message: &Message, small: bool) {
        if small {
            sink.message(Received::Small {
                text: message.is_text(),
                payload: message.as_bytes(),
            });
        } else {
            sink.message(Received::Whole(message.clone()));
        }
    }

    #[test]
    fn packed_batches_hand_out_every_event_whole_and_in_order() {
        let (mut sink, inbox, _poll) = queue(4096);
        let count = 3000;
        let mut flushed = 0;
        let mut taken = 0;
        for i in 0..count {
            let (message, small) = nth(i);
            send(&mut sink, &message, small);
            if i % 100 == 99 {
                // Like a drained socket: a batch ends while its block has room left.
                sink.flush();
                flushed = i + 1;
            }
            // The consumer keeps up, half way: blocks are shared by batches on both sides.
            while taken < flushed && taken < i / 2 {
                let Ok(Event::Message(got)) = inbox.try_recv() else {
                    panic!("message {taken} missing")
                };
                assert_eq!(got, nth(taken).0, "message {taken}");
                taken += 1;
            }
        }
        sink.close(None, CloseEvent::abnormal());
        for i in taken..count {
            match inbox.try_recv() {
                Ok(Event::Message(got)) => assert_eq!(got, nth(i).0, "message {i}"),
                other => panic!("message {i}: {other:?}"),
            }
        }
        assert!(matches!(inbox.try_recv(), Ok(Event::Close(_))));
        assert_eq!(inbox.try_recv().unwrap_err(), NoEvent::Empty);
    }

    #[test]
    fn events_between_small_messages_keep_their_place() {
        let (mut sink, inbox, _poll) = queue(4096);
        sink.message(Received::Small {
            text: true,
            payload: b"first",
        });
        sink.message(Received::Whole(Message::Binary(vec![7; 600].into())));
        sink.message(Received::Small {
            text: false,
            payload: b"",
        });
        sink.close(
            Some(crate::error::Error::Protocol("test".into())),
            CloseEvent::abnormal(),
        );
        let mut got = Vec::new();
        while let Ok(event) = inbox.try_recv() {
            got.push(event);
        }
        assert!(matches!(&got[0], Event::Message(m) if m.as_text() == Some("first")));
        assert!(matches!(&got[1], Event::Message(m) if m.len() == 600));
        assert!(matches!(&got[2], Event::Message(m) if m.as_bytes().is_empty() && !m.is_text()));
        assert!(matches!(&got[3], Event::Error(_)));
        assert!(matches!(&got[4], Event::Close(_)));
        assert_eq!(got.len(), 5);
    }
}
