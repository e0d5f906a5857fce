//! A data message that spans frames, or is compressed: its bytes so far, inflated, and how
//! far its text has been found valid, so that an invalid prefix fails at once.

use bytes::Bytes;
use tungstenite::Utf8Bytes;

use super::Failure;
use crate::event::{Message, Text};
use crate::io::deflate::{InflateError, Inflater};

/// A message whose last frame has not come yet (or whose one frame is compressed).
#[derive(Debug)]
pub(super) struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
    /// `data[..validated]` is valid UTF-8 (text only); the rest may be a character cut short.
    validated: usize,
}

impl Partial {
    pub(super) fn new(text: bool, compressed: bool) -> Self {
        Partial {
            text,
            compressed,
            data: Vec::new(),
            validated: 0,
        }
    }

    pub(super) fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// The message's bytes so far (inflated).
    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    /// Adds one frame's payload; inflates it when the message is compressed, never past
    /// `limit`. Returns the message after its last frame.
    pub(super) fn push(
        &mut self,
        payload: &[u8],
        last: bool,
        inflater: Option<&mut Inflater>,
        limit: usize,
    ) -> Result<Option<Message>, Failure> {
        match (self.compressed, inflater) {
            (true, Some(inflater)) => {
                let inflated = inflater
                    .inflate(payload, &mut self.data, limit)
                    .and_then(|()| {
                        if last {
                            inflater.finish(&mut self.data, limit)
                        } else {
                            Ok(())
                        }
                    });
                match inflated {
                    Ok(()) => {}
                    Err(InflateError::TooBig) => return Err(Failure::too_big(limit)),
                    Err(InflateError::Corrupt) => {
                        return Err(Failure::new(1007, "the server sent corrupt deflate data"));
                    }
                }
            }
            _ => self.data.extend_from_slice(payload),
        }
        if !last {
            if self.text {
                self.check_prefix()?;
            }
            return Ok(None);
        }
        let data = std::mem::take(&mut self.data);
        if self.text {
            let text = String::from_utf8(data).map_err(|_| invalid_text())?;
            Ok(Some(Message::Text(Text::from(text))))
        } else {
            Ok(Some(Message::Binary(Bytes::from(data))))
        }
    }

    /// Fails on the first byte that no valid text can have; a character cut short at the end
    /// may still be completed by the next frame.
    fn check_prefix(&mut self) -> Result<(), Failure> {
        match std::str::from_utf8(&self.data[self.validated..]) {
            Ok(_) => self.validated = self.data.len(),
            Err(err) if err.error_len().is_none() => self.validated += err.valid_up_to(),
            Err(_) => return Err(invalid_text()),
        }
        Ok(())
    }
}

/// A text message in one uncompressed frame: checked once, not copied.
pub(super) fn single(text: bool, payload: Bytes) -> Result<Message, Failure> {
    if text {
        let text = Utf8Bytes::try_from(payload).map_err(|_| invalid_text())?;
        Ok(Message::Text(Text::from_tungstenite(text)))
    } else {
        Ok(Message::Binary(payload))
    }
}

fn invalid_text() -> Failure {
    Failure::new(1007, "the server sent invalid UTF-8 in a text message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_prefix_fails_before_the_last_frame() {
        let mut partial = Partial::new(true, false);
        // "κ" is CE BA: cut between frames, it is fine.
        assert!(partial.push(b"ab\xce", false, None, 100).unwrap().is_none());
        assert!(partial.push(b"\xba", false, None, 100).unwrap().is_none());
        assert!(partial.push(b"\xff", false, None, 100).is_err());
        let mut cut = Partial::new(true, false);
        assert!(cut.push(b"\xce", false, None, 100).unwrap().is_none());
        assert!(cut.push(b"", true, None, 100).is_err());
    }
}
