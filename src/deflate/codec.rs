//! The permessage-deflate codec (RFC 7692 §7.2): raw DEFLATE, one sync flush per message, with
//! the flush's empty stored block (`00 00 ff ff`) taken off on the way out and put back on
//! the way in.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The tail of a sync flush, which RFC 7692 §7.2.1 has the sender drop.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The most a single inflate call may add to the output before the limit is looked at again.
const STEP: usize = 64 << 10;

/// Compresses outgoing messages for one connection.
pub(crate) struct Deflater {
    inner: Compress,
    no_context_takeover: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor with a window of `window_bits` (9 to 15); with `no_context_takeover`,
    /// every message starts from an empty window.
    pub(crate) fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Deflater {
            inner: Compress::new_with_window_bits(
                Compression::default(),
                false,
                window_bits.clamp(9, 15),
            ),
            no_context_takeover,
        }
    }

    /// Appends the compressed `payload` to `out`, without the flush's tail.
    pub(crate) fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let mut consumed = 0;
        loop {
            out.reserve((payload.len() - consumed) / 2 + 64);
            let before = self.inner.total_in();
            // Writing into a Vec with room cannot fail: the stream is ours and well formed.
            let _ = self
                .inner
                .compress_vec(&payload[consumed..], out, FlushCompress::Sync);
            consumed += (self.inner.total_in() - before) as usize;
            // The flush is complete once all input is in and the output was not filled up.
            if consumed == payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // A flush with nothing new to flush writes nothing; an empty message is one empty
            // block (RFC 7692 §7.2.3.6).
            out.push(0x00);
        }
        if self.no_context_takeover {
            self.inner.reset();
        }
    }
}

/// Why inflating failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The message grew over the limit (close code 1009).
    TooBig,
    /// Not valid DEFLATE data (close code 1007).
    Corrupt,
}

/// Inflates incoming messages for one connection.
pub(crate) struct Inflater {
    inner: Decompress,
    /// The sender drops its window after each message: so may we.
    reset_after_message: bool,
    /// The stream ended with a final block: the next message starts a new one.
    ended: bool,
    window_bits: u8,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("window_bits", &self.window_bits)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decompressor for a sender with a window of `window_bits` (8, which zlib does not
    /// take for inflating, gets 9: a larger window decodes everything a smaller one makes).
    pub(crate) fn new(window_bits: u8, reset_after_message: bool) -> Self {
        let window_bits = window_bits.clamp(9, 15);
        Inflater {
            inner: Decompress::new_with_window_bits(false, window_bits),
            reset_after_message,
            ended: false,
            window_bits,
        }
    }

    /// Inflates one frame's `input`, appending to `out`, which may not grow over `limit`.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let mut consumed = 0;
        while consumed < input.len() && !self.ended {
            if out.len() == out.capacity() {
                if out.len() >= limit {
                    // Full at the limit, and more to come: one byte more is over it.
                    return self.more_than(&input[consumed..]);
                }
                let guess = (input.len() - consumed).saturating_mul(8).max(out.len());
                out.reserve_exact(guess.clamp(1024, STEP).min(limit - out.len()));
            }
            let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress_vec(&input[consumed..], out, FlushDecompress::None)
                .map_err(|_| InflateError::Corrupt)?;
            consumed += (self.inner.total_in() - before_in) as usize;
            let produced = self.inner.total_out() != before_out;
            if status == Status::StreamEnd {
                self.ended = true;
            } else if !produced && self.inner.total_in() == before_in && out.len() < out.capacity()
            {
                return Err(InflateError::Corrupt);
            }
        }
        // Input may be all taken while output is still held back: drain it.
        self.drain(out, limit)
    }

    /// The message's last frame was inflated: adds the dropped flush tail and takes what it
    /// releases.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        let result = if self.ended {
            Ok(())
        } else {
            self.inflate(&TAIL, out, limit)
        };
        if self.ended || self.reset_after_message {
            self.inner.reset(false);
            self.ended = false;
        }
        result
    }

    fn drain(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        while !self.ended && out.len() == out.capacity() {
            if out.len() >= limit {
                return self.more_than(&[]);
            }
            // Growing with the message: flate2 zeroes the room it is given on every call.
            out.reserve_exact(out.len().clamp(1024, STEP).min(limit - out.len()));
            let before_out = self.inner.total_out();
            let status = self
                .inner
                .decompress_vec(&[], out, FlushDecompress::None)
                .map_err(|_| InflateError::Corrupt)?;
            if status == Status::StreamEnd {
                self.ended = true;
            }
            if self.inner.total_out() == before_out {
                break;
            }
        }
        Ok(())
    }

    /// The output holds the limit: `TooBig` if `rest` (or what the stream holds back) makes
    /// even one byte more.
    fn more_than(&mut self, rest: &[u8]) -> Result<(), InflateError> {
        let mut probe = Vec::with_capacity(1);
        let before_out = self.inner.total_out();
        let status = self
            .inner
            .decompress_vec(rest, &mut probe, FlushDecompress::None)
            .map_err(|_| InflateError::Corrupt)?;
        if self.inner.total_out() != before_out {
            return Err(InflateError::TooBig);
        }
        if status == Status::StreamEnd {
            self.ended = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(window: u8, no_context: bool, messages: &[&[u8]]) {
        let mut deflater = Deflater::new(window, no_context);
        let mut inflater = Inflater::new(window, no_context);
        for message in messages {
            let mut compressed = Vec::new();
            deflater.compress(message, &mut compressed);
            let mut out = Vec::new();
            inflater.inflate(&compressed, &mut out, 1 << 20).unwrap();
            inflater.finish(&mut out, 1 << 20).unwrap();
            assert_eq!(&out[..], *message);
        }
    }

    #[test]
    fn messages_roundtrip_with_every_window_and_takeover() {
        let json = br#"{"symbol":"BTC-USD","price":"42000.10","size":"0.01","side":"buy"}"#;
        let big: Vec<u8> = json.iter().copied().cycle().take(300_000).collect();
        for window in 9..=15 {
            for no_context in [false, true] {
                roundtrip(window, no_context, &[json, b"", &big, json, b"x"]);
            }
        }
    }

    #[test]
    fn the_limit_holds_while_inflating() {
        let zeros = vec![0u8; 10 << 20];
        let mut deflater = Deflater::new(15, false);
        let mut bomb = Vec::new();
        deflater.compress(&zeros, &mut bomb);
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        let result = inflater
            .inflate(&bomb, &mut out, 1 << 20)
            .and_then(|()| inflater.finish(&mut out, 1 << 20));
        assert_eq!(result, Err(InflateError::TooBig));
        assert!(out.capacity() <= (1 << 20) + STEP, "{}", out.capacity());
        // Exactly at the limit is fine.
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        inflater.inflate(&bomb, &mut out, 10 << 20).unwrap();
        inflater.finish(&mut out, 10 << 20).unwrap();
        assert_eq!(out.len(), 10 << 20);
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        let result = inflater
            .inflate(&[0xff, 0xff, 0xff, 0xff, 0x00], &mut out, 1 << 20)
            .and_then(|()| inflater.finish(&mut out, 1 << 20));
        assert_eq!(result, Err(InflateError::Corrupt));
    }
}
