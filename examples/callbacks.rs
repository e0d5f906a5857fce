//! The Python nwebsocket's minimal example with JS-style closures: `onopen`, `onmessage`,
//! `onerror` and `onclose`, run on a dispatcher thread of their own, fire-and-forget as in JS.
//!
//! `cargo run --example callbacks [-- <ws-or-wss-url>]`
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::error::Error;
use std::time::Duration;

use nwebsocket::callback::WebSocket;

fn main() -> Result<(), Box<dyn Error>> {
    let mut ws = WebSocket::connect(&echo_server::url_from_args()?)?;

    ws.on_open(|_, _| println!("Opened connection"))
        .on_message(|ctx, message| {
            println!("{}", message.as_text().unwrap_or("<binary>"));
            // Done after the echo: close from inside the callback.
            if let Err(err) = ctx.close() {
                println!("close failed: {err}");
            }
        })
        .on_close(|_, close| {
            println!(
                "Closed connection (code {}, reason {:?}, clean {})",
                close.code, close.reason, close.was_clean
            );
        })
        .on_error(|_, err| println!("Connection error: {err}"));

    // From here on the callbacks run on the `nwebsocket-callbacks` thread.
    let ws = ws.spawn()?;
    println!("readyState: {:?}", ws.ready_state());

    // No need to wait for the open: sends made while connecting go out right after it.
    ws.send_text("text")?;

    // The seed sleeps a second and closes; here the message callback closes, and we wait
    // (at most 10 s) for `onclose` to have run.
    if !ws.wait_closed(Duration::from_secs(10)) {
        return Err("the connection did not close in time".into());
    }
    println!("readyState: {:?}", ws.ready_state());
    Ok(())
}
