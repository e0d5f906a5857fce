//! Proxies: one set by URL, or the environment's.

use super::ConfigBuilder;

impl ConfigBuilder {
    /// Connects through this proxy, whatever the environment says:
    ///
    /// - `http://[user:password@]host[:port]`: an HTTP proxy, through a `CONNECT` tunnel for
    ///   both `ws://` and `wss://` (TLS runs inside the tunnel, end to end with the server).
    ///   Port 80 by default. A URL without a scheme is taken as `http://`.
    /// - `socks5://[user:password@]host[:port]`: SOCKS5; this client resolves the server's
    ///   name and hands the proxy an IP address. Port 1080 by default.
    /// - `socks5h://...`: SOCKS5, the proxy resolves the server's name (for names only the
    ///   proxy's network knows, and so that no DNS query leaves from here).
    ///
    /// User name and password are percent-decoded (write `@` as `%40`, `:` as `%3A`); the HTTP
    /// proxy gets them as `Proxy-Authorization: Basic`, the SOCKS5 server by RFC 1929. They are
    /// never logged and never part of an error message. `no_proxy` does not apply to this
    /// proxy. Defaults to none: the environment decides (see
    /// [`proxy_from_env`](Self::proxy_from_env)).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = nwebsocket::Config::builder()
    ///     .proxy("http://robot:s3cret@proxy.corp.example:3128")
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.raw_proxy = Some(url.into());
        self
    }

    /// Whether, with no [`proxy`](Self::proxy) set, [`Client::connect`](crate::Client::connect)
    /// takes the proxy from the environment, by the rules of curl:
    ///
    /// 1. `wss://` uses `https_proxy`, else `HTTPS_PROXY`; `ws://` uses `http_proxy`, else
    ///    `HTTP_PROXY`;
    /// 2. else `all_proxy`, else `ALL_PROXY`;
    /// 3. unless `no_proxy` (else `NO_PROXY`) lists the server's host: comma-separated host
    ///    names (matching the name and every name under it, with or without a leading `.`),
    ///    IP addresses, CIDR ranges (`10.0.0.0/8`), any of them with `:port`, or `*` for all.
    ///
    /// Lowercase wins over uppercase; an empty variable counts as unset. The values take the
    /// forms [`proxy`](Self::proxy) takes. They are read on the thread that calls `connect`,
    /// at that call. A value that is not a valid proxy URL makes `connect` return
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) (quoting no credentials) rather than go around the proxy.
    /// Defaults to `true`.
    pub fn proxy_from_env(mut self, read: bool) -> Self {
        self.config.proxy_from_env = read;
        self
    }
}
