//! The stream during the HTTP upgrade, and the `Open` event made from its response.
//!
//! [`UpgradeStream`] hands tungstenite the response head of a `101` and nothing after it, and keeps
//! the rest for the open connection. tungstenite would otherwise build the connection's read
//! buffer from its 4 KiB handshake buffer (every later read would be 4 KiB at most), and bytes
//! that came in the same packet as the head would be lost with that buffer. Where the head
//! ends is found by parsing it with httparse, as tungstenite itself does, so every status line
//! that tungstenite accepts is recognised. Other responses pass whole, body included, so that
//! tungstenite can report them.
//!
//! On the way out it writes the request head we built ([`super::request`]) in place of
//! tungstenite's, which it drops: tungstenite logs its request at trace level, and the query,
//! the configured headers and the credentials must never reach a log.

use std::io::{self, Read, Write};

use tungstenite::handshake::client::Response;

use super::message::{Connection, Limits};
use super::stream::Stream;
use super::wire::Wire;
use crate::config::Config;
use crate::deflate::Inflater;
use crate::event::OpenEvent;
use crate::redact;

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

/// The socket during the upgrade: writes our request head in place of tungstenite's, and hands
/// tungstenite the response head and nothing after it.
pub(super) struct UpgradeStream {
    stream: Stream,
    received: Vec<u8>,
    served: usize,
    head: Head,
    outgoing: Outgoing,
}

/// The request on its way out: ours replaces tungstenite's. (No `Debug`: it holds the
/// credentials.)
#[derive(Default)]
struct Outgoing {
    /// tungstenite's request is still coming in: its bytes are dropped up to its blank line.
    swallowing: bool,
    /// The last bytes of tungstenite's request seen so far (at most 3), to find a blank line
    /// split between writes.
    seen: Vec<u8>,
    /// Our request bytes not yet written to the stream.
    bytes: Vec<u8>,
}

impl Outgoing {
    /// Takes bytes of tungstenite's request; returns how many belong to it (up to its blank
    /// line). Outside the request, none.
    fn swallow(&mut self, buf: &[u8]) -> usize {
        if !self.swallowing {
            return 0;
        }
        let kept = self.seen.len();
        self.seen.extend_from_slice(buf);
        match self.seen.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => {
                self.swallowing = false;
                self.seen.clear();
                at + 4 - kept
            }
            None => {
                let from = self.seen.len().saturating_sub(3);
                self.seen.drain(..from);
                buf.len()
            }
        }
    }

    /// Writes our bytes; `WouldBlock` if `out` is full.
    fn push(&mut self, out: &mut impl Write) -> io::Result<()> {
        while !self.bytes.is_empty() {
            match out.write(&self.bytes)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => {
                    self.bytes.drain(..n);
                }
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for UpgradeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeStream")
            .field("stream", &self.stream)
            .field("received", &self.received.len())
            .field("served", &self.served)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl UpgradeStream {
    /// Wraps `stream`, whose first bytes (from a proxy's answer) are already `received`.
    pub(super) fn with_received(stream: Stream, received: Vec<u8>) -> Self {
        let head = if received.is_empty() {
            Head::Partial
        } else {
            parse_head(&received)
        };
        UpgradeStream {
            stream,
            received,
            served: 0,
            head,
            outgoing: Outgoing::default(),
        }
    }

    /// Writes `head` (a whole request head) instead of the request that tungstenite writes,
    /// which is dropped (see the module docs).
    pub(super) fn with_request(mut self, head: Vec<u8>) -> Self {
        self.outgoing = Outgoing {
            swallowing: true,
            seen: Vec::new(),
            bytes: head,
        };
        self
    }

    /// Writes our request and reads until the response head is complete, or the server
    /// closed: `Ok(true)` then, `Ok(false)` while the socket has to wait. tungstenite is not
    /// needed until then: its handshake (with 4 KiB of buffer) starts only once the head is
    /// here and ends in that same step, instead of living through the server's round trip,
    /// so that thousands of handshakes at once hold 1 KiB each, not 5.
    pub(super) fn await_head(&mut self) -> io::Result<bool> {
        let sent = self
            .outgoing
            .push(&mut self.stream)
            .and_then(|()| self.stream.flush());
        match sent {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) => return Err(err),
        }
        while self.head == Head::Partial {
            match self.receive() {
                Ok(0) => return Ok(true), // tungstenite reads the end and reports it
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }

    pub(super) fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// The open connection over the stream, starting with what came after the head, reading
    /// in steps of the configured buffer size.
    pub(super) fn into_connection(self, config: &Config, inflater: Option<Inflater>) -> Connection {
        let limits = Limits {
            max_frame: config.max_frame_size(),
            max_message: config.max_message_size(),
            read_chunk: config.read_buffer_size(),
        };
        let rest = &self.received[self.served..];
        Connection::new(Wire::new(self.stream), rest, limits, inflater)
    }

    /// Reads from the socket into `received`, and looks for the end of the head.
    fn receive(&mut self) -> io::Result<usize> {
        let start = self.received.len();
        // Most response heads take a few hundred bytes: the first read is small, so that
        // thousands of handshakes at once hold little.
        let step = if start == 0 { 1024 } else { 4096 };
        self.received.resize(start + step, 0);
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

impl Read for UpgradeStream {
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

impl Write for UpgradeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let swallowed = self.outgoing.swallow(buf);
        // Ours goes first, whatever follows; `flush` (which tungstenite calls after its
        // request) writes what the socket does not take now.
        match self.outgoing.push(&mut self.stream) {
            Err(err) if err.kind() != io::ErrorKind::WouldBlock => return Err(err),
            Err(_) if swallowed == 0 => return Err(io::ErrorKind::WouldBlock.into()),
            _ => {}
        }
        if swallowed > 0 {
            return Ok(swallowed);
        }
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.outgoing.push(&mut self.stream)?;
        self.stream.flush()
    }
}

/// The `Open` event of a successful upgrade.
pub(super) fn open_event(response: Response) -> OpenEvent {
    let (mut parts, _body) = response.into_parts();
    redact::mark_sensitive(&mut parts.headers);
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

    /// A stream that takes at most 3 bytes per write and says `WouldBlock` every other time.
    struct Trickle {
        written: Vec<u8>,
        block: bool,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.block = !self.block;
            if self.block {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(3);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn our_request_replaces_tungstenites_at_any_split() {
        let theirs = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let ours = b"GET /x?token=t HTTP/1.1\r\nHost: h\r\nCookie: c\r\n\r\n";
        for piece in 1..theirs.len() {
            let mut outgoing = Outgoing {
                swallowing: true,
                seen: Vec::new(),
                bytes: ours.to_vec(),
            };
            let mut out = Trickle {
                written: Vec::new(),
                block: false,
            };
            // As UpgradeStream does: swallow each write, push what can go, then flush to the end.
            let mut swallowed = 0;
            for chunk in theirs.chunks(piece) {
                swallowed += outgoing.swallow(chunk);
                let _ = outgoing.push(&mut out);
            }
            assert_eq!(swallowed, theirs.len(), "pieces of {piece}");
            assert!(!outgoing.swallowing, "pieces of {piece}");
            for _ in 0..1000 {
                if outgoing.push(&mut out).is_ok() {
                    break;
                }
            }
            assert_eq!(out.written, ours, "pieces of {piece}");
            // After the request, writes are not swallowed.
            assert_eq!(outgoing.swallow(b"\x81\x00"), 0);
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
