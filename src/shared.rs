//! The little state that the handle side and the I/O thread share: a few flags and counters,
//! and the senders' outgoing buffer. (The event queue's own counters live in `queue`.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::deflate::Deflater;
use crate::doorbell::Doorbell;
use crate::outgoing::{COALESCED, Chunk, Outgoing};
use crate::staying_connected::OfflineSends;

/// State shared by the [`Client`](crate::Client), its send handles and the I/O thread.
///
/// Per handle (lives as long as the `Client`, across reconnections): the waker and its flag,
/// `buffered_amount`, `close_requested`, the offline policy, the send queue. Per connection
/// (set by the I/O thread in its one begin step and its one end step,
/// [`begin_connection`](Self::begin_connection) and [`end_connection`](Self::end_connection)):
/// `open`, `closing`, `write_blocked` and the outgoing gate (what the connection accepts).
#[derive(Debug)]
pub(crate) struct Shared {
    /// Wakes the I/O thread out of `Poll::poll`.
    doorbell: Doorbell,
    /// True while the I/O thread is (about to be) asleep in `poll`; a send rings the waker
    /// only then, so a burst of sends costs one wake-up, not one per message. Written by the
    /// I/O thread on every turn of its loop: on a cache line of its own.
    driver_asleep: OwnLine<AtomicBool>,
    /// The senders' side: the outgoing buffer, and the payload bytes ever accepted by `send*`
    /// (written only under that lock). `buffered_amount` is `accepted - written`.
    senders: OwnLine<Senders>,
    /// Payload bytes ever written whole to the socket; only the I/O thread writes it.
    written: OwnLine<AtomicUsize>,
    /// The most `buffered_amount` may reach while a connection is open.
    max_buffered: usize,
    /// Threads in [`wait_buffered_below`](Self::wait_buffered_below), and what wakes them.
    drain_waiters: AtomicUsize,
    drained: Condvar,
    drain_lock: Mutex<()>,
    /// Per connection: the socket pushes back, so a send need not wake the I/O thread (it
    /// is woken when the socket drains).
    write_blocked: AtomicBool,
    /// Set once `close()` was called on any handle: the user wants the end.
    pub(crate) close_requested: AtomicBool,
    /// Per connection: set by the I/O thread once the connection is closing or over.
    pub(crate) closing: AtomicBool,
    /// Per connection: the handshake is done and the connection not yet over.
    open: AtomicBool,
    /// What sends do while no connection is open.
    pub(crate) offline: OfflineSends,
    /// Set when `outgoing` has frames the I/O thread has not taken yet.
    outgoing_ready: OwnLine<AtomicBool>,
    /// Gathering a long burst's sends into larger writes (see [`COALESCED`]).
    gathering: Gathering,
}

/// The flags of a long burst's gathering, which senders, consumers and the I/O thread touch
/// rarely (once per 96 KiB, per wait for an event, per gathering wait).
#[derive(Debug, Default)]
struct Gathering {
    /// Set by the I/O thread while it waits for a burst to fill [`COALESCED`] bytes: the
    /// sender that fills them, or a handle that is about to wait, rings.
    waiting: AtomicBool,
    /// Set by a handle about to wait for an event or for room: what gathers is written at
    /// once, instead of at the end of the gathering wait.
    hurry: AtomicBool,
}

/// What senders write on every send, together.
#[derive(Debug)]
struct Senders {
    /// Frames that senders encoded, for the I/O thread to write.
    outgoing: Mutex<Outgoing>,
    /// Payload bytes ever accepted; stored only with `outgoing` locked.
    accepted: AtomicUsize,
}

/// A value on a cache line (pair) of its own, so that a thread writing it does not take the
/// line from threads that use its neighbours: the senders' lock, the I/O thread's flags and
/// counters. 128 bytes, for processors that fetch lines in pairs.
#[derive(Debug, Default)]
#[repr(align(128))]
struct OwnLine<T>(T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl Shared {
    pub(crate) fn new(doorbell: Doorbell, offline: OfflineSends, max_buffered: usize) -> Self {
        Shared {
            max_buffered,
            drain_waiters: AtomicUsize::new(0),
            drained: Condvar::new(),
            drain_lock: Mutex::new(()),
            write_blocked: AtomicBool::new(false),
            open: AtomicBool::new(false),
            offline,
            doorbell,
            driver_asleep: OwnLine(AtomicBool::new(false)),
            senders: OwnLine(Senders {
                outgoing: Mutex::new(Outgoing::default()),
                accepted: AtomicUsize::new(0),
            }),
            written: OwnLine(AtomicUsize::new(0)),
            close_requested: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            outgoing_ready: OwnLine(AtomicBool::new(false)),
            gathering: Gathering::default(),
        }
    }

    /// A connection opened (the handshake is done): sends go straight out, compressed with
    /// `deflate` (the compressor and the threshold from which messages are compressed) when
    /// permessage-deflate was agreed. Everything per connection is set here.
    pub(crate) fn begin_connection(&self, deflate: Option<(Deflater, usize)>) {
        self.outgoing().open_connection(deflate);
        self.write_blocked.store(false, Ordering::SeqCst);
        self.closing.store(false, Ordering::SeqCst);
        self.open.store(true, Ordering::SeqCst);
    }

    /// A connection (or an attempt) is over. `unsent`, the frames it did not write whole
    /// (`payload` bytes of messages), goes back to the front of the send queue. When another
    /// attempt follows, sends are taken again (by the offline policy) for it; otherwise no
    /// more sends are taken, and what waits is counted in `buffered_amount` but never sent.
    /// Everything per connection is reset here.
    pub(crate) fn end_connection(
        &self,
        unsent: VecDeque<Chunk>,
        payload: usize,
        another_follows: bool,
    ) {
        self.open.store(false, Ordering::SeqCst);
        self.closing.store(!another_follows, Ordering::SeqCst);
        self.write_blocked.store(false, Ordering::SeqCst);
        self.outgoing()
            .end_connection(unsent, payload, another_follows);
        if !another_follows {
            // Nothing drains any more: waiters learn it now.
            self.notify_drained();
        }
    }

    /// The most `buffered_amount` may reach while a connection is open.
    pub(crate) fn max_buffered(&self) -> usize {
        self.max_buffered
    }

    /// Bytes accepted by the send calls and not yet written.
    pub(crate) fn buffered_amount(&self) -> usize {
        // `written` first: whatever it counts was accepted before (the I/O thread took it
        // from the queue under the senders' lock), so the difference never goes below zero.
        let written = self.written.load(Ordering::SeqCst);
        // Saturating all the same: a miscount must never panic or wrap to a huge number.
        self.senders
            .accepted
            .load(Ordering::SeqCst)
            .saturating_sub(written)
    }

    /// A send of `len` bytes, with `outgoing` (the senders' lock) held: refused with the bytes
    /// already waiting if they and `len` would pass `limit`, otherwise counted. Under the
    /// lock, concurrent senders cannot both pass the check; and the count is a plain store,
    /// not a locked read-modify-write, on the senders' own cache line.
    pub(crate) fn reserve(
        &self,
        _outgoing: &MutexGuard<'_, Outgoing>,
        len: usize,
        limit: usize,
    ) -> Result<(), usize> {
        let accepted = self.senders.accepted.load(Ordering::Relaxed);
        let waiting = accepted.saturating_sub(self.written.load(Ordering::Acquire));
        if waiting.saturating_add(len) > limit {
            return Err(waiting);
        }
        self.senders
            .accepted
            .store(accepted + len, Ordering::Relaxed);
        Ok(())
    }

    /// The I/O thread wrote `len` bytes of messages whole: they no longer count, and a
    /// thread waiting for room is told.
    pub(crate) fn written(&self, len: usize) {
        if len == 0 {
            return;
        }
        // Only the I/O thread writes it: a store, not a read-modify-write.
        let written = self.written.load(Ordering::Relaxed);
        self.written.store(written + len, Ordering::SeqCst);
        self.notify_drained();
    }

    fn notify_drained(&self) {
        // With the fence in `wait_buffered_below`, either the waiter sees the new amount, or
        // this sees the waiter.
        fence(Ordering::SeqCst);
        if self.drain_waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.drain_lock();
            self.drained.notify_all();
        }
    }

    fn drain_lock(&self) -> MutexGuard<'_, ()> {
        self.drain_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until `buffered_amount` is below `bytes`, or the connection is over for good
    /// (`Err(())`), or `deadline` passes (`Ok(false)`); `Ok(true)` when below.
    pub(crate) fn wait_buffered_below(&self, bytes: usize, deadline: Instant) -> Result<bool, ()> {
        self.end_gathering();
        self.drain_waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let mut guard = self.drain_lock();
        let outcome = loop {
            if self.buffered_amount() < bytes {
                break Ok(true);
            }
            if self.is_over() {
                break Err(());
            }
            let now = Instant::now();
            if now >= deadline {
                break Ok(false);
            }
            guard = match self.drained.wait_timeout(guard, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        };
        drop(guard);
        self.drain_waiters.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    /// Whether the last connection is over or closing for good: nothing more is written.
    fn is_over(&self) -> bool {
        self.closing.load(Ordering::SeqCst) && !self.open.load(Ordering::SeqCst)
    }

    /// The socket pushes back (`true`) or takes bytes again (`false`).
    pub(crate) fn set_write_blocked(&self, blocked: bool) {
        if self.write_blocked.load(Ordering::Relaxed) != blocked {
            self.write_blocked.store(blocked, Ordering::SeqCst);
        }
    }

    /// Whether a connection is open now.
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether sends are refused: the user closed, or the connection is closing or over.
    pub(crate) fn is_closing(&self) -> bool {
        self.close_requested.load(Ordering::Relaxed) || self.closing.load(Ordering::Relaxed)
    }

    /// Wakes the I/O thread if it sleeps. Call after queueing work for it.
    pub(crate) fn wake_driver(&self) {
        // The fence orders the caller's queueing before the look at the flag; with the fence
        // in `going_to_sleep` either this sees the thread asleep, or the thread sees the work.
        // The load keeps a burst of sends from writing the flag's cache line once each; only
        // the one that finds the thread asleep pays for the swap and the system call.
        fence(Ordering::SeqCst);
        if self.driver_asleep.load(Ordering::SeqCst)
            && self.driver_asleep.swap(false, Ordering::SeqCst)
        {
            self.wake_driver_always();
        }
    }

    /// Wakes the I/O thread whether it sleeps or not, for a helper thread (the resolver) whose
    /// news the I/O thread does not look for before sleeping. A wake-up while it is awake
    /// only makes its next `poll` return at once.
    pub(crate) fn wake_driver_always(&self) {
        self.doorbell.ring();
    }

    /// The senders' frames. Held for one append or one take, never across a wait.
    pub(crate) fn outgoing(&self) -> MutexGuard<'_, Outgoing> {
        // A panic while it was held cannot leave it half-updated: appends and takes are whole.
        self.senders
            .outgoing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A sender appended frames: have the I/O thread take them. (With the fences, either the
    /// I/O thread sees the flag before it sleeps, or this wakes it.) While the socket pushes
    /// back, the I/O thread is not woken for a write that would fail: the socket's readiness
    /// wakes it once it drains, and it looks at the flag then.
    ///
    /// `filled`: this send brought the queue to [`COALESCED`] bytes. If the I/O thread waits
    /// for that (a long burst gathering for a larger write), this wakes it.
    pub(crate) fn note_outgoing(&self, filled: bool) {
        // The outgoing lock orders this look after the I/O thread's store in `coalesce`, or
        // `coalesce` sees the queue filled.
        if filled
            && self.gathering.waiting.load(Ordering::SeqCst)
            && self.gathering.waiting.swap(false, Ordering::SeqCst)
        {
            self.wake_driver();
        }
        // Already set: whoever set it made sure the I/O thread takes again, and it takes what
        // was appended before (the outgoing lock orders the append before this look, and the
        // I/O thread clears the flag before it takes under that lock). A burst of sends pays
        // for the store and the fences once.
        if self.outgoing_ready.load(Ordering::Acquire) {
            return;
        }
        self.outgoing_ready.store(true, Ordering::SeqCst);
        if !self.write_blocked.load(Ordering::SeqCst) {
            self.wake_driver();
        }
    }

    /// The I/O thread left messages in the send queue (it takes a window at a time).
    pub(crate) fn more_outgoing(&self) {
        self.outgoing_ready.store(true, Ordering::SeqCst);
    }

    /// Whether senders appended frames since the I/O thread last took them.
    pub(crate) fn has_outgoing(&self) -> bool {
        self.outgoing_ready.load(Ordering::SeqCst)
    }

    /// Clears the flag; the I/O thread takes the frames right after.
    pub(crate) fn clear_outgoing(&self) {
        self.outgoing_ready.store(false, Ordering::SeqCst);
    }

    /// Called by the I/O thread just before `poll`. After this it must look once more for work
    /// (commands, a lifted pause) and skip the sleep if there is some: a handle that queued
    /// work before this store did not ring the waker.
    pub(crate) fn going_to_sleep(&self) {
        self.driver_asleep.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Called by the I/O thread when it is awake again (or decided not to sleep).
    pub(crate) fn awake(&self) {
        self.driver_asleep.store(false, Ordering::SeqCst);
        if self.gathering.waiting.load(Ordering::Relaxed) {
            self.gathering.waiting.store(false, Ordering::Relaxed);
        }
    }

    /// A handle is about to wait (for an event, or for room in the send queue): a burst that
    /// gathers for a larger write is written now instead of at the end of its wait, because
    /// whoever sent it may be waiting for its answer. With the fences: either the I/O thread
    /// sees the hurry before it waits, or this sees it waiting and rings.
    pub(crate) fn end_gathering(&self) {
        let gathering = &self.gathering;
        if !gathering.hurry.load(Ordering::Relaxed) {
            gathering.hurry.store(true, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if gathering.waiting.load(Ordering::SeqCst)
            && gathering.waiting.swap(false, Ordering::SeqCst)
        {
            self.wake_driver();
        }
    }

    /// Called by the I/O thread after [`going_to_sleep`](Self::going_to_sleep), when it
    /// would rather wait for a burst of sends to fill a larger write: the sender that brings
    /// the queue to [`COALESCED`] bytes rings, and so does a handle about to wait. Returns
    /// whether it must not wait: the queue holds that much already, or a handle asked for
    /// what gathers since the last gathering.
    pub(crate) fn coalesce(&self) -> bool {
        self.gathering.waiting.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.gathering.hurry.swap(false, Ordering::SeqCst) {
            return true;
        }
        self.outgoing().queued_payload() >= COALESCED
    }
}
