//! A tiny WebSocket echo server on 127.0.0.1, so that the examples run offline.

use std::net::TcpListener;

/// Starts the server on a free loopback port and returns its `ws://` URL. It echoes every text
/// and binary message on every connection until the process exits.
pub(crate) fn start() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("ws://{}/echo", listener.local_addr()?);
    std::thread::Builder::new()
        .name("echo-server".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = std::thread::Builder::new()
                    .name("echo-conn".into())
                    .spawn(move || {
                        // Small echoes leave at once, instead of waiting for the client's ACK.
                        let _ = stream.set_nodelay(true);
                        let Ok(mut ws) = tungstenite::accept(stream) else {
                            return;
                        };
                        while let Ok(msg) = ws.read() {
                            if (msg.is_text() || msg.is_binary()) && ws.send(msg).is_err() {
                                return;
                            }
                        }
                    });
            }
        })?;
    Ok(url)
}

/// The URL from the first argument, or the embedded server's.
pub(crate) fn url_from_args() -> std::io::Result<String> {
    match std::env::args().nth(1) {
        Some(url) => Ok(url),
        None => start(),
    }
}
