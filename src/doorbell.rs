//! How the handle side (and the resolver and hook threads) wakes the I/O side: a [`Doorbell`]
//! per handle. With a thread of its own, a connection's doorbell is that thread's mio
//! `Waker`. On shared I/O threads ([`IoThreads`](crate::IoThreads)) many connections share one
//! thread and one `Waker`: the doorbell also says which connection rang, so that the thread
//! steps that one and no other.

use std::sync::{Arc, Mutex};

use mio::{Token, Waker};

/// Wakes the I/O side of one connection.
#[derive(Debug)]
pub(crate) enum Doorbell {
    /// The connection's own thread sleeps on this waker.
    Own(Waker),
    /// The connection (`token`) lives on a shared thread, which sleeps on `bell`.
    Shared { bell: Arc<Bell>, token: Token },
}

impl Doorbell {
    /// Wakes the thread (it may be awake already: its next sleep then returns at once).
    pub(crate) fn ring(&self) {
        let woken = match self {
            Doorbell::Own(waker) => waker.wake(),
            Doorbell::Shared { bell, token } => bell.ring(*token),
        };
        if let Err(err) = woken {
            log::warn!("could not wake the I/O thread: {err}");
        }
    }
}

/// The waker of a shared I/O thread, and the connections that rang it since it last looked.
#[derive(Debug)]
pub(crate) struct Bell {
    waker: Waker,
    rung: Mutex<Vec<Token>>,
}

impl Bell {
    pub(crate) fn new(waker: Waker) -> Self {
        Bell {
            waker,
            rung: Mutex::new(Vec::new()),
        }
    }

    /// Notes that `token` has work, and wakes the thread unless an earlier ring, not yet
    /// taken, did so already: a burst of rings costs one system call.
    pub(crate) fn ring(&self, token: Token) -> std::io::Result<()> {
        let first = {
            let mut rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
            rung.push(token);
            rung.len() == 1
        };
        if first { self.waker.wake() } else { Ok(()) }
    }

    /// The connections that rang since the last call, in the order they rang (one may appear
    /// more than once). The thread calls it after each wake-up: a ring after this call
    /// finds the list empty and wakes the thread again.
    pub(crate) fn take_rung(&self, into: &mut Vec<Token>) {
        let mut rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        into.append(&mut rung);
    }
}
