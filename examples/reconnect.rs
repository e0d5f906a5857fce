//! A telemetry loop that survives its server going away: it sends a reading every 100 ms and
//! prints what happens while the embedded server is stopped and started again on the same
//! port. Readings sent while the server is down wait in the offline queue and go out, in
//! order, on the next connection. Runs for about six seconds.
//!
//! `cargo run --example reconnect`
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use std::error::Error;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nwebsocket::{Client, Config, Event, OfflineSends};

fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start("127.0.0.1:0".parse()?)?;
    let addr = server.addr;
    let config = Config::builder()
        .ping_interval(Duration::from_millis(500))
        .dead_peer_timeout(Duration::from_secs(2))
        .reconnect(true)
        .reconnect_delays(Duration::from_millis(100), Duration::from_millis(800))
        .offline_sends(OfflineSends::Queue { max_bytes: 1 << 20 })
        .build()?;
    let ws = Client::connect_with_config(&format!("ws://{addr}/telemetry"), config)?;

    let started = Instant::now();
    let mut server = Some(server);
    let (mut sent, mut echoed) = (0u32, 0u32);
    for tick in 0..60u32 {
        let elapsed = started.elapsed();
        if tick == 20 {
            println!(
                "[{:>5.2}s] -- stopping the server --",
                elapsed.as_secs_f32()
            );
            if let Some(server) = server.take() {
                server.stop();
            }
        }
        if tick == 35 {
            println!(
                "[{:>5.2}s] -- starting the server again --",
                elapsed.as_secs_f32()
            );
            server = Some(Server::start(addr)?);
        }
        match ws.send_text(format!("reading {tick}")) {
            Ok(()) => sent += 1,
            Err(err) => println!(
                "[{:>5.2}s] reading {tick} not sent: {err}",
                elapsed.as_secs_f32()
            ),
        }
        // Everything that happened since the last tick, without blocking.
        for event in ws.try_events() {
            let at = started.elapsed().as_secs_f32();
            match event {
                Event::Open(_) => println!("[{at:>5.2}s] open"),
                Event::Message(_) => echoed += 1,
                Event::Error(err) => println!("[{at:>5.2}s] error: {err}"),
                Event::Close(close) => match close.reconnect {
                    Some(delay) => println!(
                        "[{at:>5.2}s] closed ({}), attempt {} in {delay:.0?}; {} bytes wait",
                        close.code,
                        close.attempt,
                        ws.buffered_amount()
                    ),
                    None => println!("[{at:>5.2}s] closed for good ({})", close.code),
                },
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(100)); // the loop's own period
    }
    // The last echoes, then a clean close.
    let deadline = Instant::now() + Duration::from_secs(2);
    while echoed < sent {
        match ws.recv_deadline(deadline) {
            Ok(Event::Message(_)) => echoed += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    println!("sent {sent} readings, {echoed} echoed back");
    if echoed < sent {
        // What the kernel had taken before the server went away may be lost with that
        // connection; everything still in the client's own buffers went out on the next.
        println!("(the difference was in the kernel's buffers when the server went away)");
    }
    ws.close()?;
    for event in &ws {
        if let Event::Close(close) = event {
            println!("closed: {} clean={}", close.code, close.was_clean);
        }
    }
    Ok(())
}

/// An echo server that can be stopped (its port closed, its connections reset) and started
/// again on the same address.
struct Server {
    addr: SocketAddr,
    stopped: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Server {
    fn start(addr: SocketAddr) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stopped = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (stop, open) = (stopped.clone(), connections.clone());
        std::thread::Builder::new()
            .name("echo-server".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if stop.load(Ordering::SeqCst) {
                        return; // drops the listener: the port is free again
                    }
                    if let Ok(clone) = stream.try_clone() {
                        open.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(clone);
                    }
                    let _ = std::thread::Builder::new()
                        .name("echo-conn".into())
                        .spawn(move || echo(stream));
                }
            })?;
        Ok(Server {
            addr,
            stopped,
            connections,
        })
    }

    fn stop(self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which sees the flag and closes the listener.
        let _ = TcpStream::connect(self.addr);
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for stream in connections.iter() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    while let Ok(message) = ws.read() {
        if (message.is_text() || message.is_binary()) && ws.send(message).is_err() {
            return;
        }
    }
}
