//! Counts the data messages in the bytes a client sends, without unmasking or copying their
//! payloads: what lets the `/sink` server keep up with any client.

/// A frame parser that keeps only the frame headers, fed with bytes in any cuts.
#[derive(Debug, Default)]
pub(crate) struct FrameCount {
    /// The header bytes of the frame being read, while it is incomplete.
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    messages: usize,
}

impl FrameCount {
    /// The complete data messages seen so far (final frames of text, binary or continuation).
    pub(crate) fn messages(&self) -> usize {
        self.messages
    }

    /// True between frames: the next byte, if any, starts a frame.
    pub(crate) fn at_boundary(&self) -> bool {
        self.have == 0 && self.skip == 0
    }

    /// Takes the next bytes of the stream.
    ///
    /// # Errors
    /// When a close frame comes: the peer is ending the connection.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), &'static str> {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let take = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = &bytes[take..];
                self.skip -= take as u64;
            } else if let Some((header_len, len)) =
                (self.have == 0).then(|| header_at(bytes)).flatten()
            {
                self.end_frame(bytes[0], len)?;
                bytes = &bytes[header_len..];
            } else {
                // A header cut by the end of a read: gathered byte by byte, once per read.
                self.header[self.have] = bytes[0];
                self.have += 1;
                bytes = &bytes[1..];
                if let Some((_, len)) = header_at(&self.header[..self.have]) {
                    self.have = 0;
                    self.end_frame(self.header[0], len)?;
                }
            }
        }
        Ok(())
    }

    /// Counts the frame whose header starts with `first` and is followed by `len` bytes.
    fn end_frame(&mut self, first: u8, len: u64) -> Result<(), &'static str> {
        let opcode = first & 0x0f;
        if opcode == 8 {
            return Err("the client sent a close frame");
        }
        if first & 0x80 != 0 && opcode < 8 {
            self.messages += 1;
        }
        self.skip = len;
        Ok(())
    }
}

/// The length of the frame header at the start of `bytes` and the payload length it gives,
/// if `bytes` holds all of it.
fn header_at(bytes: &[u8]) -> Option<(usize, u64)> {
    let second = *bytes.get(1)?;
    let masked = if second & 0x80 != 0 { 4 } else { 0 };
    let (extended, len) = match second & 0x7f {
        126 => (
            2,
            u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
        ),
        127 => (8, u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)),
        short => (0, u64::from(short)),
    };
    let header_len = 2 + extended + masked;
    (bytes.len() >= header_len).then_some((header_len, len))
}
