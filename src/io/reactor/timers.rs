//! The timers of all connections on one shared thread, in one heap. Each connection keeps the
//! instant it wants to be stepped at (`wake_at`) and the earliest entry it has in the heap
//! (`armed`). A new deadline is pushed only when it is earlier than the armed one, so a
//! connection whose keepalive deadline moves on with every message does not push an entry per
//! message: when the armed entry comes due and the deadline has moved on, it is pushed again
//! then. Entries that no longer match anything are skipped as they come up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use mio::Token;

/// One connection's place in the timers.
#[derive(Debug, Default)]
pub(super) struct Timer {
    /// When the connection wants to be stepped, if at all.
    wake_at: Option<Instant>,
    /// Its earliest entry in the heap.
    armed: Option<Instant>,
}

/// The heap of one thread's timers.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Timers {
    /// Sets when `token`, whose timer is `timer`, wants to be stepped (`None`: only on
    /// readiness or its doorbell).
    pub(super) fn set(&mut self, token: Token, timer: &mut Timer, wake_at: Option<Instant>) {
        timer.wake_at = wake_at;
        if let Some(at) = wake_at {
            if timer.armed.is_none_or(|armed| at < armed) {
                self.heap.push(Reverse((at, token.0)));
                timer.armed = Some(at);
            }
        }
    }

    /// The earliest entry, which may turn out stale: the thread sleeps at most until then.
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the next entry due at `now`: its token and instant, for [`fire`](Self::fire).
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Token, Instant)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => {
                let Reverse((at, token)) = self.heap.pop()?;
                Some((Token(token), at))
            }
            _ => None,
        }
    }

    /// An entry of `timer` at `at` came due: whether the connection is due now. If its
    /// deadline moved on meanwhile, the entry is pushed again for the new one.
    pub(super) fn fire(
        &mut self,
        token: Token,
        timer: &mut Timer,
        at: Instant,
        now: Instant,
    ) -> bool {
        if timer.armed != Some(at) {
            return false; // stale: a later entry (or none) is the armed one
        }
        timer.armed = None;
        match timer.wake_at {
            Some(wake_at) if wake_at <= now => true,
            later => {
                self.set(token, timer, later);
                false
            }
        }
    }

    /// Drops the stale entries when they outnumber the live ones by far; `armed` lists each
    /// live connection's armed entry.
    pub(super) fn compact(&mut self, live: usize, armed: impl Iterator<Item = (Token, Instant)>) {
        if self.heap.len() <= 2 * live + 1024 {
            return;
        }
        self.heap = armed.map(|(token, at)| Reverse((at, token.0))).collect();
    }
}

impl Timer {
    /// The connection's armed entry, if any.
    pub(super) fn armed(&self) -> Option<Instant> {
        self.armed
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_deadline_that_moves_later_pushes_no_entry_until_the_armed_one_fires() {
        let mut timers = Timers::default();
        let mut timer = Timer::default();
        let t0 = Instant::now();
        let token = Token(7);
        timers.set(token, &mut timer, Some(t0 + Duration::from_secs(1)));
        for i in 2..100 {
            timers.set(token, &mut timer, Some(t0 + Duration::from_secs(i)));
        }
        assert_eq!(timers.heap.len(), 1);
        let now = t0 + Duration::from_secs(1);
        let (due, at) = timers.pop_due(now).expect("due");
        assert_eq!(due, token);
        assert!(!timers.fire(token, &mut timer, at, now), "moved to 99 s");
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(99)));
        let now = t0 + Duration::from_secs(99);
        let (_, at) = timers.pop_due(now).expect("due");
        assert!(timers.fire(token, &mut timer, at, now));
    }

    #[test]
    fn an_earlier_deadline_wins_and_the_stale_entry_is_skipped() {
        let mut timers = Timers::default();
        let mut timer = Timer::default();
        let t0 = Instant::now();
        let token = Token(1);
        timers.set(token, &mut timer, Some(t0 + Duration::from_secs(10)));
        timers.set(token, &mut timer, Some(t0 + Duration::from_secs(5)));
        let now = t0 + Duration::from_secs(5);
        let (_, at) = timers.pop_due(now).expect("due");
        assert!(timers.fire(token, &mut timer, at, now));
        timers.set(token, &mut timer, None);
        let now = t0 + Duration::from_secs(10);
        let (_, at) = timers.pop_due(now).expect("the stale entry");
        assert!(!timers.fire(token, &mut timer, at, now));
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn compaction_keeps_only_the_armed_entries() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let mut timer = Timer::default();
        for i in (0..3000).rev() {
            timers.set(Token(1), &mut timer, Some(t0 + Duration::from_millis(i)));
        }
        assert_eq!(timers.heap.len(), 3000);
        timers.compact(1, [(Token(1), t0)].into_iter());
        assert_eq!(timers.heap.len(), 1);
    }
}
