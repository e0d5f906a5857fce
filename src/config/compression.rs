//! permessage-deflate: whether to offer it and with which parameters.

use super::ConfigBuilder;

impl ConfigBuilder {
    /// Offers permessage-deflate (RFC 7692) in the handshake, as browsers do. When the server
    /// agrees, messages of at least [`deflate_threshold`](Self::deflate_threshold) bytes go
    /// out compressed, and compressed messages from the server are inflated (never past
    /// [`max_message_size`](Self::max_message_size): a larger one fails with close code
    /// 1009). The agreed terms are in [`OpenEvent::extensions`](crate::OpenEvent::extensions).
    /// Costs memory per connection while agreed: the compressor's state (about 256 KiB with a
    /// 15-bit window) and the decompressor's (about 40 KiB). Defaults to `true`.
    pub fn deflate(mut self, offer: bool) -> Self {
        self.config.deflate = offer;
        self
    }

    /// The smallest message, in bytes, that is sent compressed when permessage-deflate is
    /// agreed; smaller ones go out as they are (which the extension allows), since compressing
    /// them saves little and costs CPU. Defaults to 64.
    pub fn deflate_threshold(mut self, bytes: usize) -> Self {
        self.config.deflate_threshold = bytes;
        self
    }

    /// Compresses every message from an empty window (offered as `client_no_context_takeover`):
    /// less memory on both sides, worse compression of similar messages. The server may ask
    /// for this too, and then it is done whatever this says. Defaults to `false`.
    pub fn deflate_client_no_context_takeover(mut self, reset: bool) -> Self {
        self.config.deflate_client_no_context_takeover = reset;
        self
    }

    /// Asks the server to compress every message from an empty window
    /// (`server_no_context_takeover`); a server that does not agree fails the handshake.
    /// Defaults to `false`.
    pub fn deflate_server_no_context_takeover(mut self, reset: bool) -> Self {
        self.config.deflate_server_no_context_takeover = reset;
        self
    }

    /// The largest window the client compresses with, 9 to 15 bits (offered as
    /// `client_max_window_bits`; the server may lower it). Smaller windows save memory on the
    /// server. Defaults to 15.
    pub fn deflate_client_max_window_bits(mut self, bits: u8) -> Self {
        self.config.deflate_client_max_window_bits = bits;
        self
    }

    /// The largest window the server may compress with, 9 to 15 bits (offered as
    /// `server_max_window_bits` below 15). Smaller windows save memory here. Defaults to 15.
    pub fn deflate_server_max_window_bits(mut self, bits: u8) -> Self {
        self.config.deflate_server_max_window_bits = bits;
        self
    }
}
