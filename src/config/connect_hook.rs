//! The `before_each_connect` hook: fresh credentials and a fresh URL for every connection
//! attempt. The builder's setter, the value the hook returns, and the header checks it shares
//! with [`ConfigBuilder::header`].

use std::fmt;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use super::{ConfigBuilder, RESERVED_HEADERS};
use crate::error::BoxError;

/// What a [`before_each_connect`](ConfigBuilder::before_each_connect) hook wants for the next
/// connection attempt: the URL (or the one given to `connect`) and headers for the upgrade
/// request, on top of (and replacing those of the same name among) the configured
/// [`header`](ConfigBuilder::header)s.
///
/// # Examples
///
/// ```
/// let request = nwebsocket::ConnectRequest::new()
///     .url("wss://127.0.0.1:9443/feed?token=abc")
///     .header("Authorization", "Bearer abc");
/// # drop(request);
/// ```
#[derive(Clone, Default)]
#[must_use = "the hook returns it"]
pub struct ConnectRequest {
    pub(crate) url: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl ConnectRequest {
    /// The URL given to `connect` and the configured headers, unchanged.
    pub fn new() -> Self {
        ConnectRequest::default()
    }

    /// Connects to this `ws://` or `wss://` URL instead of the one given to `connect`. The
    /// proxy is chosen for it as for that one, by the explicit proxy or by the proxy
    /// environment as it was when `connect` was called.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Adds a header to the upgrade request; it replaces every configured header of the same
    /// name. May be called more than once, also with the same name.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl fmt::Debug for ConnectRequest {
    // By hand: a token in the URL or a header must not reach a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ConnectRequest")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("header_names", &names)
            .finish()
    }
}

/// The user's hook: the reconnect attempt number in, the next attempt's request out.
type HookFn = dyn Fn(u32) -> Result<ConnectRequest, BoxError> + Send + Sync;

/// A [`before_each_connect`](ConfigBuilder::before_each_connect) hook, shared by every clone
/// of the config.
#[derive(Clone)]
pub(crate) struct ConnectHook(Arc<HookFn>);

impl ConnectHook {
    /// Calls the hook for the attempt that follows the `attempt`-th failure in a row (0 for
    /// the first connection and after a connection that stayed open).
    pub(crate) fn call(&self, attempt: u32) -> Result<ConnectRequest, BoxError> {
        (self.0)(attempt)
    }
}

impl fmt::Debug for ConnectHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectHook(..)")
    }
}

impl ConfigBuilder {
    /// Calls `hook` before every connection attempt (the first one, and each reconnect) for
    /// the URL and headers of that attempt: a token that expires, fetched fresh each time.
    /// Its argument is the attempt number that the previous
    /// [`CloseEvent::attempt`](crate::CloseEvent::attempt) announced (0 for the first
    /// connection). An `Err` it returns, a URL or header that is not valid, or a panic, ends
    /// the connection and any reconnecting: `Error` ([`Error::ConnectHook`](crate::Error::ConnectHook)),
    /// then the last `Close` (1006).
    ///
    /// **Where it runs:** on a short-lived thread of its own (named `nwebsocket-hook`), never
    /// on the I/O thread, and inside the attempt's
    /// [`connect_timeout`](Self::connect_timeout). While it runs, the connection is
    /// `Connecting`; a [`close`](crate::SendHandle::close) or the drop of the last handle
    /// ends the attempt at once (`Error::Aborted`, then `Close`) without waiting for the
    /// hook, whose result is then thrown away; a hook that outlasts the connect timeout fails
    /// the attempt with [`Error::Timeout`](crate::Error::Timeout) (and the policy may
    /// reconnect, calling the hook again). So a slow hook never delays `close()` or the
    /// events, but it may still be running after the stream has ended. Defaults to none:
    /// every attempt uses the URL given to `connect` and the configured headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use nwebsocket::{Config, ConnectRequest};
    ///
    /// # fn fetch_token() -> Result<String, std::io::Error> { Ok("abc".into()) }
    /// let config = Config::builder()
    ///     .reconnect(true)
    ///     .before_each_connect(|_attempt| {
    ///         let token = fetch_token()?; // e.g. an HTTP call to your auth server
    ///         Ok(ConnectRequest::new().header("Authorization", format!("Bearer {token}")))
    ///     })
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn before_each_connect<F>(mut self, hook: F) -> Self
    where
        F: Fn(u32) -> Result<ConnectRequest, Box<dyn std::error::Error + Send + Sync>>
            + Send
            + Sync
            + 'static,
    {
        self.config.before_each_connect = Some(ConnectHook(Arc::new(hook)));
        self
    }
}

/// Checks one upgrade-request header, from the config or from a hook.
///
/// # Errors
/// Why the name or value is invalid, or that the handshake sets this header itself.
pub(crate) fn checked_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Ok(header_name) = HeaderName::from_bytes(name.as_bytes()) else {
        return Err(format!("invalid header name {name:?}"));
    };
    if RESERVED_HEADERS.contains(&header_name.as_str()) {
        return Err(format!("header {name:?} is set by the handshake itself"));
    }
    let Ok(mut header_value) = HeaderValue::from_str(value) else {
        return Err(format!("invalid value for header {name:?}"));
    };
    if header_name == http::header::AUTHORIZATION || header_name == http::header::COOKIE {
        header_value.set_sensitive(true);
    }
    Ok((header_name, header_value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_and_credentials_marked_sensitive() {
        let (name, value) = checked_header("Authorization", "Bearer x").unwrap();
        assert_eq!(name, http::header::AUTHORIZATION);
        assert!(value.is_sensitive());
        assert!(!checked_header("X-Id", "1").unwrap().1.is_sensitive());
        assert!(checked_header("bad name", "x").is_err());
        assert!(checked_header("X-Ok", "line\nbreak").is_err());
        assert!(checked_header("Sec-WebSocket-Key", "x").is_err());
    }

    #[test]
    fn the_hook_is_called_with_the_attempt_and_its_error_boxed() {
        let config = super::super::Config::builder()
            .before_each_connect(|attempt| {
                if attempt < 2 {
                    Ok(ConnectRequest::new().url(format!("ws://127.0.0.1/{attempt}")))
                } else {
                    Err("no more tokens".into())
                }
            })
            .build()
            .unwrap();
        let hook = config.before_each_connect.unwrap();
        assert_eq!(hook.call(1).unwrap().url.unwrap(), "ws://127.0.0.1/1");
        assert_eq!(hook.call(2).unwrap_err().to_string(), "no more tokens");
        assert_eq!(format!("{hook:?}"), "ConnectHook(..)");
    }

    #[test]
    fn debug_shows_no_url_or_header_value() {
        let request = ConnectRequest::new()
            .url("wss://127.0.0.1/?token=hunter2")
            .header("Authorization", "Bearer hunter2");
        let debug = format!("{request:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("Authorization"), "{debug}");
    }
}
