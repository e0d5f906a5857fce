//! A 60 Hz game loop that calls the non-blocking `dispatch` once per frame. The network
//! callbacks run on the game thread, between frames, so they update the game state without
//! locks and never stall a frame waiting for the network. At the end it reports how long
//! `dispatch` took per frame.
//!
//! Against the embedded echo server, the position updates we send for a few bots come back
//! as if the server relayed other players' moves.
//!
//! `cargo run --release --example game_loop [-- <ws-or-wss-url>]`
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::collections::HashMap;
use std::error::Error;
use std::time::{Duration, Instant};

use nwebsocket::callback::{Context, Handler, WebSocket};
use nwebsocket::{Client, CloseEvent, Message, ReadyState};

const FRAME: Duration = Duration::from_micros(16_667);
const FRAMES: usize = 120;
const BOTS: usize = 4;

/// The part of the game state that the network updates: where the other players are.
#[derive(Default)]
struct World {
    players: HashMap<String, (f32, f32)>,
    updates: usize,
}

impl Handler for World {
    fn on_message(&mut self, _ctx: &Context, message: Message) {
        // "pos <player> <x> <y>"
        let mut words = message.as_text().unwrap_or("").split(' ');
        if let (Some("pos"), Some(player), Some(x), Some(y)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            if let (Ok(x), Ok(y)) = (x.parse(), y.parse()) {
                self.players.insert(player.to_owned(), (x, y));
                self.updates += 1;
            }
        }
    }

    fn on_error(&mut self, _ctx: &Context, error: nwebsocket::Error) {
        println!("network error: {error}");
    }

    fn on_close(&mut self, _ctx: &Context, close: CloseEvent) {
        println!("disconnected (code {})", close.code);
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let client = Client::connect(&echo_server::url_from_args()?)?;
    let mut ws = WebSocket::with_handler(client, World::default());
    let mut dispatch_times = Vec::with_capacity(FRAMES);
    let mut handled = 0;
    let mut next_frame = Instant::now();

    for frame in 0..FRAMES {
        // 1. Network: run the callbacks for whatever arrived since the last frame.
        let started = Instant::now();
        handled += ws.dispatch();
        dispatch_times.push(started.elapsed());

        // 2. Simulate: move the bots and tell the server.
        if ws.ready_state() == ReadyState::Open {
            for bot in 0..BOTS {
                let angle = frame as f32 / 20.0 + bot as f32;
                let (x, y) = (angle.cos() * 10.0, angle.sin() * 10.0);
                ws.send_text(format!("pos bot{bot} {x:.2} {y:.2}"))?;
            }
        }

        // 3. Render: here, a status line every second.
        if frame % 60 == 59 {
            let world = ws.handler();
            let bot0 = world.players.get("bot0").copied().unwrap_or_default();
            println!(
                "frame {}: {} players, {} updates, bot0 at ({:.1}, {:.1})",
                frame + 1,
                world.players.len(),
                world.updates,
                bot0.0,
                bot0.1
            );
        }

        // 4. Keep the rate.
        next_frame += FRAME;
        std::thread::sleep(next_frame.saturating_duration_since(Instant::now()));
    }

    // Leave the game: close, and keep dispatching (at most a few seconds) until on_close ran.
    ws.close()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while ws.ready_state() != ReadyState::Closed && Instant::now() < deadline {
        handled += ws.dispatch();
        std::thread::sleep(FRAME);
    }

    dispatch_times.sort();
    let at = |percent: usize| dispatch_times[(dispatch_times.len() - 1) * percent / 100];
    println!("{FRAMES} frames at 60 Hz, {handled} events dispatched");
    println!(
        "dispatch per frame: median {:?}, p99 {:?}, max {:?}",
        at(50),
        at(99),
        at(100)
    );
    Ok(())
}
