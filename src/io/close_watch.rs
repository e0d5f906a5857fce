//! Sees the server's close code exactly as it was sent. tungstenite replaces a code that may
//! not be sent (1005, 1006, 1015, under 1000, ...) with 1002 "Protocol violation" before we see
//! the frame, and passes it through unchanged when it answers our own close; neither can be
//! told apart from a server that really sent that. So the bytes read from the socket are
//! followed frame by frame here: headers are parsed, payloads skipped, and the first close
//! frame's code is kept. The frames themselves are still parsed, checked and unmasked by
//! tungstenite; this only reads the lengths.

/// The first close frame the server sent, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerClose {
    /// A close frame with no payload.
    NoCode,
    /// A close frame with this code.
    Code(u16),
}

#[derive(Debug, Default)]
pub(crate) struct CloseWatch {
    /// The header of the frame being read, as far as it has arrived (at most 14 bytes).
    header: [u8; 14],
    header_len: usize,
    /// Payload bytes of the current frame still to skip, once its header is complete.
    payload_left: Option<u64>,
    /// Whether the current frame is the first close frame, and its code bytes so far.
    close_code: Option<([u8; 2], usize)>,
    first_close: Option<PeerClose>,
}

const OPCODE_CLOSE: u8 = 0x8;

impl CloseWatch {
    pub(crate) fn first_close(&self) -> Option<PeerClose> {
        self.first_close
    }

    /// Follows `bytes`, the next bytes read from the server.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.first_close.is_none() {
            match self.payload_left {
                None => {
                    let take = (self.header_needed() - self.header_len).min(bytes.len());
                    self.header[self.header_len..self.header_len + take]
                        .copy_from_slice(&bytes[..take]);
                    self.header_len += take;
                    bytes = &bytes[take..];
                    if self.header_len == self.header_needed() {
                        self.start_payload();
                    }
                }
                Some(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    if let Some((code, have)) = &mut self.close_code {
                        let copy = (2 - *have).min(take);
                        code[*have..*have + copy].copy_from_slice(&bytes[..copy]);
                        *have += copy;
                    }
                    bytes = &bytes[take..];
                    self.payload_left = Some(left - take as u64);
                }
            }
            if self.payload_left == Some(0) {
                self.end_frame();
            }
        }
    }

    /// How long the current header is, as far as its first two bytes tell.
    fn header_needed(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        let masked = self.header[1] & 0x80 != 0;
        let length_bytes = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + length_bytes + if masked { 4 } else { 0 }
    }

    fn start_payload(&mut self) {
        let length = match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().expect("eight bytes")),
            short => u64::from(short),
        };
        self.close_code = (self.header[0] & 0x0f == OPCODE_CLOSE).then_some(([0; 2], 0));
        self.payload_left = Some(length);
    }

    fn end_frame(&mut self) {
        if let Some((code, have)) = self.close_code.take() {
            self.first_close = Some(match have {
                2 => PeerClose::Code(u16::from_be_bytes(code)),
                // One byte is no valid close payload; tungstenite fails the connection.
                _ => PeerClose::NoCode,
            });
        }
        self.header_len = 0;
        self.payload_left = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n <= 0xffff => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    fn stream() -> Vec<u8> {
        let mut bytes = frame(1, b"hello");
        bytes.extend(frame(2, &vec![7u8; 300]));
        bytes.extend(frame(9, b"ping"));
        bytes.extend(frame(2, &vec![1u8; 70_000]));
        bytes.extend(frame(8, &[0x03, 0xed, b'b', b'y', b'e'])); // 1005, which may not be sent
        bytes.extend(frame(8, &1000u16.to_be_bytes()));
        bytes
    }

    #[test]
    fn finds_the_first_close_code_at_every_split() {
        let bytes = stream();
        for split in 0..bytes.len() {
            let mut watch = CloseWatch::default();
            watch.feed(&bytes[..split]);
            watch.feed(&bytes[split..]);
            assert_eq!(watch.first_close(), Some(PeerClose::Code(1005)), "{split}");
        }
    }

    #[test]
    fn byte_by_byte_and_without_a_code() {
        let mut bytes = frame(1, b"x");
        bytes.extend(frame(8, b""));
        let mut watch = CloseWatch::default();
        for byte in &bytes {
            assert_eq!(watch.first_close(), None);
            watch.feed(std::slice::from_ref(byte));
        }
        assert_eq!(watch.first_close(), Some(PeerClose::NoCode));
    }
}
