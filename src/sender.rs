//! The sending half: what a handle may ask of the I/O thread, checked before it is queued.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::error::{Error, Result};
use crate::event::Message;
use crate::shared::Shared;

/// A request from a handle to the I/O thread.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a ping. (Data messages do not travel as commands: senders encode them into the
    /// shared outgoing buffer themselves.)
    Ping(Bytes),
    /// Start the close handshake with this frame (or abort a connection attempt).
    Close(CloseFrame),
    /// The last handle is gone: close with 1001 "going away" and exit.
    Shutdown,
}

/// The queue into the I/O thread, shared by the [`Client`](crate::Client) and its
/// [`SendHandle`]s. When the last of them is dropped, the I/O thread is told to shut down.
#[derive(Debug)]
pub(crate) struct Outbox {
    commands: flume::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl Outbox {
    pub(crate) fn new(commands: flume::Sender<Command>, shared: Arc<Shared>) -> Self {
        Outbox { commands, shared }
    }

    fn push(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| Error::Closed)?;
        self.shared.wake_driver();
        Ok(())
    }

    fn is_closing(&self) -> bool {
        self.shared.close_requested.load(Ordering::Relaxed)
            || self.shared.closing.load(Ordering::Relaxed)
    }

    /// Encodes the frame on the calling thread (a large one is left to the I/O thread) and
    /// appends it for the I/O thread to write.
    pub(crate) fn send(&self, message: Message) -> Result<()> {
        if self.is_closing() {
            return Err(Error::Closed);
        }
        let len = message.len();
        let text = message.is_text();
        let payload = message.into_bytes();
        // Counted before the I/O thread can see the frame, so its count never goes below zero.
        let buffered = &self.shared.buffered_amount;
        buffered.fetch_add(len, Ordering::Relaxed);
        {
            let mut outgoing = self.shared.outgoing();
            if outgoing.closed {
                buffered.fetch_sub(len, Ordering::Relaxed);
                return Err(Error::Closed);
            }
            outgoing.push(text, payload);
        }
        self.shared.note_outgoing();
        Ok(())
    }

    pub(crate) fn ping(&self, payload: Bytes) -> Result<()> {
        if payload.len() > 125 {
            return Err(Error::PingTooLong(payload.len()));
        }
        if self.is_closing() {
            return Err(Error::Closed);
        }
        self.push(Command::Ping(payload))
    }

    pub(crate) fn close(&self, code: u16, reason: &str) -> Result<()> {
        if code != 1000 && !(3000..=4999).contains(&code) {
            return Err(Error::InvalidCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(Error::CloseReasonTooLong(reason.len()));
        }
        if self.shared.close_requested.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        // The I/O thread may already be gone (the connection ended): closing is then done.
        let _ = self.push(Command::Close(frame));
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

/// A cloneable handle that sends on a [`Client`](crate::Client)'s connection from other
/// threads. Get one from [`Client::sender`](crate::Client::sender).
///
/// It keeps the connection open: the connection shuts down when the `Client` and every
/// `SendHandle` are dropped, or on [`close_with`](Self::close_with).
#[derive(Debug, Clone)]
pub struct SendHandle {
    pub(crate) outbox: Arc<Outbox>,
}

impl SendHandle {
    /// Same as [`Client::send`](crate::Client::send).
    ///
    /// # Errors
    /// [`Error::Closed`] once the connection is closing or over.
    pub fn send(&self, message: impl Into<Message>) -> Result<()> {
        self.outbox.send(message.into())
    }

    /// Same as [`Client::send_text`](crate::Client::send_text).
    ///
    /// # Errors
    /// [`Error::Closed`] once the connection is closing or over.
    pub fn send_text(&self, text: impl Into<String>) -> Result<()> {
        self.outbox.send(Message::from(text.into()))
    }

    /// Same as [`Client::send_binary`](crate::Client::send_binary).
    ///
    /// # Errors
    /// [`Error::Closed`] once the connection is closing or over.
    pub fn send_binary(&self, bytes: impl Into<Bytes>) -> Result<()> {
        self.outbox.send(Message::Binary(bytes.into()))
    }

    /// Same as [`Client::ping`](crate::Client::ping).
    ///
    /// # Errors
    /// [`Error::PingTooLong`] over 125 bytes; [`Error::Closed`] once the connection is closing.
    pub fn ping(&self, payload: impl Into<Bytes>) -> Result<()> {
        self.outbox.ping(payload.into())
    }

    /// Same as [`Client::close`](crate::Client::close).
    ///
    /// # Errors
    /// None in practice; see [`close_with`](Self::close_with).
    pub fn close(&self) -> Result<()> {
        self.outbox.close(1000, "")
    }

    /// Same as [`Client::close_with`](crate::Client::close_with).
    ///
    /// # Errors
    /// [`Error::InvalidCloseCode`] or [`Error::CloseReasonTooLong`]; nothing is sent then.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<()> {
        self.outbox.close(code, reason)
    }
}
