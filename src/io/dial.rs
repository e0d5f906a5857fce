//! The TCP connect stage, by Happy Eyeballs (RFC 8305): the resolved addresses are
//! interleaved by family (starting with the family of the first one), and a new connect
//! starts every "connection attempt delay" while the earlier ones are still pending, or at
//! once when one fails. The first socket that connects wins, the others are closed. No attempt
//! has a timeout of its own: each may take as long as the whole attempt's deadline allows, so
//! a far-away server is not cut off by a short per-address budget (Node had to back that out,
//! nodejs/node#52216).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::error::{ConnectFailures, Error, Result};

/// TCP connects racing to the addresses of one host.
#[derive(Debug)]
pub(super) struct Dialer {
    /// Addresses not tried yet, in the order they will be.
    queue: VecDeque<SocketAddr>,
    /// Connects in flight, oldest first.
    pending: Vec<(TcpStream, SocketAddr)>,
    /// Each address that failed, in the order it failed.
    failures: Vec<(SocketAddr, io::Error)>,
    delay: Duration,
    /// When the next address in the queue starts, if earlier ones are still pending.
    next_start: Instant,
    /// The poll token every connect registers with: the thread only needs to know whose
    /// socket is ready.
    token: Token,
}

impl Dialer {
    /// Starts dialing `addrs` (in the resolver's order), a new connect every `delay`; the
    /// sockets register with `token`.
    pub(super) fn new(addrs: Vec<SocketAddr>, delay: Duration, token: Token) -> Self {
        Dialer {
            token,
            queue: interleave(addrs),
            pending: Vec::new(),
            failures: Vec::new(),
            delay,
            next_start: Instant::now(),
        }
    }

    /// Starts due connects and checks the pending ones. Returns the first connected socket
    /// (the others are closed then) or `None` while waiting.
    ///
    /// # Errors
    /// [`Error::Connect`] with [`ConnectFailures`] once every address has failed.
    pub(super) fn advance(
        &mut self,
        registry: &Registry,
    ) -> Result<Option<(TcpStream, SocketAddr)>> {
        loop {
            let mut i = 0;
            while i < self.pending.len() {
                match is_connected(&self.pending[i].0) {
                    Ok(true) => {
                        let (stream, addr) = self.pending.remove(i);
                        self.abort(registry);
                        return Ok(Some((stream, addr)));
                    }
                    Ok(false) => i += 1,
                    Err(err) => {
                        let (mut stream, addr) = self.pending.remove(i);
                        log::debug!("connect to {addr} failed: {err}");
                        deregister(registry, &mut stream);
                        self.failures.push((addr, err));
                        // RFC 8305 §5: a failure starts the next attempt at once.
                        self.next_start = Instant::now();
                    }
                }
            }
            let due = self.pending.is_empty() || Instant::now() >= self.next_start;
            match self.queue.front() {
                Some(&addr) if due => {
                    self.queue.pop_front();
                    self.start(addr, registry);
                    // Checked at once: a refused or unreachable connect may fail right away.
                }
                _ if self.pending.is_empty() => {
                    let failures = std::mem::take(&mut self.failures);
                    return Err(Error::Connect(Box::new(ConnectFailures(failures))));
                }
                _ => return Ok(None),
            }
        }
    }

    /// When [`advance`](Self::advance) must run again even if no socket becomes ready: when
    /// the next address is due.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        (!self.queue.is_empty()).then_some(self.next_start)
    }

    /// Closes every pending connect.
    pub(super) fn abort(&mut self, registry: &Registry) {
        for (mut stream, _) in self.pending.drain(..) {
            deregister(registry, &mut stream);
        }
    }

    fn start(&mut self, addr: SocketAddr, registry: &Registry) {
        let token = self.token;
        let started = TcpStream::connect(addr).and_then(|mut stream| {
            registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
            Ok(stream)
        });
        match started {
            Ok(stream) => {
                log::debug!("connecting to {addr}");
                self.pending.push((stream, addr));
                self.next_start = Instant::now() + self.delay;
            }
            Err(err) => {
                log::debug!("connect to {addr} failed: {err}");
                self.failures.push((addr, err));
            }
        }
    }
}

/// The addresses alternating by family, starting with the family of the first one; each
/// family keeps the resolver's order (RFC 8305 §4, a "First Address Family Count" of 1).
fn interleave(addrs: Vec<SocketAddr>) -> VecDeque<SocketAddr> {
    let Some(first) = addrs.first() else {
        return VecDeque::new();
    };
    let first_is_v6 = first.is_ipv6();
    let (mut preferred, mut other): (VecDeque<_>, VecDeque<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_is_v6);
    let mut out = VecDeque::with_capacity(preferred.len() + other.len());
    loop {
        match (preferred.pop_front(), other.pop_front()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Whether a non-blocking connect has finished; `Err` if it failed.
fn is_connected(stream: &TcpStream) -> io::Result<bool> {
    if let Some(err) = stream.take_error()? {
        return Err(err);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(err) => Err(err),
    }
}

fn deregister(registry: &Registry, stream: &mut TcpStream) {
    if let Err(err) = registry.deregister(stream) {
        log::debug!("deregister failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_starting_with_the_first_returned() {
        let v6_first = addrs(&["[::1]:1", "[::2]:1", "[::3]:1", "10.0.0.1:1", "10.0.0.2:1"]);
        assert_eq!(
            Vec::from(interleave(v6_first)),
            addrs(&["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"])
        );
        let v4_first = addrs(&["10.0.0.1:1", "[::1]:1", "[::2]:1", "[::3]:1"]);
        assert_eq!(
            Vec::from(interleave(v4_first)),
            addrs(&["10.0.0.1:1", "[::1]:1", "[::2]:1", "[::3]:1"])
        );
        let one_family = addrs(&["10.0.0.2:1", "10.0.0.1:1"]);
        assert_eq!(Vec::from(interleave(one_family.clone())), one_family);
        assert!(interleave(Vec::new()).is_empty());
    }
}
