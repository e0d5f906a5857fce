//! Staying connected: keepalive pings, the dead-peer timeout, reconnection, and what sends do
//! while no connection is open.

use std::time::Duration;

use super::ConfigBuilder;
use crate::staying_connected::{OfflineSends, Reconnect};

impl ConfigBuilder {
    /// Sends a ping whenever nothing has come from the server for this long (any bytes count,
    /// so a message that takes long to arrive keeps the connection quiet-free). Keeps NATs and
    /// proxies from dropping an idle connection and, with
    /// [`dead_peer_timeout`](Self::dead_peer_timeout), finds a dead one. Costs one wake-up
    /// per interval on a quiet connection. While reading is paused (the event queue is full)
    /// no ping is sent: see `dead_peer_timeout`. Defaults to off: no timer, no wake-up.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.keepalive.ping_interval = Some(interval);
        self
    }

    /// Gives the connection up when nothing has come from the server for this long: `Error`
    /// ([`Error::Timeout`](crate::Error::Timeout) with [`TimeoutKind::DeadPeer`](crate::TimeoutKind::DeadPeer)),
    /// then `Close` 1006. It also finds a peer that vanished without a FIN or a reset. With a
    /// [`ping_interval`](Self::ping_interval) below it, a live server always has something to
    /// answer, and a dead one is found within interval + timeout; without one, a server that
    /// is merely quiet counts as dead.
    ///
    /// While reading is paused because the event queue is full, the client reads nothing and
    /// so cannot see the server's bytes or pongs: the dead-peer clock (and the ping interval)
    /// is stopped then, and starts afresh when reading resumes.
    ///
    /// Uploads: a ping waits behind everything queued before it, so on a slow uplink the pong
    /// can take longer than the timeout. Room coming back in a full socket send buffer counts
    /// as a sign of life too (the kernel frees it only as the peer acknowledges), so a long
    /// upload to a live peer is not given up. An upload that fits whole in the kernel's send
    /// buffer (a few MiB) gives no such sign, and a write into a buffer with room says nothing
    /// (a vanished peer's kernel buffer takes small pings for ever); seeing acknowledgements
    /// there would need `TCP_INFO`, which this crate cannot read without `unsafe`. So keep the
    /// timeout above the time your link needs for a send buffer's worth of data. Defaults to
    /// off.
    pub fn dead_peer_timeout(mut self, timeout: Duration) -> Self {
        self.config.keepalive.dead_peer_timeout = Some(timeout);
        self
    }

    /// Reopens the connection when it is lost: after an abnormal close (any `Close` with
    /// `was_clean == false`) or a failed connection attempt, never after your own
    /// [`close`](crate::SendHandle::close) or the drop, and after a clean close by the server
    /// only if [`reconnect_on_clean_close`](Self::reconnect_on_clean_close) or
    /// [`reconnect_on_close_code`](Self::reconnect_on_close_code) says so.
    ///
    /// The delays grow exponentially with full jitter (each is random between zero and
    /// `initial × 2^(attempt − 1)`, at most the maximum; see
    /// [`reconnect_delays`](Self::reconnect_delays)), a `Retry-After` on a 429 or 503 answer
    /// is honoured, and everything resets once a connection has stayed open for
    /// [`reconnect_reset_after`](Self::reconnect_reset_after). Every connection keeps the
    /// event contract, and its `Close` says whether and when the next attempt comes
    /// ([`CloseEvent::reconnect`](crate::CloseEvent::reconnect)); the stream ends after the
    /// last one. The same I/O thread serves every attempt. Defaults to off, as in JS.
    ///
    /// What cannot succeed later is not retried: the `Close` after it is the last one. That
    /// is a refusal of the request itself, an HTTP 4xx answer from the server
    /// ([`Error::Rejected`](crate::Error::Rejected)) or the HTTP proxy ([`Error::ProxyRejected`](crate::Error::ProxyRejected)) other than 408
    /// Request Timeout and 429 Too Many Requests (say 401 for an expired token, 403, 404);
    /// SOCKS5 credentials missing or refused; and [`Error::InvalidUrl`](crate::Error::InvalidUrl) or
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) (which [`Client::connect`](crate::Client::connect) returns
    /// where it can tell at once, such as a bad proxy in the environment). To try again, fix
    /// the cause and connect anew. Everything else is retried: the network, 3xx, 408, 429,
    /// 5xx, a proxy that cannot reach the server, and TLS failures, also of the certificate
    /// ([`Error::Tls`](crate::Error::Tls)): a captive portal or an intercepting middlebox presents a wrong one,
    /// and a server renews an expired one, with nothing changed here. To stop on those, call
    /// [`close`](crate::SendHandle::close) when the [`Event::Error`](crate::Event::Error)
    /// comes.
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// The first reconnect delay's upper bound, and the largest delay. Defaults to 500 ms and
    /// 30 s.
    pub fn reconnect_delays(mut self, initial: Duration, max: Duration) -> Self {
        let policy = self.reconnect_policy.get_or_insert_with(Reconnect::default);
        policy.initial_delay = initial;
        policy.max_delay = max;
        self
    }

    /// Gives up after this many failed attempts in a row: the last `Close` then ends the
    /// stream. Defaults to never giving up.
    pub fn reconnect_max_attempts(mut self, attempts: u32) -> Self {
        self.reconnect_policy
            .get_or_insert_with(Reconnect::default)
            .max_attempts = Some(attempts);
        self
    }

    /// A connection that stayed open this long counts as a success: the next loss starts the
    /// delays and the attempt count from the beginning. Defaults to 10 s.
    pub fn reconnect_reset_after(mut self, open_for: Duration) -> Self {
        self.reconnect_policy
            .get_or_insert_with(Reconnect::default)
            .reset_after = open_for;
        self
    }

    /// Also reconnects after the server closed cleanly, whatever the code. Defaults to
    /// `false`.
    pub fn reconnect_on_clean_close(mut self, reconnect: bool) -> Self {
        self.reconnect_policy
            .get_or_insert_with(Reconnect::default)
            .on_clean_close = reconnect;
        self
    }

    /// Also reconnects after the server closed cleanly with `code`, e.g. 1012 (service
    /// restart) or 1013 (try again later). May be called more than once. Defaults to none.
    pub fn reconnect_on_close_code(mut self, code: u16) -> Self {
        self.reconnect_policy
            .get_or_insert_with(Reconnect::default)
            .on_close_codes
            .push(code);
        self
    }

    /// What sends do while no connection is open (connecting, or waiting to reconnect): queue
    /// up to a limit, or fail. Defaults to `OfflineSends::Queue { max_bytes: 64 MiB }`.
    pub fn offline_sends(mut self, policy: OfflineSends) -> Self {
        self.config.offline_sends = policy;
        self
    }
}
