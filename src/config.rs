//! Connection settings: [`Config`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use crate::deflate::Offer;
use crate::error::{Error, Result};
use crate::proxy::{self, Proxy, Route};
use crate::redact;
use crate::staying_connected::{self, Keepalive, OfflineSends, Reconnect};
use crate::tls;

mod compression;
mod connect_hook;
mod happy_eyeballs;
mod keepalive_reconnect;
mod limits;
#[cfg(feature = "platform-verifier")]
mod platform_verifier;
mod proxying;
mod redirects;
mod tcp_keepalive;
mod tls_trust;

pub use connect_hook::ConnectRequest;
pub(crate) use connect_hook::{ConnectHook, checked_header};
use happy_eyeballs::Resolve;
pub(crate) use tcp_keepalive::TcpKeepalive;

/// Headers that the handshake writes itself; setting them by hand would break it. Extensions
/// are among them: the client offers permessage-deflate itself (see
/// [`ConfigBuilder::deflate`]), and offering one it does not implement would fail the
/// connection on the first frame that uses it.
const RESERVED_HEADERS: [&str; 7] = [
    "host",
    "connection",
    "upgrade",
    "sec-websocket-version",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// The longest timeout: a week. Longer ones are surely a mistake, and `Instant` arithmetic
/// with `Duration::MAX` would overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest read or write buffer: each connection allocates it.
const MAX_BUFFER: usize = 64 << 20;

/// The largest event queue: a bound that still bounds something.
const MAX_QUEUE: usize = 1 << 24;

/// Settings for one connection. Build one with [`Config::builder`]; the default is what
/// [`Client::connect`](crate::Client::connect) uses.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let config = nwebsocket::Config::builder()
///     .header("Authorization", "Bearer secret")
///     .protocol("chat.v2")
///     .connect_timeout(Duration::from_secs(5))
///     .event_queue_capacity(4096)
///     .build()?;
/// assert_eq!(config.event_queue_capacity(), 4096);
/// # Ok::<(), nwebsocket::Error>(())
/// ```
///
/// Its `Debug` shows `***` for the values of headers that carry credentials (`Authorization`,
/// `Cookie`, names with `token`, `key`, `secret`, ...) and for the proxy's credentials.
#[derive(Clone)]
pub struct Config {
    headers: Vec<(HeaderName, HeaderValue)>,
    protocols: Vec<String>,
    connect_timeout: Duration,
    close_timeout: Duration,
    max_message_size: usize,
    max_frame_size: usize,
    event_queue_capacity: usize,
    event_queue_bytes: usize,
    max_buffered_amount: usize,
    tcp_nodelay: bool,
    read_buffer_size: usize,
    write_buffer_size: usize,
    tls: Option<Arc<rustls::ClientConfig>>,
    keepalive: Keepalive,
    reconnect: Option<Reconnect>,
    offline_sends: OfflineSends,
    proxy: Option<Proxy>,
    proxy_from_env: bool,
    deflate: bool,
    deflate_threshold: usize,
    deflate_client_no_context_takeover: bool,
    deflate_server_no_context_takeover: bool,
    deflate_client_max_window_bits: u8,
    deflate_server_max_window_bits: u8,
    before_each_connect: Option<ConnectHook>,
    tcp_keepalive: Option<TcpKeepalive>,
    happy_eyeballs_delay: Duration,
    resolve: Vec<Resolve>,
    follow_redirects: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            headers: Vec::new(),
            protocols: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            event_queue_capacity: 4096,
            event_queue_bytes: 64 << 20,
            max_buffered_amount: 32 << 20,
            tcp_nodelay: true,
            read_buffer_size: 32 << 10,
            write_buffer_size: 128 << 10,
            tls: None,
            keepalive: Keepalive::default(),
            reconnect: None,
            offline_sends: OfflineSends::default(),
            proxy: None,
            proxy_from_env: true,
            deflate: true,
            deflate_threshold: 64,
            deflate_client_no_context_takeover: false,
            deflate_server_no_context_takeover: false,
            deflate_client_max_window_bits: 15,
            deflate_server_max_window_bits: 15,
            before_each_connect: None,
            tcp_keepalive: None,
            happy_eyeballs_delay: Duration::from_millis(250),
            resolve: Vec::new(),
            follow_redirects: 0,
        }
    }
}

impl Config {
    /// Starts a builder with every setting at its default.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
            raw_headers: Vec::new(),
            tls: tls::TlsSettings::default(),
            reconnect: false,
            reconnect_policy: None,
            raw_proxy: None,
        }
    }

    /// Extra headers sent with the upgrade request.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
    }

    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The limit on DNS, TCP connect, the proxy's tunnel, TLS and the HTTP upgrade together.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long the I/O thread waits for the server's side of the close handshake.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// The largest inbound message, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The largest inbound frame, in bytes.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// How many messages the event queue holds before the I/O thread stops reading.
    pub fn event_queue_capacity(&self) -> usize {
        self.event_queue_capacity
    }

    /// See [`ConfigBuilder::event_queue_bytes`].
    pub fn event_queue_bytes(&self) -> usize {
        self.event_queue_bytes
    }

    /// See [`ConfigBuilder::max_buffered_amount`].
    pub fn max_buffered_amount(&self) -> usize {
        self.max_buffered_amount
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`).
    pub fn tcp_nodelay(&self) -> bool {
        self.tcp_nodelay
    }

    /// The keepalive ping interval, if pings are on.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.keepalive.ping_interval
    }

    /// The dead-peer timeout, if it is on.
    pub fn dead_peer_timeout(&self) -> Option<Duration> {
        self.keepalive.dead_peer_timeout
    }

    /// Whether the connection is reopened automatically after it is lost.
    pub fn reconnect(&self) -> bool {
        self.reconnect.is_some()
    }

    /// What sends do while no connection is open.
    pub fn offline_sends(&self) -> OfflineSends {
        self.offline_sends
    }

    pub(crate) fn keepalive(&self) -> Keepalive {
        self.keepalive
    }

    pub(crate) fn reconnect_policy(&self) -> Option<&Reconnect> {
        self.reconnect.as_ref()
    }

    /// The size of the socket read buffer.
    pub fn read_buffer_size(&self) -> usize {
        self.read_buffer_size
    }

    /// How many bytes of outgoing frames are gathered before a write.
    pub fn write_buffer_size(&self) -> usize {
        self.write_buffer_size
    }

    /// Whether the proxy environment variables are read when no proxy is set explicitly.
    pub fn proxy_from_env(&self) -> bool {
        self.proxy_from_env
    }

    /// Whether permessage-deflate is offered.
    pub fn deflate(&self) -> bool {
        self.deflate
    }

    /// The smallest message that is compressed when permessage-deflate is agreed.
    pub fn deflate_threshold(&self) -> usize {
        self.deflate_threshold
    }

    /// Whether the client compresses every message from an empty window.
    pub fn deflate_client_no_context_takeover(&self) -> bool {
        self.deflate_client_no_context_takeover
    }

    /// Whether the server is asked to compress every message from an empty window.
    pub fn deflate_server_no_context_takeover(&self) -> bool {
        self.deflate_server_no_context_takeover
    }

    /// The largest compression window the client uses, in bits (9 to 15).
    pub fn deflate_client_max_window_bits(&self) -> u8 {
        self.deflate_client_max_window_bits
    }

    /// The largest compression window the server may use, in bits (9 to 15).
    pub fn deflate_server_max_window_bits(&self) -> u8 {
        self.deflate_server_max_window_bits
    }

    /// The permessage-deflate offer, if it is on.
    pub(crate) fn deflate_offer(&self) -> Option<Offer> {
        self.deflate.then_some(Offer {
            server_no_context_takeover: self.deflate_server_no_context_takeover,
            client_no_context_takeover: self.deflate_client_no_context_takeover,
            server_max_window_bits: self.deflate_server_max_window_bits,
            client_max_window_bits: self.deflate_client_max_window_bits,
        })
    }

    /// How to reach `host:port` (`tls` for `wss://`): the explicit proxy, else the one the
    /// environment (read through `var`) names for it, else directly.
    pub(crate) fn route(
        &self,
        tls: bool,
        host: &str,
        port: u16,
        var: impl Fn(&str) -> Option<String>,
    ) -> Route {
        match &self.proxy {
            Some(proxy) => Route::Proxy(proxy.clone()),
            None if self.proxy_from_env => proxy::route_from_env(tls, host, port, var),
            None => Route::Direct,
        }
    }

    /// The hook that picks each attempt's URL and headers, if one is set.
    pub(crate) fn before_each_connect(&self) -> Option<&ConnectHook> {
        self.before_each_connect.as_ref()
    }

    /// The headers as the handshake request wants them.
    pub(crate) fn header_pairs(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The rustls configuration for `wss://`, built once: either this config's own (any TLS
    /// option set) or the process-wide one with the default roots.
    pub(crate) fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        match &self.tls {
            Some(config) => Ok(config.clone()),
            None => tls::default_config(),
        }
    }

    /// The tungstenite settings that follow from this config.
    pub(crate) fn websocket_config(&self) -> tungstenite::protocol::WebSocketConfig {
        tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
    }
}

/// Builds a [`Config`]; each setter documents its default. [`build`](Self::build) checks the
/// whole config.
///
/// Its `Debug` hides credentials as [`Config`]'s does, also in a proxy URL that does not parse.
#[must_use = "a builder does nothing until you call build()"]
#[derive(Clone)]
pub struct ConfigBuilder {
    config: Config,
    raw_headers: Vec<(String, String)>,
    tls: tls::TlsSettings,
    reconnect: bool,
    /// Reconnect settings made so far; `build()` refuses them if reconnection stays off.
    reconnect_policy: Option<Reconnect>,
    raw_proxy: Option<String>,
}

impl ConfigBuilder {
    /// Adds a header to the upgrade request, e.g. `Authorization` or `Origin`. May be called
    /// more than once, also with the same name. The handshake's own headers (`Host`,
    /// `Connection`, `Upgrade`, `Sec-WebSocket-*`) cannot be set. Defaults to none.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.raw_headers.push((name.into(), value.into()));
        self
    }

    /// Offers a subprotocol in `Sec-WebSocket-Protocol`; call once per protocol, most preferred
    /// first. The one the server picks is in [`Event::Open`](crate::Event::Open) and
    /// [`Client::protocol`](crate::Client::protocol). Defaults to none.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.config.protocols.push(protocol.into());
        self
    }

    /// Limits DNS, TCP connect (over every resolved address), the proxy's tunnel, TLS and the
    /// HTTP upgrade together. Defaults to 30 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How long to wait for the server to answer our close frame and close TCP, as RFC 6455
    /// asks, before the I/O thread drops the socket. Defaults to 5 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Checks the settings and builds the config.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a header name or value is invalid or reserved, a
    /// subprotocol is empty, not an HTTP token or given twice, a size or the queue capacity is
    /// zero, a buffer is over 64 MiB or the queue over 2^24 messages, the frame limit exceeds
    /// the message limit, or a timeout, interval or delay is zero or over a week; the
    /// maximum reconnect delay is below the initial one, the maximum number of attempts is
    /// zero, a reconnect close code is not one a server may send, or reconnect settings are
    /// made without [`reconnect(true)`](Self::reconnect). For TLS: a root
    /// certificate, PEM text, client certificate or key cannot be read or parsed; the client key
    /// does not match its certificate; [`platform_roots(false)`](Self::platform_roots) leaves
    /// no root to trust; [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs) is
    /// combined with a root option; or
    /// [`unversioned_rustls_config`](Self::unversioned_rustls_config) is combined with any other
    /// TLS option. For proxies: the [`proxy`](Self::proxy) URL does not parse, has a scheme other
    /// than `http`, `socks5` or `socks5h`, a path, or (for SOCKS5) a user name or password over
    /// 255 bytes; the message never quotes the credentials. For compression: a window size
    /// outside 9 to 15 bits. For TCP keepalive: a time not whole seconds from 1 to 32767, or a
    /// probe count not 1 to 127. For connecting: a Happy Eyeballs delay not 10 ms to 60 s, or
    /// [`resolve_to_addrs`](Self::resolve_to_addrs) with no address.
    pub fn build(self) -> Result<Config> {
        let ConfigBuilder {
            mut config,
            raw_headers,
            tls,
            reconnect,
            reconnect_policy,
            raw_proxy,
        } = self;
        let invalid = |why: String| Err(Error::InvalidConfig(why));

        config.reconnect = match (reconnect, reconnect_policy) {
            (true, policy) => Some(policy.unwrap_or_default()),
            (false, None) => None,
            (false, Some(_)) => {
                return invalid("reconnect settings are made but reconnect(true) is not".into());
            }
        };
        if let Err(why) =
            staying_connected::check(&config.keepalive, config.reconnect.as_ref(), MAX_TIMEOUT)
        {
            return invalid(why);
        }

        for (name, value) in raw_headers {
            let header =
                connect_hook::checked_header(&name, &value).map_err(Error::InvalidConfig)?;
            config.headers.push(header);
        }
        for (i, protocol) in config.protocols.iter().enumerate() {
            if !is_token(protocol) {
                return invalid(format!("subprotocol {protocol:?} is not an HTTP token"));
            }
            if config.protocols[..i].contains(protocol) {
                return invalid(format!("subprotocol {protocol:?} is offered twice"));
            }
        }
        for (name, timeout) in [
            ("connect_timeout", config.connect_timeout),
            ("close_timeout", config.close_timeout),
        ] {
            if timeout.is_zero() || timeout > MAX_TIMEOUT {
                return invalid(format!("{name} must be above zero and at most a week"));
            }
        }
        if !(1..=MAX_QUEUE).contains(&config.event_queue_capacity) {
            return invalid(format!("the event queue capacity must be 1 to {MAX_QUEUE}"));
        }
        for (name, bytes) in [
            ("event_queue_bytes", config.event_queue_bytes),
            ("max_buffered_amount", config.max_buffered_amount),
        ] {
            if bytes == 0 || bytes > isize::MAX as usize {
                return invalid(format!("{name} must be above zero"));
            }
        }
        for (name, size) in [
            ("read_buffer_size", config.read_buffer_size),
            ("write_buffer_size", config.write_buffer_size),
        ] {
            if !(1..=MAX_BUFFER).contains(&size) {
                return invalid(format!("{name} must be 1 byte to 64 MiB"));
            }
        }
        if config.max_message_size == 0 || config.max_frame_size == 0 {
            return invalid("message and frame limits must be greater than zero".into());
        }
        if config.max_frame_size > config.max_message_size {
            return invalid("max_frame_size exceeds max_message_size".into());
        }
        for (name, bits) in [
            (
                "deflate_client_max_window_bits",
                config.deflate_client_max_window_bits,
            ),
            (
                "deflate_server_max_window_bits",
                config.deflate_server_max_window_bits,
            ),
        ] {
            if !(9..=15).contains(&bits) {
                return invalid(format!("{name} must be 9 to 15"));
            }
        }
        if let Some(Err(why)) = config.tcp_keepalive.map(|k| k.check()) {
            return invalid(why);
        }
        happy_eyeballs::check(config.happy_eyeballs_delay, &config.resolve)
            .map_err(Error::InvalidConfig)?;
        if let Some(url) = raw_proxy {
            config.proxy = Some(Proxy::parse(&url).map_err(Error::InvalidConfig)?);
        }
        config.tls = tls.build()?;
        Ok(config)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("headers", &redact::Headers(&self.headers))
            .field("protocols", &self.protocols)
            .field("connect_timeout", &self.connect_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("event_queue_capacity", &self.event_queue_capacity)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("custom_tls", &self.tls.is_some())
            .field("keepalive", &self.keepalive)
            .field("reconnect", &self.reconnect)
            .field("offline_sends", &self.offline_sends)
            .field("proxy", &self.proxy)
            .field("proxy_from_env", &self.proxy_from_env)
            .field("deflate", &self.deflate_offer())
            .field("deflate_threshold", &self.deflate_threshold)
            .finish()
    }
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("config", &self.config)
            .field("headers", &redact::Headers(&self.raw_headers))
            .field("tls", &self.tls)
            .field("reconnect", &self.reconnect)
            .field("reconnect_policy", &self.reconnect_policy)
            .field("proxy", &self.raw_proxy.as_deref().map(redact::url))
            .finish()
    }
}

/// An RFC 7230 token: the characters a subprotocol name may use.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejects(builder: ConfigBuilder) {
        assert!(matches!(builder.build(), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn defaults_build() {
        let config = Config::builder().build().unwrap();
        assert_eq!(config.event_queue_capacity(), 4096);
        assert!(config.tcp_nodelay());
        assert_eq!(config.max_message_size(), 64 << 20);
    }

    #[test]
    fn headers_and_protocols_are_checked() {
        let ok = Config::builder()
            .header("Authorization", "Bearer x")
            .header("X-Id", "1")
            .protocol("chat")
            .protocol("v2.chat")
            .build()
            .unwrap();
        assert_eq!(ok.headers().count(), 2);
        assert_eq!(ok.protocols(), ["chat", "v2.chat"]);

        rejects(Config::builder().header("bad name", "x"));
        rejects(Config::builder().header("X-Ok", "line\nbreak"));
        rejects(Config::builder().header("Sec-WebSocket-Key", "x"));
        rejects(Config::builder().header("host", "x"));
        rejects(Config::builder().protocol(""));
        rejects(Config::builder().protocol("a,b"));
        rejects(Config::builder().protocol("chat").protocol("chat"));
    }

    #[test]
    fn limits_are_checked() {
        rejects(Config::builder().event_queue_capacity(0));
        rejects(Config::builder().event_queue_bytes(0));
        rejects(Config::builder().max_buffered_amount(0));
        rejects(Config::builder().max_message_size(0));
        rejects(
            Config::builder()
                .max_frame_size(2048)
                .max_message_size(1024),
        );
        rejects(Config::builder().connect_timeout(Duration::ZERO));
        rejects(Config::builder().close_timeout(Duration::ZERO));
        rejects(Config::builder().read_buffer_size(0));
        // Each of these passed once and then failed (or panicked) on the I/O thread.
        rejects(Config::builder().write_buffer_size(usize::MAX));
        rejects(Config::builder().read_buffer_size(usize::MAX));
        rejects(Config::builder().event_queue_capacity(usize::MAX));
        rejects(Config::builder().connect_timeout(Duration::MAX));
        rejects(Config::builder().close_timeout(Duration::MAX));
        rejects(Config::builder().header("Sec-WebSocket-Extensions", "permessage-deflate"));
        rejects(Config::builder().root_certificate(b"not a certificate".to_vec()));
        rejects(Config::builder().deflate_client_max_window_bits(8));
        rejects(Config::builder().deflate_server_max_window_bits(16));
    }

    #[test]
    fn deflate_is_offered_by_default_and_can_be_shaped_or_turned_off() {
        let default = Config::default();
        assert!(default.deflate());
        assert_eq!(
            default.deflate_offer().unwrap().header(),
            "permessage-deflate; client_max_window_bits"
        );
        let off = Config::builder().deflate(false).build().unwrap();
        assert_eq!(off.deflate_offer(), None);
        let shaped = Config::builder()
            .deflate_threshold(0)
            .deflate_client_no_context_takeover(true)
            .deflate_server_no_context_takeover(true)
            .deflate_client_max_window_bits(9)
            .deflate_server_max_window_bits(12)
            .build()
            .unwrap();
        assert_eq!(shaped.deflate_threshold(), 0);
        assert_eq!(
            shaped.deflate_offer().unwrap().header(),
            "permessage-deflate; client_max_window_bits=9; server_max_window_bits=12; \
             client_no_context_takeover; server_no_context_takeover"
        );
    }

    #[test]
    fn proxies_are_checked_and_an_explicit_one_wins_over_the_environment() {
        rejects(Config::builder().proxy("https://proxy:443"));
        rejects(Config::builder().proxy("socks4://proxy"));
        rejects(Config::builder().proxy("http://proxy:3128/path"));
        let Err(Error::InvalidConfig(why)) =
            Config::builder().proxy("ftp://robot:hunter2@proxy").build()
        else {
            panic!("accepted")
        };
        assert!(!why.contains("hunter2"), "{why}");

        let env = |name: &str| (name == "https_proxy").then(|| "http://env-proxy:1".to_owned());
        let explicit = Config::builder()
            .proxy("socks5h://explicit:2")
            .build()
            .unwrap();
        let Route::Proxy(proxy) = explicit.route(true, "h", 443, env) else {
            panic!("no proxy")
        };
        assert_eq!(proxy.to_string(), "socks5h://explicit:2");
        let default = Config::default();
        assert!(default.proxy_from_env());
        let Route::Proxy(proxy) = default.route(true, "h", 443, env) else {
            panic!("no proxy")
        };
        assert_eq!(proxy.to_string(), "http://env-proxy:1");
        assert_eq!(default.route(false, "h", 80, env), Route::Direct);
        let ignoring = Config::builder().proxy_from_env(false).build().unwrap();
        assert_eq!(ignoring.route(true, "h", 443, env), Route::Direct);
    }
}
