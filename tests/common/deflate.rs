//! A raw permessage-deflate server for the tests: answers the handshake with whatever
//! `Sec-WebSocket-Extensions` a test asks for, and compresses and inflates with flate2 as
//! RFC 7692 says, so that every parameter and every misbehaviour can be scripted.

use std::io::{Read, Write};
use std::net::TcpStream;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::{accept_key, read_request, tcp_server};

/// The dropped tail of a sync flush.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Starts a server that answers the upgrade with `extensions` (no header if `None`) and then
/// runs `after` with the socket and the request head. Returns its `ws://` URL.
pub fn server<F>(extensions: Option<&str>, after: F) -> String
where
    F: Fn(TcpStream, String) + Send + Sync + 'static,
{
    let extensions = extensions.map(str::to_owned);
    let port = tcp_server(move |mut stream| {
        let Some(request) = read_request(&mut stream) else {
            return;
        };
        let accept = accept_key(&request).unwrap();
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n"
        );
        if let Some(extensions) = &extensions {
            response.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
        }
        response.push_str("\r\n");
        if stream.write_all(response.as_bytes()).is_ok() {
            after(stream, request);
        }
    });
    format!("ws://127.0.0.1:{port}/")
}

/// The value of `name` in an HTTP head, if present.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, value) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// One compressing side: raw DEFLATE with a window of `bits`, a sync flush per message.
pub struct Deflate {
    inner: Compress,
    reset: bool,
}

impl Deflate {
    pub fn new(bits: u8, no_context_takeover: bool) -> Self {
        Deflate {
            inner: Compress::new_with_window_bits(Compression::default(), false, bits),
            reset: no_context_takeover,
        }
    }

    /// The message compressed, without the flush's tail.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut consumed = 0;
        loop {
            let before = self.inner.total_in();
            self.inner
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .unwrap();
            consumed += (self.inner.total_in() - before) as usize;
            if consumed == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity() + 64);
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - 4);
        }
        if out.is_empty() {
            out.push(0);
        }
        if self.reset {
            self.inner.reset();
        }
        out
    }
}

/// One inflating side, with a window of `bits`.
pub struct Inflate {
    inner: Decompress,
}

impl Inflate {
    pub fn new(bits: u8) -> Self {
        Inflate {
            inner: Decompress::new_with_window_bits(false, bits),
        }
    }

    /// The message inflated from its compressed payload (tail added here).
    pub fn inflate(&mut self, data: &[u8]) -> Vec<u8> {
        let mut input = data.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(data.len() * 4 + 64);
        let mut consumed = 0;
        loop {
            let before = self.inner.total_in();
            self.inner
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                .unwrap();
            consumed += (self.inner.total_in() - before) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity() + 64);
        }
        out
    }
}

/// A server frame with RSV1 as given.
pub fn frame_rsv1(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = super::frame(fin, opcode, payload);
    if rsv1 {
        out[0] |= 0x40;
    }
    out
}

/// One frame from the client, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Reads one masked client frame; `None` at EOF.
pub fn read_frame(stream: &mut TcpStream) -> Option<ClientFrame> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    assert!(head[1] & 0x80 != 0, "client frame not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut mask = [0u8; 4];
    stream.read_exact(&mut mask).ok()?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).ok()?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Some(ClientFrame {
        fin: head[0] & 0x80 != 0,
        rsv1: head[0] & 0x40 != 0,
        opcode: head[0] & 0x0f,
        payload,
    })
}

/// Reads client frames until its close frame (answered) or EOF; returns the close code the
/// client sent, if it sent one.
pub fn close_code(stream: &mut TcpStream) -> Option<u16> {
    while let Some(frame) = read_frame(stream) {
        if frame.opcode == 0x8 {
            let code = (frame.payload.len() >= 2)
                .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
            let _ = stream.write_all(&super::frame(true, 0x8, &frame.payload));
            return code;
        }
    }
    None
}
