//! The bench's WebSocket server on 127.0.0.1, in Rust so that it is never the bottleneck.
//!
//! Prints its port, then serves until killed. One thread per connection; the path picks the
//! behaviour:
//! - `/` echoes every message;
//! - `/flood/<n>/<size>` sends `n` text messages of `size` bytes, then closes;
//! - `/sink` counts messages until the text `__done__`, then answers `count:<n>`.

#![forbid(unsafe_code)]
// tungstenite's own error type is large; this server only passes it up to drop it.
#![expect(
    clippy::result_large_err,
    reason = "tungstenite::Error is tungstenite's"
)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};

use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", listener.local_addr()?.port())?;
    stdout.flush()?;
    for stream in listener.incoming().flatten() {
        std::thread::Builder::new()
            .name("bench-conn".into())
            .spawn(move || serve(stream))?;
    }
    Ok(())
}

fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let callback = |request: &Request, response: Response| {
        path = request.uri().path().to_owned();
        Ok(response)
    };
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(stream, callback, Some(config)) else {
        return;
    };
    let parts: Vec<&str> = path.split('/').collect();
    let _ = match parts.as_slice() {
        ["", "flood", count, size] => flood(
            &mut ws,
            count.parse().unwrap_or(0),
            size.parse().unwrap_or(0),
        ),
        ["", "sink"] => sink(&mut ws),
        _ => echo(&mut ws),
    };
}

fn echo(ws: &mut WebSocket<TcpStream>) -> tungstenite::Result<()> {
    loop {
        let message = ws.read()?;
        if message.is_text() || message.is_binary() {
            ws.send(message)?;
        }
    }
}

fn flood(ws: &mut WebSocket<TcpStream>, count: usize, size: usize) -> tungstenite::Result<()> {
    let payload = "x".repeat(size);
    for _ in 0..count {
        // Written in batches: flush only when tungstenite's write buffer fills.
        ws.write(Message::text(payload.clone()))?;
    }
    ws.flush()?;
    ws.close(None)?;
    while ws.read().is_ok() {}
    Ok(())
}

fn sink(ws: &mut WebSocket<TcpStream>) -> tungstenite::Result<()> {
    let mut count = 0u64;
    loop {
        match ws.read()? {
            Message::Text(text) if text.as_str() == "__done__" => {
                ws.send(Message::text(format!("count:{count}")))?;
            }
            Message::Text(_) | Message::Binary(_) => count += 1,
            _ => {}
        }
    }
}
