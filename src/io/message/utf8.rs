//! UTF-8 checked piece by piece, as the bytes of a text message arrive: an invalid byte fails
//! at once, while a character cut between two pieces waits for the rest of it.

/// The bytes fed so far are valid UTF-8, except perhaps a character cut short at their end.
#[derive(Debug, Clone, Default)]
pub(super) struct Utf8Stream {
    /// The start of a character cut short by the end of the last piece.
    cut: [u8; 4],
    cut_len: usize,
}

/// The bytes fed are not UTF-8, whatever may follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidUtf8;

impl Utf8Stream {
    /// Checks the next piece.
    pub(super) fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.cut_len > 0 {
            // Complete the character cut short before going on.
            let width = char_width(self.cut[0]);
            let take = (width - self.cut_len).min(piece.len());
            self.cut[self.cut_len..self.cut_len + take].copy_from_slice(&piece[..take]);
            self.cut_len += take;
            piece = &piece[take..];
            match std::str::from_utf8(&self.cut[..self.cut_len]) {
                Ok(_) => self.cut_len = 0,
                Err(err) if err.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(err) if err.error_len().is_none() => {
                let rest = &piece[err.valid_up_to()..];
                self.cut[..rest.len()].copy_from_slice(rest);
                self.cut_len = rest.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }
}

/// The length of the character that `lead` starts; `lead` began a valid but cut-short
/// sequence, so it is a lead byte of 2 to 4.
fn char_width(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces`; `Ok(complete)` when every piece passed.
    fn feed_all(pieces: &[&[u8]]) -> Result<bool, InvalidUtf8> {
        let mut stream = Utf8Stream::default();
        for piece in pieces {
            stream.feed(piece)?;
        }
        // Whether the bytes fed end with a whole character.
        Ok(stream.cut_len == 0)
    }

    #[test]
    fn valid_text_passes_cut_at_every_byte() {
        let text = "aé€😀z, κόσμε".as_bytes();
        for cut in 0..=text.len() {
            for second in cut..=text.len() {
                let pieces = [&text[..cut], &text[cut..second], &text[second..]];
                assert_eq!(feed_all(&pieces), Ok(true), "cut at {cut} and {second}");
            }
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(feed_all(&bytes), Ok(true));
    }

    #[test]
    fn a_cut_character_is_incomplete_until_its_last_byte() {
        assert_eq!(feed_all(&[b"a\xf0\x9f", b"\x98"]), Ok(false));
        assert_eq!(feed_all(&[b"a\xf0\x9f", b"\x98", b"\x80"]), Ok(true));
    }

    #[test]
    fn an_invalid_byte_fails_in_the_piece_that_holds_it() {
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.feed(b"ok \xce"), Ok(()));
        assert_eq!(stream.feed(b"\xba"), Ok(()));
        assert_eq!(stream.feed(b" \xff rest"), Err(InvalidUtf8));
        // A cut character completed wrongly, and one whose continuation is not one.
        assert_eq!(feed_all(&[b"\xe2\x82", b"A"]), Err(InvalidUtf8));
        assert_eq!(feed_all(&[b"\xe2", b"\x28\xa1"]), Err(InvalidUtf8));
        // Surrogates and code points over U+10FFFF fail at the first byte that shows it.
        assert_eq!(feed_all(&[b"\xed", b"\xa0"]), Err(InvalidUtf8));
        assert_eq!(feed_all(&[b"\xf4", b"\x90"]), Err(InvalidUtf8));
        assert_eq!(feed_all(&[b"\xc0"]), Err(InvalidUtf8));
    }

    #[test]
    fn agrees_with_the_standard_library_on_every_two_byte_split() {
        let samples: [&[u8]; 6] = [
            b"\xce\xba\xe1\xbd\xb9\xcf\x83",
            b"\xf0\x90\x80\x80",
            b"\xf4\x8f\xbf\xbf",
            b"\xef\xbf\xbf\xed\x9f\xbf",
            b"\xe0\x80\xaf",
            b"\xf8\x88\x80\x80\x80",
        ];
        for sample in samples {
            let valid = std::str::from_utf8(sample).is_ok();
            for cut in 0..=sample.len() {
                let result = feed_all(&[&sample[..cut], &sample[cut..]]);
                assert_eq!(result == Ok(true), valid, "{sample:x?} cut at {cut}");
            }
        }
    }
}
