//! Quick start: connect, send, print what comes back, close.
//!
//! `cargo run --example echo` talks to an embedded loopback echo server;
//! `cargo run --example echo -- <ws-or-wss-url>` talks to that server instead.
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::error::Error;

use nwebsocket::{Client, Event};

fn main() -> Result<(), Box<dyn Error>> {
    let url = echo_server::url_from_args()?;
    println!("connecting to {url}");
    let ws = Client::connect(&url)?;

    // Sends made before the connection is open are queued and go out right after the handshake.
    ws.send_text("Hello, nwebsocket!")?;
    ws.send_binary(vec![1u8, 2, 3])?;

    let mut replies = 0;
    for event in &ws {
        match event {
            Event::Open(open) => println!("open (protocol: {:?})", open.protocol),
            Event::Message(message) => {
                match message.as_text() {
                    Some(text) => println!("text: {text}"),
                    None => println!("binary: {:?}", message.as_bytes()),
                }
                replies += 1;
                if replies == 2 {
                    ws.close_with(1000, "done")?;
                }
            }
            Event::Error(err) => println!("error: {err}"),
            Event::Close(close) => println!(
                "closed: code {} reason {:?} clean {}",
                close.code, close.reason, close.was_clean
            ),
            _ => {}
        }
    }
    Ok(())
}
