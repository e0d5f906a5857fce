//! The bytes of a proxy handshake over a non-blocking socket: what is still to be sent, and
//! what has been received but not yet taken. Shared by the HTTP `CONNECT` and SOCKS5 stages.
//!
//! mio's readiness is edge-triggered: a stage may wait only after a read or write said
//! `WouldBlock`. So [`Exchange::flush`] writes until done or blocked, and
//! [`Exchange::receive`] reports a block as `Ok(false)`, which is the stage's cue to wait.

use std::io::{self, Read, Write};

use crate::error::{Error, ProxyErrorKind, Result};

/// How much a stage reads at a time.
const CHUNK: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct Exchange {
    out: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
}

impl Exchange {
    /// Queues `bytes` to be sent by the next [`flush`](Self::flush).
    pub(super) fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes what is queued. `Ok(true)` when all of it has gone, `Ok(false)` when the socket
    /// is full (wait for it to be writable).
    pub(super) fn flush(&mut self, io: &mut impl Write) -> Result<bool> {
        while self.sent < self.out.len() {
            match io.write(&self.out[self.sent..]) {
                Ok(0) => return Err(disconnected(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(disconnected(err)),
            }
        }
        // Ready for the next message of the exchange.
        self.out.clear();
        self.sent = 0;
        Ok(true)
    }

    /// The bytes received and not yet consumed.
    pub(super) fn received(&self) -> &[u8] {
        &self.received
    }

    /// Drops the first `n` received bytes: a message the stage has handled.
    pub(super) fn consume(&mut self, n: usize) {
        self.received.drain(..n);
    }

    /// Everything received and not consumed: the first bytes of the tunnel.
    pub(super) fn into_received(self) -> Vec<u8> {
        self.received
    }

    /// Reads once more. `Ok(true)` when bytes came, `Ok(false)` when none are there yet (wait
    /// for the socket to be readable).
    ///
    /// # Errors
    /// [`ProxyErrorKind::Disconnected`] when the proxy closed or reset the connection;
    /// [`ProxyErrorKind::Protocol`] when more than `limit` bytes have come unconsumed.
    pub(super) fn receive(&mut self, io: &mut impl Read, limit: usize) -> Result<bool> {
        if self.received.len() >= limit {
            return Err(protocol(format!(
                "the proxy's answer exceeds {limit} bytes"
            )));
        }
        let start = self.received.len();
        self.received.resize(start + CHUNK, 0);
        let read = loop {
            match io.read(&mut self.received[start..]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.received.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => Err(disconnected(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection",
            ))),
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) => Err(disconnected(err)),
        }
    }
}

/// [`ProxyErrorKind::Disconnected`] with its I/O error.
fn disconnected(err: io::Error) -> Error {
    Error::Proxy {
        kind: ProxyErrorKind::Disconnected,
        source: Some(Box::new(err)),
    }
}

/// [`ProxyErrorKind::Protocol`], saying what was wrong.
pub(super) fn protocol(why: impl Into<String>) -> Error {
    Error::Proxy {
        kind: ProxyErrorKind::Protocol,
        source: Some(why.into().into()),
    }
}

/// A scripted stream for the stages' unit tests: each read returns the next chunk (`None`
/// is `WouldBlock`; after the last chunk, end of stream), writes are recorded.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct Script {
    pub(super) chunks: std::collections::VecDeque<Option<Vec<u8>>>,
    pub(super) written: Vec<u8>,
}

#[cfg(test)]
impl Script {
    pub(super) fn new(chunks: &[Option<&[u8]>]) -> Self {
        Script {
            chunks: chunks.iter().map(|c| c.map(<[u8]>::to_vec)).collect(),
            written: Vec::new(),
        }
    }
}

#[cfg(test)]
impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.chunks.pop_front() {
            None => Ok(0),
            Some(None) => Err(io::ErrorKind::WouldBlock.into()),
            Some(Some(mut chunk)) => {
                let n = buf.len().min(chunk.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.chunks.push_front(Some(chunk.split_off(n)));
                }
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
