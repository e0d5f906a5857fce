//! The loopback server both clients talk to: plain blocking tungstenite, one thread per
//! connection, on 127.0.0.1 only. The request path picks what it does:
//!
//! - `/echo` sends every text and binary message back;
//! - `/push/<n>/<size>` writes `n` binary messages of `size` bytes as fast as it can: it
//!   encodes one chunk of frames (about 256 KiB), sends the text `ready`, waits for the
//!   client's message and then writes the chunk over and over with `write_all`, so that the
//!   server spends next to nothing per message and is never the slower side;
//! - `/sink/<n>` sends the text `ready`, then counts the client's data messages from the frame
//!   headers alone (no unmasking, no copy: [`FrameCount`]), reading 256 KiB per call, and
//!   sends the text `done` once it has `n` of them;
//! - `/bursts/<n>/<k>` sends the text `ready`, then `n` times counts `k` of the client's data
//!   messages as `/sink` does and answers each `k` with the text `done`;
//! - `/json/<n>/<size>` waits for one message, then writes `n` JSON-like text messages of
//!   `size` bytes, compressed (permessage-deflate, context takeover, a 15-bit window) when the
//!   client offered it, and last a text `wire=<bytes>`: the frame bytes it wrote for them.
//!   The frames are made first, then the server sends the text `ready` and waits for the
//!   client's message, so that compressing is not part of what the client times.
//!
//! Every mode then reads until the client closes, so that the close handshake completes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use flate2::{Compress, Compression, FlushCompress};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::{Message, WebSocket};

use crate::frame_count::FrameCount;

/// A running server; it lives until the process exits.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
}

impl Server {
    /// Listens on a free loopback port and serves every connection on its own thread.
    pub(crate) fn start() -> io::Result<Server> {
        let listener = listen_loopback()?;
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
    let mut deflate = false;
    #[expect(
        clippy::result_large_err,
        reason = "the signature of tungstenite's Callback"
    )]
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        request.uri().path().clone_into(&mut path);
        // Only the JSON workload agrees to permessage-deflate: the others stay uncompressed.
        let offered = request
            .headers()
            .get("sec-websocket-extensions")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("permessage-deflate"));
        if offered && path.starts_with("/json/") {
            deflate = true;
            response.headers_mut().insert(
                "sec-websocket-extensions",
                tungstenite::http::HeaderValue::from_static("permessage-deflate"),
            );
        }
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
        Some("bursts") => match (number(1), number(2)) {
            (Some(n), Some(k)) => bursts(ws, n, k),
            _ => Ok(()),
        },
        Some("json") => match (number(1), number(2)) {
            (Some(n), Some(size)) => json(ws, n, size, deflate),
            _ => Ok(()),
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
    let chunk = FramesChunk::new(size, n, None)?;
    ws.send(Message::text("ready"))?;
    while !ws.read()?.is_binary() {}
    chunk.write(ws.get_mut(), n)?;
    drain(ws)
}

/// The bytes `/push/<n>/<size>` writes after `ready`: `n` unmasked binary frames.
pub(crate) fn push_bytes(n: usize, size: usize) -> usize {
    n * (FrameHeader::default().len(size as u64) + size)
}

/// About how many bytes of frames go into one write.
const CHUNK_BYTES: usize = 256 << 10;

/// Copies of one binary frame back to back, encoded before the clock starts and then written
/// over and over: the cheapest way to send many messages.
#[derive(Debug)]
pub(crate) struct FramesChunk {
    bytes: Vec<u8>,
    frames: usize,
    frame_len: usize,
}

impl FramesChunk {
    /// A chunk of frames with `size`-byte payloads, masked with `mask` if given (as a client
    /// must), of about 256 KiB but no more frames than `n`.
    pub(crate) fn new(size: usize, n: usize, mask: Option<[u8; 4]>) -> io::Result<FramesChunk> {
        let mut frame = Vec::with_capacity(size + 14);
        let header = FrameHeader {
            opcode: OpCode::Data(Data::Binary),
            mask,
            ..FrameHeader::default()
        };
        header
            .format(size as u64, &mut frame)
            .map_err(io::Error::other)?;
        // Any bytes are a valid binary payload, masked or not.
        frame.resize(frame.len() + size, 0xa5);
        let frames = n.min(CHUNK_BYTES / frame.len()).max(1);
        Ok(FramesChunk {
            bytes: frame.repeat(frames),
            frames,
            frame_len: frame.len(),
        })
    }

    /// Writes `n` frames to `socket`.
    pub(crate) fn write(&self, socket: &mut impl Write, n: usize) -> io::Result<()> {
        let mut left = n;
        while left >= self.frames {
            socket.write_all(&self.bytes)?;
            left -= self.frames;
        }
        socket.write_all(&self.bytes[..left * self.frame_len])
    }
}

fn sink(mut ws: WebSocket<TcpStream>, n: usize) -> tungstenite::Result<()> {
    ws.send(Message::text("ready"))?;
    // The client sends nothing before `ready`, so tungstenite holds none of its frames: they
    // all come through the socket, and the stream is between frames again once counted.
    let socket = ws.get_mut();
    let mut count = FrameCount::default();
    let mut buffer = vec![0; SINK_READ_BYTES];
    while count.messages() < n || !count.at_boundary() {
        let read = socket.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        count.feed(&buffer[..read]).map_err(io::Error::other)?;
    }
    if count.messages() != n {
        let extra = format!("{} messages, not {n}", count.messages());
        return Err(io::Error::other(extra).into());
    }
    ws.send(Message::text("done"))?;
    drain(ws)
}

/// `/bursts/<n>/<k>`: as [`sink`], answering every `k` messages.
fn bursts(mut ws: WebSocket<TcpStream>, n: usize, k: usize) -> tungstenite::Result<()> {
    ws.send(Message::text("ready"))?;
    let mut count = FrameCount::default();
    let mut buffer = vec![0; SINK_READ_BYTES];
    for burst in 1..=n {
        // The client sends the next burst only after this answer: the stream is between
        // frames once a burst is counted.
        while count.messages() < burst * k || !count.at_boundary() {
            let read = ws.get_mut().read(&mut buffer)?;
            if read == 0 {
                return Ok(());
            }
            count.feed(&buffer[..read]).map_err(io::Error::other)?;
        }
        if count.messages() != burst * k {
            let extra = format!("{} messages, not {}", count.messages(), burst * k);
            return Err(io::Error::other(extra).into());
        }
        ws.send(Message::text("done"))?;
    }
    drain(ws)
}

/// How many bytes the sink server reads per call.
const SINK_READ_BYTES: usize = CHUNK_BYTES;

/// Reads until the client closes; tungstenite answers the close frame on the way.
fn drain(mut ws: WebSocket<TcpStream>) -> tungstenite::Result<()> {
    loop {
        ws.read()?;
    }
}

/// JSON-like text of `size` bytes, message `i` of a feed: records that differ in their
/// numbers, as a market feed's do.
pub(crate) fn json_text(i: usize, size: usize) -> String {
    let mut text = String::with_capacity(size + 160);
    text.push('[');
    let mut seed = (i as u64).wrapping_mul(6_364_136_223_846_793_005) | 1;
    let mut j = 0u64;
    while text.len() < size {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = seed >> 33;
        let side = if r & 1 == 0 { "buy" } else { "sell" };
        text.push_str(&format!(
            r#"{{"seq":{},"symbol":"BTC-USD","price":"4{:04}.{:02}","qty":"0.{:04}","side":"{side}","ts":17000000{:05}}},"#,
            i as u64 * 1000 + j,
            r % 10_000,
            r % 100,
            (r >> 8) % 10_000,
            (r >> 16) % 100_000,
        ));
        j += 1;
    }
    text.truncate(size.saturating_sub(1));
    text.push(']');
    text
}

fn json(
    mut ws: WebSocket<TcpStream>,
    n: usize,
    size: usize,
    deflate: bool,
) -> tungstenite::Result<()> {
    let mut compress = Compress::new_with_window_bits(Compression::default(), false, 15);
    let mut frames = Vec::new();
    let mut payload = Vec::new();
    for i in 0..n {
        let text = json_text(i, size);
        payload.clear();
        if deflate {
            // A sync flush per message, its empty-block tail dropped (RFC 7692 §7.2.1).
            payload.reserve(text.len() + 64);
            let mut consumed = 0;
            loop {
                let before = compress.total_in();
                compress
                    .compress_vec(
                        &text.as_bytes()[consumed..],
                        &mut payload,
                        FlushCompress::Sync,
                    )
                    .map_err(io::Error::other)?;
                consumed += (compress.total_in() - before) as usize;
                if consumed == text.len() && payload.len() < payload.capacity() {
                    break;
                }
                payload.reserve(payload.capacity());
            }
            payload.truncate(payload.len() - 4);
        } else {
            payload.extend_from_slice(text.as_bytes());
        }
        let header = FrameHeader {
            rsv1: deflate,
            opcode: OpCode::Data(Data::Text),
            ..FrameHeader::default()
        };
        header.format(payload.len() as u64, &mut frames)?;
        frames.extend_from_slice(&payload);
    }
    ws.send(Message::text("ready"))?;
    while !ws.read()?.is_binary() {}
    ws.get_mut().write_all(&frames)?;
    ws.send(Message::text(format!("wire={}", frames.len())))?;
    drain(ws)
}

/// A listener on a free port of 127.0.0.1 with a long accept queue: std's is 128, and the
/// many workload's clients on shared threads connect thousands at once (the kernel would drop
/// their SYNs, and they would retry a second later, or time out).
fn listen_loopback() -> std::io::Result<TcpListener> {
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}
