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

/// Where the timers find a connection's [`Timer`] by its token.
pub(super) trait Timed {
    /// The timer of `token`'s connection, `None` if it is gone.
    fn timer(&mut self, token: Token) -> Option<&mut Timer>;
}

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

    /// When the thread must wake for a timer: the earliest entry that is still wanted. Stale
    /// entries at the front are dropped and entries whose deadline moved on are pushed again
    /// for the new one first, so that the thread never wakes for nothing: a connection that
    /// is gone, or whose connect deadline was armed before it opened, costs no wake-up.
    /// `conns` finds a connection's timer (`None`: it is gone).
    pub(super) fn next(&mut self, conns: &mut impl Timed) -> Option<Instant> {
        while let Some(&Reverse((at, token))) = self.heap.peek() {
            let token = Token(token);
            let Some(timer) = conns.timer(token) else {
                self.heap.pop();
                continue;
            };
            if timer.armed != Some(at) {
                self.heap.pop(); // a later entry of this connection is the armed one
                continue;
            }
            match timer.wake_at {
                Some(wake_at) if wake_at <= at => return Some(at),
                later => {
                    self.heap.pop();
                    timer.armed = None;
                    self.set(token, timer, later);
                }
            }
        }
        None
    }

    /// Takes the next entry due at `now` that is still wanted (see [`next`](Self::next)): the
    /// connection to step.
    pub(super) fn pop_due(&mut self, now: Instant, conns: &mut impl Timed) -> Option<Token> {
        let at = self.next(conns)?;
        if at > now {
            return None;
        }
        let Reverse((_, token)) = self.heap.pop()?;
        let token = Token(token);
        if let Some(timer) = conns.timer(token) {
            timer.armed = None;
        }
        Some(token)
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
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    impl Timed for HashMap<Token, Timer> {
        fn timer(&mut self, token: Token) -> Option<&mut Timer> {
            self.get_mut(&token)
        }
    }

    #[test]
    fn a_deadline_that_moves_later_pushes_no_entry_and_wakes_only_when_due() {
        let mut timers = Timers::default();
        let mut conns: HashMap<Token, Timer> = HashMap::new();
        let t0 = Instant::now();
        let token = Token(7);
        let timer = conns.entry(token).or_default();
        timers.set(token, timer, Some(t0 + Duration::from_secs(1)));
        for i in 2..100 {
            timers.set(
                token,
                conns.get_mut(&token).unwrap(),
                Some(t0 + Duration::from_secs(i)),
            );
        }
        assert_eq!(timers.heap.len(), 1);
        let later = t0 + Duration::from_secs(1);
        // The armed entry at 1 s is moved to 99 s before the thread would wake for it.
        assert_eq!(timers.next(&mut conns), Some(t0 + Duration::from_secs(99)));
        assert_eq!(timers.pop_due(later, &mut conns), None);
        let due = t0 + Duration::from_secs(99);
        assert_eq!(timers.pop_due(due, &mut conns), Some(token));
    }

    #[test]
    fn entries_of_gone_or_timerless_connections_never_wake_the_thread() {
        let mut timers = Timers::default();
        let mut conns: HashMap<Token, Timer> = HashMap::new();
        let t0 = Instant::now();
        for i in 0..3 {
            let timer = conns.entry(Token(i)).or_default();
            timers.set(Token(i), timer, Some(t0 + Duration::from_secs(30)));
        }
        conns.remove(&Token(0)); // finished
        timers.set(Token(1), conns.get_mut(&Token(1)).unwrap(), None); // opened: no timer
        timers.set(
            Token(2),
            conns.get_mut(&Token(2)).unwrap(),
            Some(t0 + Duration::from_secs(5)),
        );
        assert_eq!(timers.next(&mut conns), Some(t0 + Duration::from_secs(5)));
        let due = t0 + Duration::from_secs(5);
        assert_eq!(timers.pop_due(due, &mut conns), Some(Token(2)));
        conns.get_mut(&Token(2)).unwrap().armed = None;
        conns.get_mut(&Token(2)).unwrap().wake_at = None;
        assert_eq!(timers.next(&mut conns), None, "the stale entries are gone");
        assert!(timers.heap.is_empty());
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
