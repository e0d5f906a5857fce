//! Following redirects of the upgrade request: the builder's setter.

use super::{Config, ConfigBuilder};

impl Config {
    /// How many redirects of the upgrade request are followed (0: none).
    pub fn follow_redirects(&self) -> u32 {
        self.follow_redirects
    }
}

impl ConfigBuilder {
    /// Follows up to `max` redirects (301, 302, 303, 307, 308) of the upgrade request to the
    /// URL in `Location`, absolute or relative (`http://` counts as `ws://`, `https://` as
    /// `wss://`). Each hop is a new connection, and all of them together stay within the
    /// [`connect_timeout`](Self::connect_timeout).
    ///
    /// Some redirects are refused, with [`Error::Redirect`](crate::Error::Redirect) (then
    /// `Close` 1006): one more than `max`; from `wss://` to `ws://` (the rest of the way
    /// would be readable by anyone); to another host or port while the request carries
    /// credentials (user-info in the URL, an `Authorization` or `Cookie` header from
    /// [`header`](Self::header) or a
    /// [`before_each_connect`](Self::before_each_connect) hook), so that they never reach a
    /// server they were not meant for; and a `Location` with user-info of its own or a
    /// scheme other than `ws`, `wss`, `http` or `https`. On the same host and port,
    /// credentials go along. [`Client::url`](crate::Client::url) stays the URL given to
    /// `connect`.
    ///
    /// Defaults to 0: a redirect is [`Error::Rejected`](crate::Error::Rejected) with its
    /// status and headers (`Location` among them), as browsers do.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = nwebsocket::Config::builder().follow_redirects(3).build()?;
    /// assert_eq!(config.follow_redirects(), 3);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn follow_redirects(mut self, max: u32) -> Self {
        self.config.follow_redirects = max;
        self
    }
}
