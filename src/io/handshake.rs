//! The stream during the HTTP upgrade, and the `Open` event made from its response.
//!
//! [`HeadLimit`] hands tungstenite the response head of a `101` and nothing after it, and keeps
//! the rest for the open connection. tungstenite would otherwise build the connection's read
//! buffer from its 4 KiB handshake buffer (every later read would be 4 KiB at most), and bytes
//! that came in the same packet as the head would be lost with that buffer. Where the head
//! ends is found by parsing it with httparse, as tungstenite itself does, so every status line
//! that tungstenite accepts is recognised. Other responses pass whole, body included, so that
//! tungstenite can report them.

use std::io::{self, Read, Write};

use tungstenite::WebSocket;
use tungstenite::handshake::client::Response;
use tungstenite::protocol::Role;

use super::stream::Stream;
use super::wire::Wire;
use crate::config::Config;
use crate::event::OpenEvent;

/// The most headers a response may have; tungstenite's own limit.
const MAX_HEADERS: usize = 124;

/// What is known of the response head so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// Not complete yet.
    Partial,
    /// A `101` whose head ends at this offset.
    Upgrade(usize),
    /// Any other response, or not HTTP: everything goes to tungstenite.
    Other,
}

#[derive(Debug)]
pub(super) struct HeadLimit {
    stream: Stream,
    received: Vec<u8>,
    served: usize,
    head: Head,
}

impl HeadLimit {
    /// Wraps `stream`, whose first bytes (from a proxy's answer) are already `received`.
    pub(super) fn with_received(stream: Stream, received: Vec<u8>) -> Self {
        let head = if received.is_empty() {
            Head::Partial
        } else {
            parse_head(&received)
        };
        HeadLimit {
            stream,
            received,
            served: 0,
            head,
        }
    }

    pub(super) fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// The WebSocket over the stream, starting with what came after the head, in a read
    /// buffer of the configured size.
    pub(super) fn into_websocket(self, config: &Config) -> WebSocket<Wire> {
        let rest = &self.received[self.served..];
        let mut part = Vec::with_capacity(config.read_buffer_size().max(rest.len()));
        part.extend_from_slice(rest);
        let ws_config = Some(config.websocket_config());
        let wire = Wire::new(self.stream, rest);
        WebSocket::from_partially_read(wire, part, Role::Client, ws_config)
    }

    /// Reads from the socket into `received`, and looks for the end of the head.
    fn receive(&mut self) -> io::Result<usize> {
        let start = self.received.len();
        self.received.resize(start + 4096, 0);
        let read = self.stream.read(&mut self.received[start..]);
        self.received.truncate(start + *read.as_ref().unwrap_or(&0));
        if self.head == Head::Partial {
            self.head = parse_head(&self.received);
        }
        read
    }
}

fn parse_head(bytes: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(end)) if response.code == Some(101) => Head::Upgrade(end),
        Ok(httparse::Status::Partial) => Head::Partial,
        Ok(httparse::Status::Complete(_)) | Err(_) => Head::Other,
    }
}

impl Read for HeadLimit {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Head::Upgrade(end) = self.head {
            if self.served == end {
                // tungstenite has the whole head; what follows is not its to read.
                return Err(io::ErrorKind::WouldBlock.into());
            }
        } else if self.served == self.received.len() && self.receive()? == 0 {
            return Ok(0);
        }
        let end = match self.head {
            Head::Upgrade(end) => end,
            Head::Partial | Head::Other => self.received.len(),
        };
        let n = out.len().min(end - self.served);
        out[..n].copy_from_slice(&self.received[self.served..self.served + n]);
        self.served += n;
        Ok(n)
    }
}

impl Write for HeadLimit {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// The `Open` event of a successful upgrade.
pub(super) fn open_event(response: Response) -> OpenEvent {
    let (parts, _body) = response.into_parts();
    let protocol = parts
        .headers
        .get("sec-websocket-protocol")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    OpenEvent::new(protocol, parts.headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMS: [&str; 5] = [
        "HTTP/1.1 101 Switching Protocols",
        "HTTP/1.1 101",
        "HTTP/1.1 101 ",
        "HTTP/1.1 101 OK",
        "HTTP/1.0 101 Whatever words",
    ];

    #[test]
    fn finds_the_end_of_every_legal_101_head_at_every_split() {
        for status_line in FORMS {
            let head =
                format!("{status_line}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
            let mut bytes = head.clone().into_bytes();
            bytes.extend_from_slice(b"\x81\x02hi");
            for cut in 0..bytes.len() {
                let partial = parse_head(&bytes[..cut]);
                let whole = parse_head(&bytes);
                assert_eq!(whole, Head::Upgrade(head.len()), "{status_line:?}");
                if cut < head.len() {
                    assert_eq!(partial, Head::Partial, "{status_line:?} cut at {cut}");
                } else {
                    assert_eq!(
                        partial,
                        Head::Upgrade(head.len()),
                        "{status_line:?} cut at {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_responses_and_garbage_pass_whole() {
        assert_eq!(
            parse_head(b"HTTP/1.1 404 Not Found\r\n\r\nbody"),
            Head::Other
        );
        assert_eq!(parse_head(b"HTTP/1.1 200\r\n\r\n"), Head::Other);
        assert_eq!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"), Head::Other);
        assert_eq!(
            parse_head(b"HTTP/1.1 101 x\r\nbad header\r\n\r\n"),
            Head::Other
        );
    }
}
