//! What the I/O thread reports ([`Event`]) and what travels over the socket ([`Message`]).

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use bytes::Bytes;
use tungstenite::Utf8Bytes;

use crate::error::Error;

/// One thing that happened on the connection, in the order of the JS WebSocket API.
///
/// The stream of events always has this shape:
///
/// ```text
/// Open?  Message*  Error?  Close
/// ```
///
/// At most one `Open`, then every message in arrival order, then, only when the connection did
/// not end cleanly, one `Error` with the cause, then exactly one `Close`, always. After `Close`
/// the stream ends. `Error` comes exactly when `Close` has `was_clean == false`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The handshake succeeded; messages may now arrive.
    Open(OpenEvent),
    /// A complete text or binary message from the server.
    Message(Message),
    /// Why the connection failed; a [`Event::Close`] always follows.
    Error(Error),
    /// The connection is over; nothing follows.
    Close(CloseEvent),
}

/// What the server agreed to in the handshake.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenEvent {
    /// The subprotocol the server picked from those offered, if any.
    pub protocol: Option<String>,
    /// The headers of the server's `101 Switching Protocols` response. (Boxed: they are
    /// large, and every event in the queue is as large as the largest kind.)
    pub headers: Box<http::HeaderMap>,
}

/// How the connection ended, as in the JS `CloseEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseEvent {
    /// The code from the server's close frame; 1005 when its frame had none, 1006 when the
    /// connection ended without a close handshake.
    pub code: u16,
    /// The reason from the server's close frame, empty if none.
    pub reason: String,
    /// Whether close frames were exchanged. When `false`, an [`Event::Error`] came just before.
    pub was_clean: bool,
    /// With automatic reconnection (`ConfigBuilder::reconnect`): the delay after which the
    /// next connection attempt starts, when one follows; the stream then goes on with that
    /// attempt's `Open` (or its `Error` and `Close`). `None` when this `Close` is the last
    /// event of the stream, always so without reconnection.
    pub reconnect: Option<Duration>,
    /// Which attempt follows, when one does: 1 for the first one after a connection that had
    /// stayed open, counting up while attempts fail. 0 when none follows.
    pub attempt: u32,
}

impl OpenEvent {
    /// The extensions the server agreed to, as its `Sec-WebSocket-Extensions` header names
    /// them, or `""` when none (as the JS `extensions` attribute). The client checked them
    /// against its offer: today that is `permessage-deflate` with its parameters, e.g.
    /// `"permessage-deflate; server_max_window_bits=12"`.
    ///
    /// ```
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("sec-websocket-extensions", "permessage-deflate".parse().unwrap());
    /// let open = nwebsocket::OpenEvent::new(None, headers);
    /// assert_eq!(open.extensions(), "permessage-deflate");
    /// ```
    pub fn extensions(&self) -> &str {
        self.headers
            .get("sec-websocket-extensions")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// An open event, e.g. to unit-test a callback `Handler`.
    ///
    /// ```
    /// let open = nwebsocket::OpenEvent::new(Some("chat".into()), http::HeaderMap::new());
    /// assert_eq!(open.protocol.as_deref(), Some("chat"));
    /// ```
    pub fn new(protocol: Option<String>, headers: http::HeaderMap) -> Self {
        OpenEvent {
            protocol,
            headers: Box::new(headers),
        }
    }
}

impl CloseEvent {
    /// A close event, e.g. to unit-test a callback `Handler`.
    ///
    /// ```
    /// let close = nwebsocket::CloseEvent::new(1000, "bye".into(), true);
    /// assert_eq!((close.code, close.was_clean), (1000, true));
    /// ```
    pub fn new(code: u16, reason: String, was_clean: bool) -> Self {
        CloseEvent {
            code,
            reason,
            was_clean,
            reconnect: None,
            attempt: 0,
        }
    }

    /// Whether this is the last event of the stream: no reconnection attempt follows.
    pub fn is_final(&self) -> bool {
        self.reconnect.is_none()
    }

    /// The close event of a connection that failed or ended without a close handshake.
    pub(crate) fn abnormal() -> Self {
        CloseEvent::new(1006, String::new(), false)
    }
}

/// The state of the connection, as `WebSocket.readyState` in JS. The numbers match JS.
///
/// It follows the events you have received, not the socket: it turns `Open` when you receive
/// [`Event::Open`] and `Closed` when you receive [`Event::Close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ReadyState {
    /// The connection is being set up (`0`).
    Connecting = 0,
    /// The handshake succeeded and messages flow (`1`).
    Open = 1,
    /// The close handshake has started (`2`).
    Closing = 2,
    /// The connection is over (`3`).
    Closed = 3,
}

/// A WebSocket data message: UTF-8 text or bytes.
///
/// Received payloads over 512 bytes are not copied on their way from the socket buffer to
/// you: both kinds share their bytes with the buffer they were read into. Smaller ones are
/// copied once, one after another, into blocks of 1 KiB, or up to 16 KiB during a burst (no
/// allocation per message, and no refcount that the consumer's thread and the I/O thread both
/// touch for every message); a small message you keep keeps its block alive, so copy it
/// (`Bytes::copy_from_slice`, or `to_owned` on the text) if you store many for long. Compressed ones are inflated into an
/// allocation of their own. *Not guaranteed*, describes current behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; always valid UTF-8.
    Text(Text),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The text of a text message, `None` for binary.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// The payload bytes of either kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_str().as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload of either kind, without a copy.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text.into())
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.into())
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Message::Binary(bytes.into())
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Self {
        Message::Binary(Bytes::copy_from_slice(bytes))
    }
}

impl From<Bytes> for Message {
    fn from(bytes: Bytes) -> Self {
        Message::Binary(bytes)
    }
}

/// The payload of a text message: shared, immutable, valid UTF-8. Use it as a `&str`.
///
/// ```
/// let text = nwebsocket::Text::from("hello");
/// assert_eq!(text.len(), 5);
/// assert!(text.starts_with("he"));
/// assert_eq!(text, "hello");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Text(Utf8Bytes);

impl Text {
    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The UTF-8 bytes, without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.0.into()
    }

    /// The text as a `String`. Copies the bytes unless this `Text` holds the only reference
    /// to them.
    ///
    /// ```
    /// let text = nwebsocket::Text::from("hello");
    /// assert_eq!(text.into_string(), "hello");
    /// ```
    pub fn into_string(self) -> String {
        let bytes = Vec::from(self.into_bytes());
        // The bytes came from a `Utf8Bytes`, which only ever holds valid UTF-8.
        String::from_utf8(bytes)
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
    }

    pub(crate) fn from_tungstenite(text: Utf8Bytes) -> Self {
        Text(text)
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text(text.into())
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text(text.into())
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_accessors() {
        let text = Message::from("héllo");
        assert_eq!(text.as_text(), Some("héllo"));
        assert_eq!(text.len(), 6);
        assert!(text.is_text());
        let binary = Message::from(vec![1u8, 2, 3]);
        assert_eq!(binary.as_text(), None);
        assert_eq!(binary.as_bytes(), [1, 2, 3]);
        assert_eq!(&binary.into_bytes()[..], [1, 2, 3]);
        assert!(Message::from(Vec::new()).is_empty());
    }

    #[test]
    fn text_payload_is_not_copied_into_bytes() {
        let text = Text::from_tungstenite(Utf8Bytes::from_static("static"));
        let pointer = text.as_str().as_ptr();
        assert_eq!(text.into_bytes().as_ptr(), pointer);
    }

    #[test]
    fn events_stay_small() {
        // Every queued message moves this many bytes; keep the rare kinds from growing it.
        assert!(
            std::mem::size_of::<Event>() <= 48,
            "{}",
            std::mem::size_of::<Event>()
        );
    }

    #[test]
    fn events_are_send() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Event>();
        assert_send::<Message>();
    }
}
