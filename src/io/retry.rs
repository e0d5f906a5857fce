//! Whether and when to reconnect after a connection ended: the policy's triggers, exponential
//! backoff with full jitter, `Retry-After`, the attempt limit and the reset after a connection
//! that stayed open. Pure decisions; the driver carries them out.

use std::time::{Duration, SystemTime};

use super::session::Ending;
use crate::error::{Error, ProxyErrorKind};
use crate::staying_connected::Reconnect;

/// The per-handle retry state.
#[derive(Debug)]
pub(super) struct Retry {
    policy: Option<Reconnect>,
    /// Attempts in a row that have not led to a connection that stayed open.
    failures: u32,
}

/// The next attempt: after `delay`, the `attempt`-th in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Next {
    pub(super) delay: Duration,
    pub(super) attempt: u32,
}

impl Retry {
    pub(super) fn new(policy: Option<Reconnect>) -> Self {
        Retry {
            policy,
            failures: 0,
        }
    }

    /// The next attempt after a connection that ended with `ending`, having been open for
    /// `open_for` (`None`: it never opened); `None` when the stream ends here.
    pub(super) fn next(
        &mut self,
        ending: &Ending,
        open_for: Option<Duration>,
        user_closed: bool,
    ) -> Option<Next> {
        let policy = self.policy.as_ref()?;
        if user_closed || !triggers(policy, ending) {
            return None;
        }
        if open_for.is_some_and(|open_for| open_for >= policy.reset_after) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        if policy.max_attempts.is_some_and(|max| self.failures > max) {
            return None;
        }
        let mut delay = jittered(policy, self.failures);
        if let Some(asked) = ending.error.as_ref().and_then(retry_after) {
            delay = delay.max(asked);
        }
        Some(Next {
            delay,
            attempt: self.failures,
        })
    }
}

/// Whether the policy reconnects after `ending`.
fn triggers(policy: &Reconnect, ending: &Ending) -> bool {
    match &ending.error {
        Some(error) => can_succeed_later(error),
        None => policy.on_clean_close || policy.on_close_codes.contains(&ending.close.code),
    }
}

/// Whether the same attempt may succeed later, with nothing changed on our side.
///
/// Not: what the user, their connect hook, the machine or a bug ended; a URL or setting that
/// cannot work; a redirect refused by the policy (`follow_redirects`); a
/// request that the server or the HTTP proxy refused as such (4xx other than 408 Request
/// Timeout and 429 Too Many Requests, which ask for a later try); SOCKS5 credentials missing
/// or refused. Everything else may: the network, a server that is down or overloaded (5xx),
/// and TLS certificate failures, which a captive portal or an intercepting middlebox causes
/// and a renewed certificate cures.
fn can_succeed_later(error: &Error) -> bool {
    let refused = |status: u16| (400..500).contains(&status) && !matches!(status, 408 | 429);
    match error {
        Error::Aborted
        | Error::ConnectHook(_)
        | Error::Redirect(_)
        | Error::Runtime(_)
        | Error::Internal(_)
        | Error::InvalidUrl(_)
        | Error::InvalidConfig(_) => false,
        Error::Rejected { status, .. } | Error::ProxyRejected { status, .. } => !refused(*status),
        Error::Proxy {
            kind: ProxyErrorKind::AuthRequired | ProxyErrorKind::AuthFailed,
            ..
        } => false,
        _ => true,
    }
}

/// Full jitter: random between zero and `initial × 2^(attempt − 1)`, capped at the maximum.
fn jittered(policy: &Reconnect, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let ceiling = policy
        .initial_delay
        .saturating_mul(1 << doublings)
        .min(policy.max_delay);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=nanos))
}

/// How long the server asked us to wait: `Retry-After` on a 429 or 503 answer, in seconds or
/// as an HTTP date. At most a day, whatever it says.
fn retry_after(error: &Error) -> Option<Duration> {
    let Error::Rejected {
        status: 429 | 503,
        headers,
        ..
    } = error
    else {
        return None;
    };
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(Duration::from_secs(24 * 3600)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CloseEvent;

    fn policy() -> Reconnect {
        Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_attempts: Some(5),
            ..Reconnect::default()
        }
    }

    fn lost() -> Ending {
        Ending::failed(Error::Io(std::io::ErrorKind::ConnectionReset.into()))
    }

    fn clean(code: u16) -> Ending {
        Ending {
            error: None,
            close: CloseEvent::new(code, String::new(), true),
        }
    }

    fn rejected(status: u16, retry_after: &str) -> Ending {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, retry_after.parse().unwrap());
        Ending::failed(Error::Rejected {
            status,
            headers: Box::new(headers),
            body: Box::default(),
        })
    }

    #[test]
    fn off_without_a_policy_and_after_the_users_close() {
        assert_eq!(Retry::new(None).next(&lost(), None, false), None);
        assert_eq!(Retry::new(Some(policy())).next(&lost(), None, true), None);
        let aborted = Ending::failed(Error::Aborted);
        assert_eq!(Retry::new(Some(policy())).next(&aborted, None, false), None);
    }

    #[test]
    fn delays_grow_with_jitter_up_to_the_maximum_then_give_up() {
        let mut retry = Retry::new(Some(policy()));
        let mut delays = Vec::new();
        for attempt in 1..=5 {
            let next = retry.next(&lost(), None, false).unwrap();
            assert_eq!(next.attempt, attempt);
            let ceiling =
                Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            assert!(next.delay <= ceiling, "{attempt}: {:?}", next.delay);
            delays.push(next.delay);
        }
        assert_eq!(retry.next(&lost(), None, false), None, "the sixth attempt");
        // 200 draws from the same range are not all equal: the delays are random.
        let mut retry = Retry::new(Some(Reconnect {
            max_attempts: None,
            ..policy()
        }));
        let draws: std::collections::HashSet<Duration> = (0..200)
            .map(|_| retry.next(&lost(), None, false).unwrap().delay)
            .collect();
        assert!(draws.len() > 100, "{}", draws.len());
    }

    #[test]
    fn a_connection_that_stayed_open_resets_the_count() {
        let mut retry = Retry::new(Some(policy()));
        for _ in 0..3 {
            retry.next(&lost(), None, false).unwrap();
        }
        let next = retry
            .next(&lost(), Some(Duration::from_secs(60)), false)
            .unwrap();
        assert_eq!(next.attempt, 1);
        let next = retry
            .next(&lost(), Some(Duration::from_millis(1)), false)
            .unwrap();
        assert_eq!(next.attempt, 2);
    }

    #[test]
    fn clean_closes_only_when_asked() {
        assert_eq!(
            Retry::new(Some(policy())).next(&clean(1001), None, false),
            None
        );
        let codes = Reconnect {
            on_close_codes: vec![1012],
            ..policy()
        };
        assert!(
            Retry::new(Some(codes.clone()))
                .next(&clean(1012), None, false)
                .is_some()
        );
        assert_eq!(
            Retry::new(Some(codes)).next(&clean(1000), None, false),
            None
        );
        let any = Reconnect {
            on_clean_close: true,
            ..policy()
        };
        assert!(
            Retry::new(Some(any))
                .next(&clean(1000), None, false)
                .is_some()
        );
    }

    #[test]
    fn what_cannot_succeed_later_is_not_retried() {
        let never = [
            Error::InvalidUrl("the host name is too long for SOCKS5".into()),
            Error::InvalidConfig("http_proxy: the proxy scheme must be".into()),
            Error::Proxy {
                kind: ProxyErrorKind::AuthFailed,
                source: None,
            },
            Error::Proxy {
                kind: ProxyErrorKind::AuthRequired,
                source: None,
            },
        ];
        for error in never {
            let text = format!("{error:?}");
            let ending = Ending::failed(error);
            assert_eq!(
                Retry::new(Some(policy())).next(&ending, None, false),
                None,
                "{text}"
            );
        }
        for status in [400, 401, 403, 404, 426, 499] {
            let ending = rejected(status, "1");
            assert_eq!(
                Retry::new(Some(policy())).next(&ending, None, false),
                None,
                "{status}"
            );
            let proxy = Ending::failed(Error::ProxyRejected {
                status,
                headers: Box::default(),
            });
            assert_eq!(
                Retry::new(Some(policy())).next(&proxy, None, false),
                None,
                "{status}"
            );
        }
        for status in [301, 408, 429, 500, 502, 503] {
            let ending = rejected(status, "0");
            assert!(
                Retry::new(Some(policy()))
                    .next(&ending, None, false)
                    .is_some(),
                "{status}"
            );
        }
        let proxy_unreachable = Ending::failed(Error::Proxy {
            kind: ProxyErrorKind::HostUnreachable,
            source: None,
        });
        assert!(
            Retry::new(Some(policy()))
                .next(&proxy_unreachable, None, false)
                .is_some()
        );
        let certificate = Ending::failed(Error::from_rustls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )));
        assert!(
            Retry::new(Some(policy()))
                .next(&certificate, None, false)
                .is_some()
        );
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        let mut retry = Retry::new(Some(policy()));
        let next = retry.next(&rejected(503, "7"), None, false).unwrap();
        assert_eq!(next.delay, Duration::from_secs(7));
        let next = retry.next(&rejected(429, "3"), None, false).unwrap();
        assert_eq!(next.delay, Duration::from_secs(3));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let next = retry.next(&rejected(503, &later), None, false).unwrap();
        assert!(next.delay > Duration::from_secs(25), "{:?}", next.delay);
        let next = retry.next(&rejected(500, "60"), None, false).unwrap();
        assert!(next.delay <= Duration::from_secs(1));
    }
}
