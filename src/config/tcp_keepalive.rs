//! The OS's TCP keepalive: the builder's setter and its checks.

use std::time::Duration;

use super::{Config, ConfigBuilder};

/// The largest idle time and probe interval Linux accepts (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`).
const MAX_SECONDS: u64 = 32_767;

/// The largest probe count Linux accepts (`TCP_KEEPCNT`).
const MAX_PROBES: u32 = 127;

/// TCP keepalive settings: idle time before the first probe, time between probes, and how
/// many unanswered probes drop the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpKeepalive {
    pub(crate) idle: Duration,
    pub(crate) interval: Duration,
    pub(crate) probes: u32,
}

impl TcpKeepalive {
    /// Checks the values against what the OS accepts.
    ///
    /// # Errors
    /// The reason, when a time is under a second or over 32767 s, or the count is not 1 to 127.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, value) in [("idle", self.idle), ("interval", self.interval)] {
            if !(1..=MAX_SECONDS).contains(&value.as_secs()) || value.subsec_nanos() != 0 {
                return Err(format!(
                    "the TCP keepalive {name} must be whole seconds, 1 to {MAX_SECONDS}"
                ));
            }
        }
        if !(1..=MAX_PROBES).contains(&self.probes) {
            return Err(format!(
                "the TCP keepalive probe count must be 1 to {MAX_PROBES}"
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The OS's TCP keepalive as `(idle, interval, probes)`, if it is on.
    pub fn tcp_keepalive(&self) -> Option<(Duration, Duration, u32)> {
        self.tcp_keepalive
            .map(|keepalive| (keepalive.idle, keepalive.interval, keepalive.probes))
    }

    pub(crate) fn tcp_keepalive_settings(&self) -> Option<TcpKeepalive> {
        self.tcp_keepalive
    }
}

impl ConfigBuilder {
    /// Turns on the operating system's TCP keepalive (`SO_KEEPALIVE`) on the connection's
    /// socket: after `idle` with nothing received, the kernel sends a probe every `interval`,
    /// and after `probes` unanswered ones it drops the connection, which then ends as a lost
    /// connection (`Error::Io`, `Close` 1006; with reconnection on, a reconnect follows).
    /// Times are whole seconds (the unit of the socket options), 1 to 32767; `probes` is 1 to
    /// 127. Through a proxy, it keeps the hop to the proxy alive, not the proxy's own hop to
    /// the server.
    ///
    /// How it differs from [`ping_interval`](Self::ping_interval) and
    /// [`dead_peer_timeout`](Self::dead_peer_timeout): the kernel does it, so it costs this
    /// client no wake-ups and **works while reading is paused** (the event queue is full and
    /// the WebSocket clocks are stopped); but its probes are empty TCP segments that never
    /// leave the TCP connection, so an HTTP or SOCKS proxy, a load balancer or a server
    /// application never sees them, and they neither keep those from timing out an idle
    /// connection nor prove that the server's application (rather than its kernel) is alive.
    /// WebSocket pings do both. Use keepalive to find a dead network path under a paused
    /// reader, pings to keep intermediaries and the server itself talking. Defaults to off
    /// (the OS default, usually no keepalive).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // First probe after 30 s of silence, then every 10 s; 3 unanswered probes: gone.
    /// let config = nwebsocket::Config::builder()
    ///     .tcp_keepalive(Duration::from_secs(30), Duration::from_secs(10), 3)
    ///     .build()?;
    /// assert_eq!(config.tcp_keepalive().map(|k| k.2), Some(3));
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn tcp_keepalive(mut self, idle: Duration, interval: Duration, probes: u32) -> Self {
        self.config.tcp_keepalive = Some(TcpKeepalive {
            idle,
            interval,
            probes,
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn values_are_checked() {
        let secs = Duration::from_secs;
        let ok = Config::builder()
            .tcp_keepalive(secs(30), secs(10), 3)
            .build()
            .unwrap();
        assert_eq!(ok.tcp_keepalive(), Some((secs(30), secs(10), 3)));
        assert_eq!(Config::default().tcp_keepalive(), None);
        for (idle, interval, probes) in [
            (secs(0), secs(1), 1),
            (secs(1), secs(0), 1),
            (Duration::from_millis(1500), secs(1), 1),
            (secs(32_768), secs(1), 1),
            (secs(1), secs(1), 0),
            (secs(1), secs(1), 128),
        ] {
            let built = Config::builder()
                .tcp_keepalive(idle, interval, probes)
                .build();
            assert!(
                matches!(built, Err(Error::InvalidConfig(_))),
                "{idle:?} {interval:?} {probes}"
            );
        }
    }
}
