//! The crate's error type and the receive errors of the event queue.

use std::any::Any;
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A boxed error from a dependency, kept as a `source()` so that no dependency's type is part of
/// our API. Reach it with `downcast_ref` if you must.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, grouped by what the caller can do about it.
///
/// Errors that end a connection arrive as [`Event::Error`](crate::Event::Error), always followed
/// by [`Event::Close`](crate::Event::Close). Errors from calls on the handle (a bad URL, a bad
/// close code, a send after close) are returned by the call and change nothing.
///
/// The message of each variant is short; the cause, where there is one, is its
/// [`source()`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL cannot be parsed, its scheme is not `ws` or `wss`, or it has no host.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),

    /// A [`Config`](crate::Config) setting, or a combination of them, is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The close code is neither 1000 nor in 3000–4999 (what the JS API allows).
    #[error("invalid close code {0}: use 1000 or 3000-4999")]
    InvalidCloseCode(u16),

    /// The close reason is longer than 123 bytes of UTF-8.
    #[error("close reason is {0} bytes, the limit is 123")]
    CloseReasonTooLong(usize),

    /// A ping payload is longer than 125 bytes.
    #[error("ping payload is {0} bytes, the limit is 125")]
    PingTooLong(usize),

    /// The host name could not be resolved, or no address accepted a TCP connection. The source
    /// lists each address tried with its I/O error.
    #[error("could not connect")]
    Connect(#[source] BoxError),

    /// A timer ran out: the connection attempt did not finish within the connect timeout, or
    /// the server did not finish the close handshake within the close timeout. `kind` says
    /// which; `during` says what was going on, for the message.
    #[error("timed out {during}")]
    Timeout {
        /// Which timer ran out.
        kind: TimeoutKind,
        /// What was going on, e.g. "in the TLS handshake".
        during: &'static str,
    },

    /// The TLS handshake failed: the server's certificate did not verify, the server sent an
    /// alert (e.g. it wanted a client certificate), or the TLS settings could not be used.
    ///
    /// With TLS 1.3 a server that rejects the client's certificate (or its absence) says so
    /// only after the client has finished its side of the handshake; that alert arrives while
    /// the upgrade response is read, and is reported here too, not as [`Error::Io`].
    #[error("TLS handshake failed")]
    Tls {
        /// What went wrong, for a caller to match on.
        kind: TlsErrorKind,
        /// The cause: the rustls error (reach it with `downcast_ref`), or an I/O error.
        source: BoxError,
    },

    /// The server answered the upgrade request with something other than `101 Switching
    /// Protocols`. Redirects (3xx) are reported here too: they are not followed.
    #[error("handshake rejected with HTTP status {status}")]
    Rejected {
        /// The HTTP status code, e.g. 404.
        status: u16,
        /// The response headers, e.g. `WWW-Authenticate` or `Retry-After`.
        headers: Box<http::HeaderMap>,
        /// The start of the response body, as far as it arrived with the headers.
        body: Box<[u8]>,
    },

    /// A redirect of the upgrade request was not followed, though
    /// [`follow_redirects`](crate::ConfigBuilder::follow_redirects) is on: one too many, from
    /// `wss` to `ws`, credentials to another host, or a `Location` that is not a WebSocket URL.
    /// The source says which. (With `follow_redirects` off, a redirect is
    /// [`Rejected`](Self::Rejected).)
    #[error("redirect not followed")]
    Redirect(#[source] BoxError),

    /// The HTTP proxy refused the `CONNECT` tunnel: 407 (credentials missing or refused), 401
    /// (some proxies, tinyproxy among them, answer wrong credentials so), 403 (not allowed),
    /// 502 (the proxy could not reach the server), ...
    #[error("the proxy refused the tunnel with HTTP status {status}")]
    ProxyRejected {
        /// The HTTP status code, e.g. 407.
        status: u16,
        /// The response headers, e.g. `Proxy-Authenticate`, which names the schemes the proxy
        /// accepts.
        headers: Box<http::HeaderMap>,
    },

    /// The proxy (HTTP `CONNECT` or SOCKS5) failed otherwise: a SOCKS5 error reply, refused
    /// SOCKS5 credentials, a proxy that closed the connection or spoke another protocol.
    /// `kind` says which. Proxy credentials never appear in the message.
    #[error("proxy failed: {kind}")]
    Proxy {
        /// What went wrong, for a caller to match on.
        kind: ProxyErrorKind,
        /// The cause, where there is one: the I/O error, or what was wrong with the reply.
        #[source]
        source: Option<BoxError>,
    },

    /// The server's upgrade response was not a valid WebSocket handshake (garbage, a wrong
    /// `Sec-WebSocket-Accept`, a subprotocol we did not offer, ...).
    #[error("invalid handshake response")]
    Handshake(#[source] BoxError),

    /// The server broke the WebSocket protocol (invalid UTF-8 in a text message, a masked or
    /// malformed frame, a message over the size limit, ...). The connection was failed.
    #[error("WebSocket protocol error")]
    Protocol(#[source] BoxError),

    /// An I/O error on an established connection: a reset, or the server closed TCP without a
    /// close frame (`UnexpectedEof`).
    #[error("connection lost")]
    Io(#[from] io::Error),

    /// The operating system refused what the I/O thread needs: the poller, its waker, the
    /// thread itself, or a wait on the poller failed. Nothing to do with the server.
    #[error("the I/O thread could not run")]
    Runtime(#[source] io::Error),

    /// The [`before_each_connect`](crate::ConfigBuilder::before_each_connect) hook failed: it
    /// returned this error (the source), panicked, or returned a URL or header that is not
    /// valid ([`InvalidUrl`](Self::InvalidUrl) or [`InvalidConfig`](Self::InvalidConfig) as
    /// the source). Ends reconnecting.
    #[error("the before_each_connect hook failed")]
    ConnectHook(#[source] BoxError),

    /// The connection attempt was aborted by [`close`](crate::SendHandle::close) before it
    /// was open.
    #[error("connection attempt aborted by close()")]
    Aborted,

    /// The connection is closing or closed: nothing more can be sent.
    #[error("connection is closed")]
    Closed,

    /// No connection is open and sends are not queued meanwhile
    /// ([`OfflineSends::Fail`](crate::OfflineSends::Fail)).
    #[error("connection is not open")]
    NotOpen,

    /// The sends waiting to be written already hold this many bytes, and this message would
    /// take them past the bound: [`ConfigBuilder::max_buffered_amount`] while a connection is
    /// open, the [`OfflineSends::Queue`](crate::OfflineSends::Queue) limit while none is.
    /// Nothing was queued; [`SendHandle::wait_buffered_below`] waits for room.
    ///
    /// [`ConfigBuilder::max_buffered_amount`]: crate::ConfigBuilder::max_buffered_amount
    /// [`SendHandle::wait_buffered_below`]: crate::SendHandle::wait_buffered_below
    #[error("{0} bytes already wait to be sent")]
    QueueFull(usize),

    /// A bug: the I/O thread panicked. The connection was dropped; please report it.
    #[error("the I/O thread panicked: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps a tungstenite error met during the HTTP upgrade.
    pub(crate) fn from_handshake(err: tungstenite::Error) -> Self {
        match err {
            tungstenite::Error::Http(response) => {
                let (parts, body) = response.into_parts();
                Error::Rejected {
                    status: parts.status.as_u16(),
                    headers: Box::new(parts.headers),
                    body: body.unwrap_or_default().into_boxed_slice(),
                }
            }
            tungstenite::Error::Io(err) => Error::from_io(err),
            other => Error::Handshake(Box::new(other)),
        }
    }

    /// Wraps an I/O error of the TLS handshake: always [`Error::Tls`], classified by the
    /// rustls error inside it, if any (rustls reports its own errors inside I/O errors).
    pub(crate) fn from_tls(err: io::Error) -> Self {
        match Error::from_io(err) {
            Error::Io(err) => Error::Tls {
                kind: TlsErrorKind::Other,
                source: Box::new(err),
            },
            tls => tls,
        }
    }

    /// Wraps an I/O error: [`Error::Tls`] when rustls put its own error inside (an alert from
    /// the server that arrives after our side of the handshake), [`Error::Io`] otherwise.
    pub(crate) fn from_io(err: io::Error) -> Self {
        let kind = match err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls) => TlsErrorKind::of(rustls),
            None => return Error::Io(err),
        };
        // The rustls error itself becomes the source: `io::Error::source()` would skip it.
        let source = err
            .into_inner()
            .unwrap_or_else(|| "an I/O error without its cause".into());
        Error::Tls { kind, source }
    }

    /// Wraps an error met while setting up or running TLS. A rustls error is classified by its
    /// variant (never by its text); anything else is [`TlsErrorKind::Other`].
    pub(crate) fn from_rustls(err: impl Into<BoxError>) -> Self {
        let source = err.into();
        let kind = source
            .downcast_ref::<rustls::Error>()
            .map_or(TlsErrorKind::Other, TlsErrorKind::of);
        Error::Tls { kind, source }
    }
}

/// What kind of TLS failure an [`Error::Tls`] is. Match on it to tell, say, a private CA that
/// is not trusted yet from a server that wants a client certificate.
///
/// # Examples
///
/// ```
/// use nwebsocket::{Error, TlsErrorKind};
///
/// fn advice(err: &Error) -> &'static str {
///     match err {
///         Error::Tls { kind: TlsErrorKind::UnknownIssuer, .. } => "trust the server's CA",
///         Error::Tls { kind: TlsErrorKind::CertificateRequired, .. } => "send a client certificate",
///         Error::Tls { .. } => "TLS failed",
///         _ => "not TLS",
///     }
/// }
/// # assert_eq!(advice(&Error::Closed), "not TLS");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The server's certificate does not chain to a trusted root (a private CA, a self-signed
    /// certificate, a missing intermediate).
    UnknownIssuer,
    /// The server's certificate is not valid for the URL's host (DNS name or IP address).
    WrongName,
    /// The server's certificate (or one in its chain) has expired.
    Expired,
    /// The server requires a client certificate and none was sent (the TLS 1.3
    /// `certificate_required` alert).
    CertificateRequired,
    /// The server sent this other fatal alert, by its number in the TLS registry, e.g. 40
    /// `handshake_failure`, 42 `bad_certificate`, 48 `unknown_ca`, 70 `protocol_version`.
    Alert(u8),
    /// Anything else: the server does not speak TLS, a bad signature, the connection dropped
    /// mid-handshake, ... The source says what.
    Other,
}

impl TlsErrorKind {
    fn of(err: &rustls::Error) -> Self {
        use rustls::{AlertDescription, CertificateError};
        match err {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => TlsErrorKind::UnknownIssuer,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsErrorKind::WrongName,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsErrorKind::Expired
                }
                _ => TlsErrorKind::Other,
            },
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
                TlsErrorKind::CertificateRequired
            }
            rustls::Error::AlertReceived(alert) => TlsErrorKind::Alert(u8::from(*alert)),
            _ => TlsErrorKind::Other,
        }
    }
}

impl fmt::Display for TlsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsErrorKind::UnknownIssuer => f.write_str("certificate issuer not trusted"),
            TlsErrorKind::WrongName => f.write_str("certificate not valid for the host"),
            TlsErrorKind::Expired => f.write_str("certificate expired"),
            TlsErrorKind::CertificateRequired => f.write_str("client certificate required"),
            TlsErrorKind::Alert(code) => write!(f, "alert {code} from the server"),
            TlsErrorKind::Other => f.write_str("other TLS failure"),
        }
    }
}

/// What kind of proxy failure an [`Error::Proxy`] is. An HTTP proxy's refusal is
/// [`Error::ProxyRejected`] instead, with its status and headers.
///
/// # Examples
///
/// ```
/// use nwebsocket::{Error, ProxyErrorKind};
///
/// fn advice(err: &Error) -> &'static str {
///     match err {
///         Error::ProxyRejected { status: 407 | 401, .. } => "check the proxy credentials",
///         Error::Proxy { kind: ProxyErrorKind::AuthFailed, .. } => "check the proxy credentials",
///         Error::Proxy { kind: ProxyErrorKind::ConnectionRefused, .. } => "is the server up?",
///         Error::Proxy { .. } | Error::ProxyRejected { .. } => "the proxy failed",
///         _ => "not the proxy",
///     }
/// }
/// # assert_eq!(advice(&Error::Closed), "not the proxy");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyErrorKind {
    /// The SOCKS5 server accepts none of the authentication methods offered: it requires a
    /// user name and password and none was given, or a method this client lacks (GSSAPI).
    AuthRequired,
    /// The SOCKS5 server refused the user name and password (RFC 1929).
    AuthFailed,
    /// SOCKS5 reply 1: general SOCKS server failure.
    GeneralFailure,
    /// SOCKS5 reply 2: the connection is not allowed by the server's rules.
    NotAllowed,
    /// SOCKS5 reply 3: the network is unreachable from the proxy.
    NetworkUnreachable,
    /// SOCKS5 reply 4: the host is unreachable from the proxy (this includes a name that the
    /// proxy could not resolve, with `socks5h://`).
    HostUnreachable,
    /// SOCKS5 reply 5: the server refused the proxy's connection.
    ConnectionRefused,
    /// SOCKS5 reply 6: TTL expired.
    TtlExpired,
    /// SOCKS5 reply 7: the proxy does not support `CONNECT`.
    CommandNotSupported,
    /// SOCKS5 reply 8: the proxy does not support the address type (say, IPv6 or a domain
    /// name: try `socks5://` instead of `socks5h://`).
    AddressTypeNotSupported,
    /// A SOCKS5 reply code that RFC 1928 does not assign.
    Reply(u8),
    /// The proxy closed or reset the connection before the tunnel was up.
    Disconnected,
    /// The proxy's answer was not SOCKS5 or HTTP as expected (or too long); the source says
    /// what was wrong.
    Protocol,
}

impl ProxyErrorKind {
    /// The kind of a SOCKS5 reply code other than 0 (success).
    pub(crate) fn of_socks_reply(code: u8) -> Self {
        match code {
            1 => ProxyErrorKind::GeneralFailure,
            2 => ProxyErrorKind::NotAllowed,
            3 => ProxyErrorKind::NetworkUnreachable,
            4 => ProxyErrorKind::HostUnreachable,
            5 => ProxyErrorKind::ConnectionRefused,
            6 => ProxyErrorKind::TtlExpired,
            7 => ProxyErrorKind::CommandNotSupported,
            8 => ProxyErrorKind::AddressTypeNotSupported,
            other => ProxyErrorKind::Reply(other),
        }
    }
}

impl fmt::Display for ProxyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyErrorKind::AuthRequired => {
                f.write_str("the SOCKS5 server accepts none of the offered authentication methods")
            }
            ProxyErrorKind::AuthFailed => {
                f.write_str("the SOCKS5 server refused the user name and password")
            }
            ProxyErrorKind::GeneralFailure => f.write_str("SOCKS5 reply 1, general failure"),
            ProxyErrorKind::NotAllowed => {
                f.write_str("SOCKS5 reply 2, connection not allowed by ruleset")
            }
            ProxyErrorKind::NetworkUnreachable => {
                f.write_str("SOCKS5 reply 3, network unreachable")
            }
            ProxyErrorKind::HostUnreachable => f.write_str("SOCKS5 reply 4, host unreachable"),
            ProxyErrorKind::ConnectionRefused => f.write_str("SOCKS5 reply 5, connection refused"),
            ProxyErrorKind::TtlExpired => f.write_str("SOCKS5 reply 6, TTL expired"),
            ProxyErrorKind::CommandNotSupported => {
                f.write_str("SOCKS5 reply 7, command not supported")
            }
            ProxyErrorKind::AddressTypeNotSupported => {
                f.write_str("SOCKS5 reply 8, address type not supported")
            }
            ProxyErrorKind::Reply(code) => write!(f, "SOCKS5 reply {code}, unassigned"),
            ProxyErrorKind::Disconnected => {
                f.write_str("the proxy closed the connection before the tunnel was up")
            }
            ProxyErrorKind::Protocol => f.write_str("invalid answer from the proxy"),
        }
    }
}

/// Which timer ended a connection with [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The connection attempt (DNS, TCP, a proxy, TLS and the HTTP upgrade together) took
    /// longer than [`ConfigBuilder::connect_timeout`](crate::ConfigBuilder::connect_timeout).
    Connect,
    /// The server did not answer our close frame within
    /// [`ConfigBuilder::close_timeout`](crate::ConfigBuilder::close_timeout), or the socket
    /// would not take the close frame (the server stopped reading) in that time.
    Close,
    /// Nothing came from the server for
    /// [`ConfigBuilder::dead_peer_timeout`](crate::ConfigBuilder::dead_peer_timeout).
    DeadPeer,
}

/// The message of a caught panic, for the log and [`Error::Internal`].
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "a non-string payload"
    }
}

/// Every address a connection attempt tried, each with the error it gave: the source of
/// [`Error::Connect`] when TCP connects failed.
///
/// ```
/// # fn report(err: &nwebsocket::Error) {
/// use nwebsocket::{ConnectFailures, Error};
///
/// if let Error::Connect(source) = err {
///     if let Some(failures) = source.downcast_ref::<ConnectFailures>() {
///         for (addr, why) in failures.iter() {
///             eprintln!("{addr}: {why}");
///         }
///     }
/// }
/// # }
/// # report(&nwebsocket::Error::Closed);
/// ```
#[derive(Debug)]
pub struct ConnectFailures(pub(crate) Vec<(SocketAddr, io::Error)>);

impl ConnectFailures {
    /// Each address that failed, with its error, in the order they failed (connects race by
    /// [Happy Eyeballs](crate::ConfigBuilder::happy_eyeballs_delay), so a refused address may
    /// fail before one tried earlier).
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &io::Error)> {
        self.0.iter().map(|(addr, err)| (*addr, err))
    }
}

impl fmt::Display for ConnectFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (addr, err)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{addr}: {err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectFailures {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .last()
            .map(|(_, err)| err as &(dyn std::error::Error + 'static))
    }
}

/// Why [`Client::recv`](crate::Client::recv) returned no event: the stream has ended after its
/// [`Event::Close`](crate::Event::Close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event stream has ended")
    }
}

impl std::error::Error for RecvError {}

/// The stream has ended: [`Error::Closed`]. So `ws.recv()?` works in a function that returns
/// [`Result`].
impl From<RecvError> for Error {
    fn from(_: RecvError) -> Self {
        Error::Closed
    }
}

/// Why [`Client::try_recv`](crate::Client::try_recv) returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued right now; more may come.
    Empty,
    /// The stream has ended after its [`Event::Close`](crate::Event::Close).
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "no event queued",
            TryRecvError::Disconnected => "the event stream has ended",
        })
    }
}

impl std::error::Error for TryRecvError {}

/// Why [`Client::recv_timeout`](crate::Client::recv_timeout) returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No event arrived within the timeout; more may come.
    Timeout,
    /// The stream has ended after its [`Event::Close`](crate::Event::Close).
    Disconnected,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting for an event",
            RecvTimeoutError::Disconnected => "the event stream has ended",
        })
    }
}

impl std::error::Error for RecvTimeoutError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_static<T: Send + Sync + 'static>() {}

    #[test]
    fn error_is_small_send_sync() {
        assert_send_sync_static::<Error>();
        assert!(
            std::mem::size_of::<Error>() <= 32,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn messages_do_not_repeat_the_source() {
        let err = Error::Io(io::Error::other("boom"));
        assert_eq!(err.to_string(), "connection lost");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "boom");
    }

    #[test]
    fn panic_messages() {
        let text: Box<dyn Any + Send> = Box::new("boom");
        let owned: Box<dyn Any + Send> = Box::new(String::from("bang"));
        let other: Box<dyn Any + Send> = Box::new(7);
        assert_eq!(panic_message(&*text), "boom");
        assert_eq!(panic_message(&*owned), "bang");
        assert_eq!(panic_message(&*other), "a non-string payload");
    }

    #[test]
    fn connect_failures_list_every_address() {
        let failures = ConnectFailures(vec![
            (
                "127.0.0.1:1".parse().unwrap(),
                io::ErrorKind::ConnectionRefused.into(),
            ),
            (
                "[::1]:1".parse().unwrap(),
                io::ErrorKind::ConnectionRefused.into(),
            ),
        ]);
        let text = failures.to_string();
        assert!(
            text.contains("127.0.0.1:1") && text.contains("[::1]:1"),
            "{text}"
        );
    }

    #[test]
    fn tls_kinds_come_from_rustls_variants() {
        use rustls::{AlertDescription, CertificateError};
        let kind = |err: rustls::Error| match Error::from_rustls(err) {
            Error::Tls { kind, .. } => kind,
            other => panic!("unexpected {other:?}"),
        };
        let cert = rustls::Error::InvalidCertificate;
        assert_eq!(
            kind(cert(CertificateError::UnknownIssuer)),
            TlsErrorKind::UnknownIssuer
        );
        assert_eq!(
            kind(cert(CertificateError::NotValidForName)),
            TlsErrorKind::WrongName
        );
        assert_eq!(kind(cert(CertificateError::Expired)), TlsErrorKind::Expired);
        assert_eq!(
            kind(cert(CertificateError::BadSignature)),
            TlsErrorKind::Other
        );
        assert_eq!(
            kind(rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            )),
            TlsErrorKind::CertificateRequired
        );
        assert_eq!(
            kind(rustls::Error::AlertReceived(
                AlertDescription::HandshakeFailure
            )),
            TlsErrorKind::Alert(40)
        );
        assert_eq!(kind(rustls::Error::DecryptError), TlsErrorKind::Other);
    }

    #[test]
    fn a_rustls_error_inside_an_io_error_is_tls_with_rustls_as_source() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let err = Error::from_io(io::Error::new(io::ErrorKind::InvalidData, alert));
        let Error::Tls { kind, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*kind, TlsErrorKind::CertificateRequired);
        let source = std::error::Error::source(&err).unwrap();
        assert!(source.downcast_ref::<rustls::Error>().is_some());
        // The upgrade maps it.
        let wrapped = || {
            tungstenite::Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::DecryptError,
            ))
        };
        assert!(matches!(
            Error::from_handshake(wrapped()),
            Error::Tls { .. }
        ));
        // Plain I/O errors stay I/O errors, except in the TLS handshake.
        let reset = || io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(Error::from_io(reset()), Error::Io(_)));
        assert!(matches!(
            Error::from_tls(reset()),
            Error::Tls {
                kind: TlsErrorKind::Other,
                ..
            }
        ));
    }

    #[test]
    fn every_socks_reply_has_its_kind() {
        let kinds: Vec<ProxyErrorKind> = (1..=9).map(ProxyErrorKind::of_socks_reply).collect();
        assert_eq!(
            kinds,
            [
                ProxyErrorKind::GeneralFailure,
                ProxyErrorKind::NotAllowed,
                ProxyErrorKind::NetworkUnreachable,
                ProxyErrorKind::HostUnreachable,
                ProxyErrorKind::ConnectionRefused,
                ProxyErrorKind::TtlExpired,
                ProxyErrorKind::CommandNotSupported,
                ProxyErrorKind::AddressTypeNotSupported,
                ProxyErrorKind::Reply(9),
            ]
        );
        for code in 1..=255 {
            let err = Error::Proxy {
                kind: ProxyErrorKind::of_socks_reply(code),
                source: None,
            };
            assert!(err.to_string().contains(&format!("reply {code}")), "{err}");
        }
    }

    #[test]
    fn rejection_keeps_status_and_body() {
        let response = http::Response::builder()
            .status(404)
            .body(Some(b"not here".to_vec()))
            .unwrap();
        match Error::from_handshake(tungstenite::Error::Http(Box::new(response))) {
            Error::Rejected { status, body, .. } => {
                assert_eq!(status, 404);
                assert_eq!(&*body, b"not here");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
