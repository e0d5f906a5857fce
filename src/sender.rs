//! [`SendHandle`]: the one send/close surface. A [`Client`](crate::Client) and a callback
//! [`Context`](crate::callback::Context) both dereference to it, so every send call is written
//! (and checked) once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::error::{Error, Result};
use crate::event::Message;
use crate::io::Command;
use crate::outgoing::COALESCED;
use crate::shared::Shared;
use crate::staying_connected::OfflineSends;

/// Sends on a connection: messages, pings and the close. [`Client`](crate::Client) derefs to
/// one, so these are the client's own send calls; [`Client::sender`](crate::Client::sender)
/// hands out clones for other threads.
///
/// A `SendHandle` keeps the connection open: the connection shuts down (with 1001 "going
/// away") when the `Client` and every `SendHandle` are dropped, or on [`close`](Self::close).
/// Every call returns at once; none waits for the network.
///
/// # Examples
///
/// ```no_run
/// let ws = nwebsocket::Client::connect("ws://127.0.0.1:9001/")?;
/// let sender = ws.sender();
/// std::thread::spawn(move || sender.send_text("from another thread"));
/// ws.send_text("from here")?; // the same call, through `Deref`
/// # Ok::<(), nwebsocket::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SendHandle {
    outbox: Arc<Outbox>,
}

/// The queue into the I/O thread, shared by a client and its send handles. When the last of
/// them is dropped, the I/O thread is told to shut down.
#[derive(Debug)]
struct Outbox {
    commands: flume::Sender<Command>,
    shared: Arc<Shared>,
}

impl SendHandle {
    pub(crate) fn new(commands: flume::Sender<Command>, shared: Arc<Shared>) -> Self {
        SendHandle {
            outbox: Arc::new(Outbox { commands, shared }),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.outbox.shared
    }

    /// Sends a text or binary message.
    ///
    /// The message is queued for the I/O thread, which writes it at once: a message under
    /// 16 KiB is framed and masked right here, a larger one is handed over without a copy.
    /// Only in a long burst (over 64 KiB sent faster than the I/O thread wrote it, one write
    /// per turn) does it let messages gather into writes of 96 KiB, for at most 100 µs each,
    /// as a kernel's autocorking does; a lone message, or a short burst, is never held, and
    /// what gathers is written at once when a handle finds no event to take or waits in
    /// [`wait_buffered_below`](Self::wait_buffered_below) (whoever sent it may be waiting
    /// for the answer).
    /// Sends never block. While a connection is open, at most
    /// [`max_buffered_amount`](crate::ConfigBuilder::max_buffered_amount) bytes (32 MiB by
    /// default) may wait to be written; a send past it is refused with
    /// [`Error::QueueFull`], and [`wait_buffered_below`](Self::wait_buffered_below) lets a
    /// producer wait for room. Sends made while no connection is open (still connecting, or
    /// waiting to reconnect) follow [`OfflineSends`]: by default they are queued, up to 64 MiB,
    /// and written in order right after the next handshake (the JS API throws instead). `Ok`
    /// means accepted, not delivered: if the connection fails first, the
    /// [`Event::Error`](crate::Event::Error) says so.
    ///
    /// Accepted messages belong to the handle, not to one connection. When a connection ends
    /// (it fails, or the server closes it) and reconnection follows, every message that the
    /// socket had not taken whole stays queued, in order, for the next connection; so do the
    /// messages that waited when the server's close frame came (they are not written ahead of
    /// the close reply to a server that may have stopped reading). Only bytes that the kernel
    /// had already accepted can be lost with a connection (over TLS, also up to 64 KiB that
    /// rustls had encrypted for the kernel): whether they reached the server, nobody can tell.
    /// When no connection follows, what waits is never sent, and
    /// [`buffered_amount`](Self::buffered_amount) keeps counting it, as in JS.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`close`](Self::close), or once the connection is closing or
    /// over; [`Error::QueueFull`] when the message would take the waiting bytes past the
    /// bound (`max_buffered_amount` while open, the [`OfflineSends`] limit otherwise);
    /// [`Error::NotOpen`] while no connection is open, with [`OfflineSends::Fail`]. Nothing is
    /// queued then.
    pub fn send(&self, message: impl Into<Message>) -> Result<()> {
        let message = message.into();
        let shared = self.shared();
        if shared.is_closing() {
            return Err(Error::Closed);
        }
        let len = message.len();
        let text = message.is_text();
        let payload = message.into_bytes();
        let filled = {
            let mut outgoing = shared.outgoing();
            if outgoing.is_closed() {
                return Err(Error::Closed);
            }
            // Checked and reserved under the lock: concurrent senders cannot both pass.
            let limit = if shared.is_open() {
                shared.max_buffered()
            } else {
                match shared.offline {
                    OfflineSends::Fail => return Err(Error::NotOpen),
                    OfflineSends::Queue { max_bytes } => max_bytes,
                }
            };
            shared
                .reserve(&outgoing, len, limit)
                .map_err(Error::QueueFull)?;
            let before = outgoing.queued_payload();
            outgoing.push(text, payload);
            before < COALESCED && outgoing.queued_payload() >= COALESCED
        };
        shared.note_outgoing(filled);
        Ok(())
    }

    /// Waits until [`buffered_amount`](Self::buffered_amount) is below `bytes`, at most
    /// `timeout`: a producer paces itself with it instead of polling. Returns `Ok(true)` once
    /// it is below (at once if it already is), `Ok(false)` when the timeout passed first.
    ///
    /// # Errors
    /// [`Error::Closed`] when the connection is over for good (no reconnection follows): what
    /// still waits will never be written.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let ws = nwebsocket::Client::connect("ws://127.0.0.1:9001/")?;
    /// for i in 0..1_000_000u32 {
    ///     // Keep at most 1 MiB in flight.
    ///     while !ws.wait_buffered_below(1 << 20, Duration::from_secs(1))? {}
    ///     ws.send_binary(i.to_be_bytes().to_vec())?;
    /// }
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn wait_buffered_below(&self, bytes: usize, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        self.shared()
            .wait_buffered_below(bytes, deadline)
            .map_err(|()| Error::Closed)
    }

    /// Sends a text message. See [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_text(&self, text: impl Into<String>) -> Result<()> {
        self.send(Message::from(text.into()))
    }

    /// Sends a binary message. See [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_binary(&self, bytes: impl Into<Bytes>) -> Result<()> {
        self.send(Message::Binary(bytes.into()))
    }

    /// Sends a ping with `payload`. The server's pong is consumed by the I/O thread. (Pings
    /// from the server are answered automatically, with the same payload.)
    ///
    /// # Errors
    /// [`Error::PingTooLong`] over 125 bytes; [`Error::Closed`] as for [`send`](Self::send);
    /// [`Error::NotOpen`] while no connection is open with [`OfflineSends::Fail`] (otherwise
    /// the ping waits for the next connection).
    pub fn ping(&self, payload: impl Into<Bytes>) -> Result<()> {
        let payload = payload.into();
        if payload.len() > 125 {
            return Err(Error::PingTooLong(payload.len()));
        }
        if self.shared().is_closing() {
            return Err(Error::Closed);
        }
        if !self.shared().is_open() && self.shared().offline == OfflineSends::Fail {
            return Err(Error::NotOpen);
        }
        self.outbox.push(Command::Ping(payload))
    }

    /// Starts a clean close with code 1000 (normal closure). Same as `close_with(1000, "")`.
    ///
    /// # Errors
    /// None in practice; see [`close_with`](Self::close_with).
    pub fn close(&self) -> Result<()> {
        self.close_with(1000, "")
    }

    /// Starts the close handshake with `code` and `reason`, as `WebSocket.close(code, reason)`.
    ///
    /// Sends queued before are written before the close frame. The I/O thread then waits up to
    /// the close timeout for the server's reply, and [`Event::Close`](crate::Event::Close)
    /// reports the outcome; the timer runs also when the server has stopped reading and the
    /// close frame cannot even be written. While still connecting, this aborts the attempt:
    /// [`Event::Error`](crate::Event::Error) with [`Error::Aborted`], then `Close` with code
    /// 1006. Calling it again, or after the connection ended, does nothing.
    ///
    /// # Errors
    /// [`Error::InvalidCloseCode`] unless `code` is 1000 or in 3000–4999;
    /// [`Error::CloseReasonTooLong`] if `reason` exceeds 123 bytes. Nothing is sent then.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<()> {
        if code != 1000 && !(3000..=4999).contains(&code) {
            return Err(Error::InvalidCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(Error::CloseReasonTooLong(reason.len()));
        }
        if self.shared().close_requested.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        // The I/O thread may already be gone (the connection ended): closing is then done.
        let _ = self.outbox.push(Command::Close(frame));
        Ok(())
    }

    /// Bytes of messages accepted by the send calls and not yet written to the socket, as JS
    /// `bufferedAmount`. After the last connection ended, it counts what was never sent.
    pub fn buffered_amount(&self) -> usize {
        self.shared().buffered_amount()
    }
}

impl Outbox {
    fn push(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| Error::Closed)?;
        self.shared.wake_driver();
        Ok(())
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Dropping the sender alone would disconnect the channel only after this body has run,
        // so the I/O thread, woken now, might not see it: tell it explicitly.
        let _ = self.push(Command::Shutdown);
    }
}
