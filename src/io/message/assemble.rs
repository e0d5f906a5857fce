//! A data message that spans frames, or is compressed: its bytes so far, inflated, and its text
//! checked as each frame comes, so that an invalid prefix fails at once.

use bytes::Bytes;
use tungstenite::Utf8Bytes;

use super::Failure;
use super::utf8::Utf8Stream;
use crate::deflate::{InflateError, Inflater};
use crate::event::{Message, Text};

/// A message whose last frame has not come yet (or whose one frame is compressed).
#[derive(Debug)]
pub(super) struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
    /// `data` checked as UTF-8 so far (text only).
    utf8: Utf8Stream,
}

impl Partial {
    pub(super) fn new(text: bool, compressed: bool) -> Self {
        Partial {
            text,
            compressed,
            data: Vec::new(),
            utf8: Utf8Stream::default(),
        }
    }

    pub(super) fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// The message's bytes so far (inflated).
    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    /// Where the check of an uncompressed text message stands, to go on with the payload of
    /// its next frame while that frame arrives; `None` for binary or compressed messages.
    pub(super) fn text_so_far(&self) -> Option<Utf8Stream> {
        (self.text && !self.compressed).then(|| self.utf8.clone())
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
        let before = self.data.len();
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
                self.utf8
                    .feed(&self.data[before..])
                    .map_err(|_| invalid_text())?;
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

pub(super) fn invalid_text() -> Failure {
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
