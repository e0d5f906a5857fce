//! A fixed-rate control loop (1 kHz, as a robot controller might run) that sends a command
//! every 10 ms and drains incoming events with `try_events` once per tick, never blocking.
//! At the end it reports how long the drain took per tick.
//!
//! `cargo run --release --example poll_loop [-- <ws-or-wss-url>]`
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::error::Error;
use std::time::{Duration, Instant};

use nwebsocket::{Client, Event, ReadyState};

const TICK: Duration = Duration::from_millis(1);
const TICKS: u32 = 2_000;

fn main() -> Result<(), Box<dyn Error>> {
    let ws = Client::connect(&echo_server::url_from_args()?)?;
    let mut drain_times = Vec::with_capacity(TICKS as usize);
    let mut received = 0u32;
    let mut next_tick = Instant::now();

    for tick in 0..TICKS {
        // 1. Take whatever arrived since the last tick, without waiting.
        let started = Instant::now();
        for event in ws.try_events() {
            match event {
                Event::Message(_) => received += 1,
                Event::Error(err) => println!("error: {err}"),
                Event::Close(close) => println!("closed: {}", close.code),
                _ => {}
            }
        }
        drain_times.push(started.elapsed());

        // 2. The control step: here, a command every 10 ticks once the socket is open.
        if tick % 10 == 0 && ws.ready_state() == ReadyState::Open {
            ws.send_text(format!("{{\"tick\":{tick},\"speed\":0.5}}"))?;
        }

        // 3. Keep the rate: sleep until the next tick.
        next_tick += TICK;
        std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
    }

    drain_times.sort();
    let pct = |p: usize| drain_times[(drain_times.len() - 1) * p / 100];
    println!("{TICKS} ticks, {received} replies received");
    println!(
        "drain per tick: median {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(99),
        pct(100)
    );
    ws.close()?;
    ws.wait_closed(Duration::from_secs(5));
    Ok(())
}
