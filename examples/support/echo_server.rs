//! A tiny WebSocket echo server on 127.0.0.1, so that the examples run offline.

use std::net::TcpListener;

/// Starts the server on a free loopback port and returns its `ws://` URL. It echoes every text
/// and binary message on every connection until the process exits.
pub(crate) fn start() -> std::io::Result<String> {
    serve("127.0.0.1:0")
}

/// Starts the server on `addr` (port 0: a free one) and returns its `ws://` URL.
#[allow(dead_code, reason = "only some examples serve on a chosen address")]
pub(crate) fn serve(addr: &str) -> std::io::Result<String> {
    let listener = listen(addr)?;
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

/// A listener on `addr` with a long accept queue: std's is 128, and thousands of clients
/// connecting at once would overflow it (the kernel then drops their SYNs, and they retry a
/// second later).
fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// The URL from the first argument, or the embedded server's.
#[allow(dead_code, reason = "not every example takes a URL argument")]
pub(crate) fn url_from_args() -> std::io::Result<String> {
    match std::env::args().nth(1) {
        Some(url) => Ok(url),
        None => start(),
    }
}
