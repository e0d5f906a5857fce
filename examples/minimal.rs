//! The Rust twin of the Python nwebsocket's first example, in the JS flow: connect, wait for
//! the connection to open, send, receive, close.
//!
//! `cargo run --example minimal [-- <ws-or-wss-url>]`
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::error::Error;
use std::time::Duration;

use nwebsocket::{Client, Event, ReadyState};

fn main() -> Result<(), Box<dyn Error>> {
    let ws = Client::connect(&echo_server::url_from_args()?)?;
    println!("readyState: {:?}", ws.ready_state()); // Connecting

    // ws.onopen
    match ws.recv_timeout(Duration::from_secs(10))? {
        Event::Open(_) => println!("readyState: {:?}", ws.ready_state()), // Open
        other => return Err(format!("could not connect: {other:?}").into()),
    }

    ws.send_text("Hello, World!")?;

    // ws.onmessage
    if let Event::Message(message) = ws.recv_timeout(Duration::from_secs(10))? {
        println!("received: {}", message.as_text().unwrap_or("<binary>"));
    }

    ws.close()?;
    println!("readyState: {:?}", ws.ready_state()); // Closing

    // ws.onclose
    for event in &ws {
        if let Event::Close(close) = event {
            println!(
                "closed with code {} (clean: {})",
                close.code, close.was_clean
            );
        }
    }
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    Ok(())
}
