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
                continue;
            }
            let need = self.header_len();
            let take = (need - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have == need && self.header_len() == need {
                self.end_header()?;
            }
        }
        Ok(())
    }

    /// The length of the current header, as far as its first two bytes tell (2 until then).
    fn header_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let masked = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        let extended = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + extended + masked
    }

    fn end_header(&mut self) -> Result<(), &'static str> {
        let opcode = self.header[0] & 0x0f;
        let fin = self.header[0] & 0x80 != 0;
        if opcode == 8 {
            return Err("the client sent a close frame");
        }
        let len = match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().unwrap_or_default()),
            short => u64::from(short),
        };
        if fin && opcode < 8 {
            self.messages += 1;
        }
        self.skip = len;
        self.have = 0;
        Ok(())
    }
}
