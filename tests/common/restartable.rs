//! An echo server that can be stopped and started again on the same port, for reconnection
//! tests. Stopping closes the listener and every connection abruptly (no close frame).

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A running echo server.
pub struct RestartableServer {
    addr: SocketAddr,
    stopped: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    /// Each accepted connection is reported here.
    pub accepted: flume::Receiver<()>,
    /// Disconnects when the listener is closed.
    listening: flume::Receiver<()>,
}

impl RestartableServer {
    /// Starts on a free port of 127.0.0.1.
    pub fn start() -> RestartableServer {
        RestartableServer::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// Starts on `addr` (again, after [`stop`](Self::stop)).
    pub fn start_on(addr: SocketAddr) -> RestartableServer {
        // std sets SO_REUSEADDR, so the port of a stopped server can be bound again at once.
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (accepted_tx, accepted) = flume::unbounded();
        let (stop_flag, open) = (stopped.clone(), connections.clone());
        let (listening_tx, listening) = flume::bounded::<()>(0);
        super::spawn(move || {
            let _listening = listening_tx;
            // Declared after `_listening`, so closed before it reports.
            let listener = listener;
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                open.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(stream.try_clone().unwrap());
                let _ = accepted_tx.send(());
                super::spawn(move || {
                    if let Ok(ws) = tungstenite::accept(stream) {
                        super::echo(ws);
                    }
                });
            }
        });
        RestartableServer {
            addr,
            stopped,
            connections,
            accepted,
            listening,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Closes the listener (nothing accepts on the port any more) and resets every
    /// connection.
    pub fn stop(self) -> SocketAddr {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag and drops the listener.
        let _ = TcpStream::connect(self.addr);
        let _ = self.listening.recv_timeout(super::WAIT);
        for stream in self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO));
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.addr
    }
}
