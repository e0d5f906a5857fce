//! Settings for staying connected: keepalive pings, the dead-peer timeout, automatic
//! reconnection, and what sends do while no connection is open. The builder's setters are in
//! `config`; this module holds the values and checks them.

use std::time::Duration;

/// What a send does while no connection is open: while connecting, and, with reconnection on,
/// while waiting for the next attempt. Set with
/// [`ConfigBuilder::offline_sends`](crate::ConfigBuilder::offline_sends).
///
/// Sends made while a connection is open are limited by
/// [`ConfigBuilder::max_buffered_amount`](crate::ConfigBuilder::max_buffered_amount) instead;
/// [`buffered_amount`](crate::SendHandle::buffered_amount) shows what the socket has not taken
/// yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OfflineSends {
    /// Queue sends, in order, up to `max_bytes` of payload waiting in all (what
    /// `buffered_amount` counts), and write them right after the next `Open`. A send over the
    /// limit returns [`Error::QueueFull`](crate::Error::QueueFull) and queues nothing.
    Queue {
        /// The most payload bytes that may wait for a connection.
        max_bytes: usize,
    },
    /// Refuse: a send returns [`Error::NotOpen`](crate::Error::NotOpen), as the JS API throws
    /// while connecting.
    Fail,
}

impl Default for OfflineSends {
    /// Queue up to 64 MiB.
    fn default() -> Self {
        OfflineSends::Queue {
            max_bytes: 64 << 20,
        }
    }
}

/// Keepalive and dead-peer detection. Both off by default: then no timer runs at all.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Keepalive {
    /// Send a ping when nothing came from the server for this long.
    pub(crate) ping_interval: Option<Duration>,
    /// Give the connection up when nothing came from the server for this long.
    pub(crate) dead_peer_timeout: Option<Duration>,
}

/// When and how fast to reconnect.
#[derive(Debug, Clone)]
pub(crate) struct Reconnect {
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    /// Failed attempts in a row before giving up; `None`: never give up.
    pub(crate) max_attempts: Option<u32>,
    /// A connection open this long resets the delays and the attempt count.
    pub(crate) reset_after: Duration,
    /// Also reconnect after the server closed cleanly.
    pub(crate) on_clean_close: bool,
    /// Also reconnect after the server closed cleanly with one of these codes.
    pub(crate) on_close_codes: Vec<u16>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            reset_after: Duration::from_secs(10),
            on_clean_close: false,
            on_close_codes: Vec::new(),
        }
    }
}

/// Checks the settings together; the reason when they do not fit.
pub(crate) fn check(
    keepalive: &Keepalive,
    reconnect: Option<&Reconnect>,
    max_timeout: Duration,
) -> Result<(), String> {
    let positive = |name: &str, value: Duration| {
        if value.is_zero() || value > max_timeout {
            Err(format!("{name} must be above zero and at most a week"))
        } else {
            Ok(())
        }
    };
    if let Some(interval) = keepalive.ping_interval {
        positive("ping_interval", interval)?;
    }
    if let Some(timeout) = keepalive.dead_peer_timeout {
        positive("dead_peer_timeout", timeout)?;
    }
    let Some(reconnect) = reconnect else {
        return Ok(());
    };
    positive("the initial reconnect delay", reconnect.initial_delay)?;
    positive("the maximum reconnect delay", reconnect.max_delay)?;
    positive("reconnect_reset_after", reconnect.reset_after)?;
    if reconnect.max_delay < reconnect.initial_delay {
        return Err("the maximum reconnect delay is below the initial one".into());
    }
    if reconnect.max_attempts == Some(0) {
        return Err("reconnect_max_attempts must be at least 1".into());
    }
    for &code in &reconnect.on_close_codes {
        if !is_sendable_close_code(code) {
            return Err(format!("{code} is not a close code a server may send"));
        }
    }
    Ok(())
}

/// A close code that may appear in a close frame (RFC 6455 §7.4).
fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    #[test]
    fn defaults_pass() {
        let keepalive = Keepalive::default();
        assert!(check(&keepalive, None, WEEK).is_ok());
        assert!(check(&keepalive, Some(&Reconnect::default()), WEEK).is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        let zero = Keepalive {
            ping_interval: Some(Duration::ZERO),
            dead_peer_timeout: None,
        };
        assert!(
            check(&zero, None, WEEK)
                .unwrap_err()
                .contains("ping_interval")
        );
        let bad = [
            Reconnect {
                initial_delay: Duration::ZERO,
                ..Reconnect::default()
            },
            Reconnect {
                initial_delay: Duration::from_secs(5),
                max_delay: Duration::from_secs(1),
                ..Reconnect::default()
            },
            Reconnect {
                max_attempts: Some(0),
                ..Reconnect::default()
            },
            Reconnect {
                on_close_codes: vec![1006],
                ..Reconnect::default()
            },
            Reconnect {
                max_delay: Duration::MAX,
                ..Reconnect::default()
            },
        ];
        for reconnect in bad {
            assert!(
                check(&Keepalive::default(), Some(&reconnect), WEEK).is_err(),
                "{reconnect:?}"
            );
        }
    }
}
