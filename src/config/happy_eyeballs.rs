//! How the TCP connect reaches a host: the Happy Eyeballs delay, and fixed addresses for host
//! names (as curl's `--resolve`). The builder's setters and their checks.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Config, ConfigBuilder};

/// RFC 8305 §5: the connection attempt delay must not be below 10 ms.
const MIN_DELAY: Duration = Duration::from_millis(10);

/// A longer delay is as good as trying the addresses one after another.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// A host name and the addresses to use for it instead of asking the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolve {
    host: String,
    addrs: Vec<SocketAddr>,
}

/// Checks the Happy Eyeballs delay and the fixed addresses.
///
/// # Errors
/// The reason, when the delay is not 10 ms to 60 s, or a host has no address.
pub(crate) fn check(delay: Duration, resolve: &[Resolve]) -> Result<(), String> {
    if !(MIN_DELAY..=MAX_DELAY).contains(&delay) {
        return Err("happy_eyeballs_delay must be 10 ms to 60 s".into());
    }
    if let Some(empty) = resolve.iter().find(|r| r.addrs.is_empty()) {
        return Err(format!(
            "resolve_to_addrs gives {:?} no address",
            empty.host
        ));
    }
    Ok(())
}

impl Config {
    /// How long a TCP connect may be pending before the next address is tried alongside it.
    pub fn happy_eyeballs_delay(&self) -> Duration {
        self.happy_eyeballs_delay
    }

    /// The fixed addresses for `host` (from
    /// [`resolve_to_addrs`](ConfigBuilder::resolve_to_addrs)), each with `port` where it
    /// gave port 0.
    pub(crate) fn fixed_addrs(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        let resolve = self
            .resolve
            .iter()
            .rev()
            .find(|r| r.host.eq_ignore_ascii_case(host))?;
        let with_port = |addr: &SocketAddr| match addr.port() {
            0 => SocketAddr::new(addr.ip(), port),
            _ => *addr,
        };
        Some(resolve.addrs.iter().map(with_port).collect())
    }
}

impl ConfigBuilder {
    /// How long a TCP connect may be pending before the next resolved address is tried
    /// alongside it: Happy Eyeballs (RFC 8305), as browsers, curl and Go do. The addresses
    /// alternate by family (IPv6, IPv4, IPv6... when the resolver returned IPv6 first), a
    /// failed connect starts the next one at once, the first that connects is used and the
    /// others are closed. So a host whose first address silently drops packets (a broken IPv6
    /// route) costs this delay, not the [`connect_timeout`](Self::connect_timeout). No single
    /// connect has a timeout of its own: each may use all the time the connect timeout leaves.
    /// The same applies to reaching a proxy. 10 ms to 60 s; defaults to 250 ms, the RFC's
    /// recommendation.
    pub fn happy_eyeballs_delay(mut self, delay: Duration) -> Self {
        self.config.happy_eyeballs_delay = delay;
        self
    }

    /// Connects to these addresses for `host` instead of asking the resolver, as curl's
    /// `--resolve` and reqwest's `resolve_to_addrs` do: for a host that DNS does not know
    /// yet, to pin a server, or to test. Applies to the server's host and to a proxy's; the
    /// names are compared without regard to case, and the URL's `Host` header, TLS server name
    /// and certificate check still use the name. An address with port 0 takes the URL's (or
    /// the proxy's) port. The addresses are tried as resolved ones are, by
    /// [Happy Eyeballs](Self::happy_eyeballs_delay), in the order given. May be called more
    /// than once; the last call for a host wins. Defaults to none.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = nwebsocket::Config::builder()
    ///     .resolve_to_addrs("feed.example.com", ["[::1]:0".parse()?, "127.0.0.1:0".parse()?])
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve_to_addrs(
        mut self,
        host: impl Into<String>,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Self {
        let host: String = host.into();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        self.config.resolve.push(Resolve {
            host,
            addrs: addrs.into_iter().collect(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn the_delay_is_checked_and_fixed_addresses_take_the_port() {
        let ms = Duration::from_millis;
        assert_eq!(Config::default().happy_eyeballs_delay(), ms(250));
        for bad in [ms(9), Duration::from_secs(61)] {
            let built = Config::builder().happy_eyeballs_delay(bad).build();
            assert!(matches!(built, Err(Error::InvalidConfig(_))), "{bad:?}");
        }
        let none = Config::builder().resolve_to_addrs("h", []).build();
        assert!(matches!(none, Err(Error::InvalidConfig(_))));

        let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let config = Config::builder()
            .resolve_to_addrs("Feed.Example", [v4])
            .resolve_to_addrs("feed.example", [v4, v6])
            .resolve_to_addrs("[::2]", [v6])
            .build()
            .unwrap();
        assert_eq!(
            config.fixed_addrs("feed.example", 443).unwrap(),
            ["127.0.0.1:443".parse().unwrap(), v6]
        );
        assert_eq!(config.fixed_addrs("::2", 443).unwrap(), [v6]);
        assert_eq!(config.fixed_addrs("other.example", 443), None);
    }
}
