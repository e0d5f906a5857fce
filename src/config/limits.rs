//! The size limits and buffers: what the server may send, what waits for the consumer, what
//! waits to be written, and the socket's buffers.

use super::ConfigBuilder;

impl ConfigBuilder {
    /// The largest inbound message in bytes; a larger one fails the connection with close code
    /// 1009. Defaults to 64 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// The largest inbound frame in bytes; must not exceed the message limit. Defaults to
    /// 16 MiB.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.config.max_frame_size = bytes;
        self
    }

    /// How many messages may wait in the event queue. When it is full the I/O thread stops
    /// reading the socket, so the server is slowed down by TCP flow control; nothing is
    /// dropped, and sends still go out. Memory is bounded by this many messages (plus the batch
    /// being handed out, at most a quarter as many) of at most
    /// [`max_message_size`](Self::max_message_size) each. Defaults to 4096 (a quarter of it,
    /// up to 1024, is the most the I/O thread hands over at once: larger batches cost fewer
    /// wake-ups of the consumer in a flood).
    pub fn event_queue_capacity(mut self, messages: usize) -> Self {
        self.config.event_queue_capacity = messages;
        self
    }

    /// How many bytes of messages may wait in the event queue. As with
    /// [`event_queue_capacity`](Self::event_queue_capacity), the I/O thread stops reading the
    /// socket when the queue holds this many bytes, whichever limit comes first: with
    /// permessage-deflate, a few bytes on the wire may inflate to a large message, so a count
    /// of messages alone does not bound memory. The queue can exceed it by at most one
    /// message (up to [`max_message_size`](Self::max_message_size)). Defaults to 64 MiB.
    pub fn event_queue_bytes(mut self, bytes: usize) -> Self {
        self.config.event_queue_bytes = bytes;
        self
    }

    /// How many bytes of messages may wait to be written while a connection is open (JS
    /// `bufferedAmount`): a send that would go past it returns
    /// [`Error::QueueFull`](crate::Error::QueueFull) at once, so a server that stops reading
    /// cannot make the client grow without bound. A single message larger than this can never
    /// be sent. [`SendHandle::wait_buffered_below`](crate::SendHandle::wait_buffered_below)
    /// waits for room. While no connection is open, the
    /// [`offline_sends`](Self::offline_sends) limit applies instead. Defaults to 32 MiB.
    pub fn max_buffered_amount(mut self, bytes: usize) -> Self {
        self.config.max_buffered_amount = bytes;
        self
    }

    /// Turns Nagle's algorithm off, so that small messages leave at once. Defaults to `true`.
    pub fn tcp_nodelay(mut self, nodelay: bool) -> Self {
        self.config.tcp_nodelay = nodelay;
        self
    }

    /// The size of the socket read buffer. Larger buffers read bulk traffic in fewer system
    /// calls; smaller ones save memory with many connections. While reads keep filling it, a
    /// connection doubles the size of its reads, up to 128 KiB (or this size, if larger), so
    /// that an idle connection stays small and a busy one makes fewer system calls. Defaults
    /// to 32 KiB.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.config.read_buffer_size = bytes;
        self
    }

    /// How many bytes of frames the I/O thread moves from the send queue towards the socket at
    /// a time: when the socket drains a little, it takes this much more, and the rest stays in
    /// the send queue (where a reconnection finds it). It never delays a message: the I/O
    /// thread takes the next window as soon as the socket took the last. Defaults to 128 KiB.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.config.write_buffer_size = bytes;
        self
    }
}
