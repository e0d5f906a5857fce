//! The Python nwebsocket's class example: instead of subclassing `WebSocket` and overriding
//! `onopen`, `onmessage`, ..., implement [`Handler`] for a struct that keeps what it receives.
//! The callbacks run on this thread, in a blocking `run` until the connection has closed.
//!
//! `cargo run --example class_protocol [-- <ws-or-wss-url>]`
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::error::Error;

use nwebsocket::callback::{Context, Handler, WebSocket};
use nwebsocket::{Client, CloseEvent, Message, OpenEvent};

/// The protocol logic: stores every message, and closes once it has the replies it expects.
struct ProtocolLogic {
    expected: usize,
    messages: Vec<Message>,
}

impl Handler for ProtocolLogic {
    fn on_open(&mut self, _ctx: &Context, _open: OpenEvent) {
        println!("Opened connection");
    }

    fn on_message(&mut self, ctx: &Context, message: Message) {
        self.messages.push(message);
        if self.messages.len() == self.expected {
            let _ = ctx.close(); // fails only if the connection is closing already
        }
    }

    fn on_error(&mut self, _ctx: &Context, error: nwebsocket::Error) {
        println!("Connection error: {error}");
    }

    fn on_close(&mut self, _ctx: &Context, close: CloseEvent) {
        println!("Closed connection (code {})", close.code);
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let client = Client::connect(&echo_server::url_from_args()?)?;
    let logic = ProtocolLogic {
        expected: 3,
        messages: Vec::new(),
    };
    let mut ws = WebSocket::with_handler(client, logic);

    ws.send_text("text")?;
    ws.send_text("more text")?;
    ws.send_binary(vec![0xde, 0xad, 0xbe, 0xef])?;

    // Blocks, running the callbacks here, until `on_close` has run.
    ws.run();

    for message in &ws.handler().messages {
        println!("stored: {message:?}");
    }
    Ok(())
}
