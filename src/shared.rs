//! The little state that the handle side and the I/O thread share: a few flags and counters,
//! and the senders' outgoing buffer. (The event queue's own counters live in `queue`.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Mutex, MutexGuard};

use crate::outgoing::Outgoing;
use crate::staying_connected::OfflineSends;

/// State shared by the [`Client`](crate::Client), its send handles and the I/O thread.
///
/// Per handle (lives as long as the `Client`, across reconnections): the waker and its flag,
/// `buffered_amount`, `close_requested`, the offline policy, the outgoing buffer itself. Per
/// connection (set by the I/O thread as each connection opens and ends, see
/// [`connection_opened`](Self::connection_opened) and
/// [`connection_ended`](Self::connection_ended)): `open`, `closing` and the outgoing buffer's
/// `closed` seal.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Wakes the I/O thread out of `Poll::poll`.
    waker: mio::Waker,
    /// True while the I/O thread is (about to be) asleep in `poll`; a send rings the waker
    /// only then, so a burst of sends costs one wake-up, not one per message.
    driver_asleep: AtomicBool,
    /// Bytes accepted by `send*` and not yet written to the socket.
    pub(crate) buffered_amount: AtomicUsize,
    /// Set once `close()` was called on any handle: the user wants the end.
    pub(crate) close_requested: AtomicBool,
    /// Per connection: set by the I/O thread once the connection is closing or over.
    pub(crate) closing: AtomicBool,
    /// Per connection: the handshake is done and the connection not yet over.
    open: AtomicBool,
    /// What sends do while no connection is open.
    pub(crate) offline: OfflineSends,
    /// Frames that senders encoded, for the I/O thread to write.
    outgoing: Mutex<Outgoing>,
    /// Set when `outgoing` has frames the I/O thread has not taken yet.
    outgoing_ready: AtomicBool,
}

impl Shared {
    pub(crate) fn new(waker: mio::Waker, offline: OfflineSends) -> Self {
        Shared {
            open: AtomicBool::new(false),
            offline,
            waker,
            driver_asleep: AtomicBool::new(false),
            buffered_amount: AtomicUsize::new(0),
            close_requested: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            outgoing: Mutex::new(Outgoing::default()),
            outgoing_ready: AtomicBool::new(false),
        }
    }

    /// The handshake is done: sends go straight out.
    pub(crate) fn connection_opened(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// The connection is over. When another attempt follows, sends are taken again (by the
    /// offline policy) for it; otherwise no more sends are taken.
    pub(crate) fn connection_ended(&self, another_follows: bool) {
        self.open.store(false, Ordering::SeqCst);
        self.closing.store(!another_follows, Ordering::SeqCst);
        self.outgoing().closed = !another_follows;
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
        if let Err(err) = self.waker.wake() {
            log::warn!("could not wake the I/O thread: {err}");
        }
    }

    /// The senders' frames. Held for one append or one take, never across a wait.
    pub(crate) fn outgoing(&self) -> MutexGuard<'_, Outgoing> {
        // A panic while it was held cannot leave it half-updated: appends and takes are whole.
        self.outgoing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A sender appended frames: have the I/O thread take them. (With the fences, either the
    /// I/O thread sees the flag before it sleeps, or this wakes it.)
    pub(crate) fn note_outgoing(&self) {
        self.outgoing_ready.store(true, Ordering::SeqCst);
        self.wake_driver();
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
    }
}
