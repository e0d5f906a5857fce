//! The loopback server both clients talk to: plain blocking tungstenite, one thread per
//! connection, on 127.0.0.1 only. The request path picks what it does:
//!
//! - `/echo` sends every text and binary message back;
//! - `/push/<n>/<size>` waits for one message from the client, then writes `n` binary
//!   messages of `size` bytes as fast as it can;
//! - `/sink/<n>` counts data messages and sends the text `done` once it has `n` of them.
//!
//! Every mode then reads until the client closes, so that the close handshake completes.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use bytes::Bytes;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::{Message, WebSocket};

/// A running server; it lives until the process exits.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
}

impl Server {
    /// Listens on a free loopback port and serves every connection on its own thread.
    pub(crate) fn start() -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        std::thread::Builder::new()
            .name("srv-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let spawned = std::thread::Builder::new()
                        .name("srv-conn".into())
                        .stack_size(256 << 10)
                        .spawn(move || serve(stream));
                    if let Err(err) = spawned {
                        eprintln!("server: cannot start a connection thread: {err}");
                    }
                }
            })?;
        Ok(Server { addr })
    }

    /// The `ws://` URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

fn serve(stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut path = String::new();
    #[expect(
        clippy::result_large_err,
        reason = "the signature of tungstenite's Callback"
    )]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        request.uri().path().clone_into(&mut path);
        Ok(response)
    };
    let Ok(ws) = tungstenite::accept_hdr(stream, callback) else {
        return;
    };
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    let number = |i: usize| parts.get(i).and_then(|n| n.parse::<usize>().ok());
    // Errors only mean that the client went away; the connection is over either way.
    let _ = match parts.first().copied() {
        Some("push") => match (number(1), number(2)) {
            (Some(n), Some(size)) => push(ws, n, size),
            _ => Ok(()),
        },
        Some("sink") => match number(1) {
            Some(n) => sink(ws, n),
            None => Ok(()),
        },
        _ => echo(ws),
    };
}

fn echo(mut ws: WebSocket<TcpStream>) -> tungstenite::Result<()> {
    loop {
        let message = ws.read()?;
        if message.is_text() || message.is_binary() {
            ws.send(message)?;
        }
    }
}

fn push(mut ws: WebSocket<TcpStream>, n: usize, size: usize) -> tungstenite::Result<()> {
    while !ws.read()?.is_binary() {}
    let payload = Bytes::from(vec![0xa5; size]);
    for _ in 0..n {
        // Buffered: tungstenite writes to the socket whenever its write buffer is full.
        ws.write(Message::Binary(payload.clone()))?;
    }
    ws.flush()?;
    drain(ws)
}

fn sink(mut ws: WebSocket<TcpStream>, n: usize) -> tungstenite::Result<()> {
    let mut count = 0;
    while count < n {
        let message = ws.read()?;
        if message.is_text() || message.is_binary() {
            count += 1;
        }
    }
    ws.send(Message::text("done"))?;
    drain(ws)
}

/// Reads until the client closes; tungstenite answers the close frame on the way.
fn drain(mut ws: WebSocket<TcpStream>) -> tungstenite::Result<()> {
    loop {
        ws.read()?;
    }
}
