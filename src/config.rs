//! Connection settings: [`Config`] and its builder.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use crate::deflate::Offer;
use crate::error::{Error, Result};
use crate::proxy::{self, Proxy, Route};
use crate::redact;
use crate::staying_connected::{self, Keepalive, OfflineSends, Reconnect};
use crate::tls;

mod connect_hook;
mod happy_eyeballs;
#[cfg(feature = "platform-verifier")]
mod platform_verifier;
mod redirects;
mod tcp_keepalive;

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

    /// Trusts this DER-encoded certificate as a root for `wss://`, in addition to the
    /// platform's roots (or instead of them, with [`platform_roots(false)`](Self::platform_roots)).
    /// Use it for a private CA or a self-signed server. May be called more than once. Defaults
    /// to none.
    pub fn root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.tls.root_der.push(der.into());
        self
    }

    /// Trusts every certificate in this PEM text (`-----BEGIN CERTIFICATE-----` blocks) as a
    /// root for `wss://`, in addition to the platform's roots (or instead of them, with
    /// [`platform_roots(false)`](Self::platform_roots)). May be called more than once. Defaults
    /// to none.
    ///
    /// # Examples
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let pem = ca.cert.pem();
    /// let config = nwebsocket::Config::builder()
    ///     .root_certificates_pem(pem) // e.g. include_bytes!("my-ca.pem")
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.root_pem.push(tls::Pem::Bytes(pem.into()));
        self
    }

    /// Like [`root_certificates_pem`](Self::root_certificates_pem), with the PEM read from this
    /// file when [`build`](Self::build) is called. Defaults to none.
    ///
    /// # Examples
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let path = std::env::temp_dir().join(format!("nwebsocket-doc-{}.pem", std::process::id()));
    /// # std::fs::write(&path, ca.cert.pem()).unwrap();
    /// let config = nwebsocket::Config::builder()
    ///     .root_certificates_pem_file(&path) // e.g. "/etc/my-broker/ca.pem"
    ///     .platform_roots(false) // trust that CA only
    ///     .build()?;
    /// # drop(config);
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn root_certificates_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.root_pem.push(tls::Pem::File(path.into()));
        self
    }

    /// Whether `wss://` trusts the platform's root certificates (rustls-native-certs: the
    /// system store, or the file and directory named by the `SSL_CERT_FILE` and `SSL_CERT_DIR`
    /// environment variables, read once per process) and, with the `webpki-roots` feature, the
    /// bundled Mozilla roots. Set `false` to trust only the roots added with
    /// [`root_certificate`](Self::root_certificate) and the `root_certificates_pem*` setters.
    /// Defaults to `true`.
    pub fn platform_roots(mut self, trust: bool) -> Self {
        self.tls.platform_roots = Some(trust);
        self
    }

    /// Presents this certificate chain (PEM, the client's certificate first) and its private
    /// key (PEM: PKCS#8, PKCS#1 or SEC1) to a server that asks for one: mutual TLS. Defaults to
    /// none.
    ///
    /// # Examples
    ///
    /// ```
    /// # let client = rcgen::generate_simple_self_signed(vec!["robot-7".into()]).unwrap();
    /// # let (chain_pem, key_pem) = (client.cert.pem(), client.signing_key.serialize_pem());
    /// let config = nwebsocket::Config::builder()
    ///     .client_certificate_pem(chain_pem, key_pem)
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn client_certificate_pem(
        mut self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client_cert = Some((tls::Pem::Bytes(chain.into()), tls::Pem::Bytes(key.into())));
        self
    }

    /// Like [`client_certificate_pem`](Self::client_certificate_pem), with both read from files
    /// when [`build`](Self::build) is called. Defaults to none.
    pub fn client_certificate_pem_file(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.client_cert = Some((tls::Pem::File(chain.into()), tls::Pem::File(key.into())));
        self
    }

    /// **Turns certificate verification off**: `wss://` then accepts any certificate, for any
    /// host, expired or self-signed. Anyone on the network path can then read and change the
    /// traffic. For development against a throwaway server only; trust its certificate with
    /// [`root_certificates_pem`](Self::root_certificates_pem) instead wherever you can. A
    /// warning is logged when the config is built and at every handshake. Defaults to `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = nwebsocket::Config::builder()
    ///     .danger_accept_invalid_certs(true)
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls.danger_accept_invalid_certs = accept;
        self
    }

    /// Uses this rustls configuration for `wss://` as it is, for anything the other TLS options
    /// do not cover (ALPN, key logging, a custom verifier, another crypto provider...).
    ///
    /// **Not covered by this crate's semver:** the parameter is a type of rustls, which is not
    /// 1.0, so this method follows rustls's versioning. A rustls upgrade in a minor release of
    /// this crate may change the type it takes. Defaults to none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let mut roots = rustls::RootCertStore::empty();
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let my_ca_der = ca.cert.der().clone();
    /// roots.add(my_ca_der)?;
    /// let tls = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let config = nwebsocket::Config::builder()
    ///     .unversioned_rustls_config(Arc::new(tls))
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unversioned_rustls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls.unversioned = Some(config);
        self
    }

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
    /// ([`Error::Timeout`] with [`TimeoutKind::DeadPeer`](crate::TimeoutKind::DeadPeer)),
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
    /// ([`Error::Rejected`]) or the HTTP proxy ([`Error::ProxyRejected`]) other than 408
    /// Request Timeout and 429 Too Many Requests (say 401 for an expired token, 403, 404);
    /// SOCKS5 credentials missing or refused; and [`Error::InvalidUrl`] or
    /// [`Error::InvalidConfig`] (which [`Client::connect`](crate::Client::connect) returns
    /// where it can tell at once, such as a bad proxy in the environment). To try again, fix
    /// the cause and connect anew. Everything else is retried: the network, 3xx, 408, 429,
    /// 5xx, a proxy that cannot reach the server, and TLS failures, also of the certificate
    /// ([`Error::Tls`]): a captive portal or an intercepting middlebox presents a wrong one,
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
    /// [`Error::InvalidConfig`] (quoting no credentials) rather than go around the proxy.
    /// Defaults to `true`.
    pub fn proxy_from_env(mut self, read: bool) -> Self {
        self.config.proxy_from_env = read;
        self
    }

    /// Offers permessage-deflate (RFC 7692) in the handshake, as browsers do. When the server
    /// agrees, messages of at least [`deflate_threshold`](Self::deflate_threshold) bytes go
    /// out compressed, and compressed messages from the server are inflated (never past
    /// [`max_message_size`](Self::max_message_size): a larger one fails with close code
    /// 1009). The agreed terms are in [`OpenEvent::extensions`](crate::OpenEvent::extensions).
    /// Costs memory per connection while agreed: the compressor's state (about 256 KiB with a
    /// 15-bit window) and the decompressor's (about 40 KiB). Defaults to `true`.
    pub fn deflate(mut self, offer: bool) -> Self {
        self.config.deflate = offer;
        self
    }

    /// The smallest message, in bytes, that is sent compressed when permessage-deflate is
    /// agreed; smaller ones go out as they are (which the extension allows), since compressing
    /// them saves little and costs CPU. Defaults to 64.
    pub fn deflate_threshold(mut self, bytes: usize) -> Self {
        self.config.deflate_threshold = bytes;
        self
    }

    /// Compresses every message from an empty window (offered as `client_no_context_takeover`):
    /// less memory on both sides, worse compression of similar messages. The server may ask
    /// for this too, and then it is done whatever this says. Defaults to `false`.
    pub fn deflate_client_no_context_takeover(mut self, reset: bool) -> Self {
        self.config.deflate_client_no_context_takeover = reset;
        self
    }

    /// Asks the server to compress every message from an empty window
    /// (`server_no_context_takeover`); a server that does not agree fails the handshake.
    /// Defaults to `false`.
    pub fn deflate_server_no_context_takeover(mut self, reset: bool) -> Self {
        self.config.deflate_server_no_context_takeover = reset;
        self
    }

    /// The largest window the client compresses with, 9 to 15 bits (offered as
    /// `client_max_window_bits`; the server may lower it). Smaller windows save memory on the
    /// server. Defaults to 15.
    pub fn deflate_client_max_window_bits(mut self, bits: u8) -> Self {
        self.config.deflate_client_max_window_bits = bits;
        self
    }

    /// The largest window the server may compress with, 9 to 15 bits (offered as
    /// `server_max_window_bits` below 15). Smaller windows save memory here. Defaults to 15.
    pub fn deflate_server_max_window_bits(mut self, bits: u8) -> Self {
        self.config.deflate_server_max_window_bits = bits;
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
