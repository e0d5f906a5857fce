//! A small fault-injecting TCP proxy for loopback tests: it passes bytes through, then, when
//! told, stalls (a blackhole: accepts bytes and forwards nothing), resets, cuts with a FIN, or
//! adds latency. Faults apply to the connections open now and to later ones.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the proxy does with the bytes it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Take everything and forward nothing, in both directions: a peer that vanished.
    Blackhole,
    /// Forward everything, each read this much later.
    Latency(Duration),
    /// Forward everything, but read at most this many bytes per second: a slow link, whose
    /// sender's kernel buffer fills and then drains at this rate. Set before the client
    /// connects, it also gives the proxy a small receive buffer.
    Throttle(usize),
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    /// The client-facing socket of each connection (a clone), to cut it.
    clients: Vec<TcpStream>,
}

/// A running proxy in front of one target address.
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 that forwards to `target`.
    pub fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            fault: Some(Fault::Pass),
            clients: Vec::new(),
        }));
        let shared = state.clone();
        super::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if matches!(lock(&shared).fault, Some(Fault::Throttle(_))) {
                    // A slow link's buffers: what the client writes waits in its own kernel.
                    let _ = socket2::SockRef::from(&client).set_recv_buffer_size(64 << 10);
                }
                lock(&shared).clients.push(client.try_clone().unwrap());
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    &shared,
                );
                pump(server, client, &shared);
            }
        });
        FaultProxy { port, state }
    }

    /// The `ws://` URL of the target through the proxy.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// From now on, `fault`.
    pub fn set(&self, fault: Fault) {
        lock(&self.state).fault = Some(fault);
    }

    /// Resets every open connection: the client gets an RST, no FIN.
    pub fn reset(&self) {
        for client in lock(&self.state).clients.drain(..) {
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
            // Shutting down the reading side sends nothing, but ends the pumps; the last of
            // the socket's descriptors to close then sends the RST.
            let _ = client.shutdown(Shutdown::Read);
        }
    }

    /// Cuts every open connection with a FIN to the client.
    pub fn cut(&self) {
        for client in lock(&self.state).clients.drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Copies `from` to `to` as the current fault says, until either end closes: a reader thread
/// stamps each chunk with when it is due, a writer thread delivers it then (so latency delays
/// every byte by the same amount, without slowing the link down).
fn pump(mut from: TcpStream, mut to: TcpStream, state: &Arc<Mutex<State>>) {
    let state = state.clone();
    let (tx, rx) = flume::unbounded::<(Instant, Vec<u8>)>();
    super::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let fault = lock(&state).fault;
            let room = match fault {
                Some(Fault::Throttle(_)) => 16 << 10,
                _ => buf.len(),
            };
            let n = match from.read(&mut buf[..room]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = match fault {
                Some(Fault::Blackhole) => continue,
                Some(Fault::Latency(delay)) => Instant::now() + delay,
                Some(Fault::Throttle(rate)) => {
                    // The simulated link's speed, not a synchronisation.
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                    Instant::now()
                }
                Some(Fault::Pass) | None => Instant::now(),
            };
            if tx.send((due, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    super::spawn(move || {
        for (due, bytes) in rx {
            // The simulated latency, not a synchronisation.
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
