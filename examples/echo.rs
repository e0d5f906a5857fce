//! Quick start: connect, send, print what comes back, close.
//!
//! `cargo run --example echo` talks to an embedded loopback echo server;
//! `cargo run --example echo -- <ws-or-wss-url>` talks to that server instead, honouring the
//! proxy variables (`https_proxy` for wss, `http_proxy` for ws, `all_proxy`, `no_proxy`, as
//! curl does) and the TLS ones (`SSL_CERT_FILE`, `SSL_CERT_DIR`). For example:
//!
//! ```sh
//! https_proxy=http://user:pass@proxy:3128 cargo run --example echo -- wss://echo.example.com/
//! all_proxy=socks5h://127.0.0.1:1080 cargo run --example echo -- ws://echo.example.org/
//! ```
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::error::Error;

use nwebsocket::{Client, Config, Event};

fn main() -> Result<(), Box<dyn Error>> {
    let embedded = std::env::args().nth(1).is_none();
    let url = echo_server::url_from_args()?;
    // The proxy variables are read when `connect` is called; but the embedded server is on
    // this machine, where a proxy elsewhere could not reach it.
    let config = Config::builder().proxy_from_env(!embedded).build()?;
    println!("connecting to {url}");
    let ws = Client::connect_with_config(&url, config)?;

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
            Event::Error(err) => {
                // The message is short; the causes (a proxy's or TLS's) are its sources.
                let mut line = format!("error: {err}");
                let mut source = err.source();
                while let Some(cause) = source {
                    line.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                println!("{line}");
            }
            Event::Close(close) => println!(
                "closed: code {} reason {:?} clean {}",
                close.code, close.reason, close.was_clean
            ),
            _ => {}
        }
    }
    Ok(())
}
