"""The exceptions of nwebsocket.

Every one subclasses :class:`WebSocketError`; most also subclass the built-in exception a
Python programmer would catch (``ConnectionError``, ``ValueError``, ``TimeoutError``), so that
code written for the 1.0 package, which raised ``ConnectionError``, keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

__all__ = [
    "WebSocketError",
    "InvalidStateError",
    "InvalidAccessError",
    "DOMSyntaxError",
    "OptionsError",
    "PayloadTooLongError",
    "StreamEndedError",
    "ConnectFailedError",
    "WebSocketTimeoutError",
    "TLSError",
    "HandshakeRejectedError",
    "ProxyError",
    "ProxyRejectedError",
    "QueueFullError",
    "HandshakeError",
    "ProtocolError",
    "ConnectionLostError",
    "AbortedError",
    "IOThreadError",
    "InternalError",
    "ConnectHookError",
    "RedirectError",
]


class WebSocketError(Exception):
    """The base class of every nwebsocket exception."""


# Raised by calls on a WebSocket.


class InvalidStateError(WebSocketError, ConnectionError):
    """``send()`` before the connection is open, or after it started closing.

    JS throws a DOMException named InvalidStateError for the first case. The 1.0 package raised
    ``ConnectionError``, which this subclasses. With ``reconnect`` or ``offline_sends``, a
    ``send()`` while no connection is open raises it only with ``offline_sends: "fail"``.
    """


class QueueFullError(InvalidStateError):
    """``send()`` of a message that would take the bytes waiting past a limit; nothing was
    queued.

    While a connection is open: ``max_buffered_amount`` (the server does not read as fast as
    the program sends; ``bufferedAmount`` says how much waits). While none is open (connecting,
    or waiting to reconnect) with sends queued for the next connection (``offline_sends:
    "queue"``): ``offline_queue_bytes``. A message larger than the limit can never be sent.

    ``queued`` is how many bytes already wait.
    """

    queued: int = 0


class InvalidAccessError(WebSocketError, ValueError):
    """``close(code)`` with a code that is neither 1000 nor in 3000-4999 (as JS throws)."""


class DOMSyntaxError(WebSocketError, ValueError):
    """A URL that is not ``ws://`` or ``wss://`` with a host, or a close reason over 123 bytes
    of UTF-8 (JS throws a DOMException named SyntaxError for both)."""


class OptionsError(WebSocketError, ValueError, TypeError):
    """An unknown key in ``options``, a value of the wrong type, or a value the connection
    cannot use. The message names the option and says what it expected.

    It is a ``ValueError`` and, as Python raises for a wrong argument type or an unknown
    keyword, a ``TypeError``."""


class PayloadTooLongError(WebSocketError, ValueError):
    """A ping payload over 125 bytes."""


class StreamEndedError(WebSocketError, EOFError):
    """``recv()`` or ``try_recv()`` after the ``Close`` event was taken: nothing more comes."""


# Reported by an ``Error`` event (and to ``onerror``) when a connection fails.


class ConnectFailedError(WebSocketError, ConnectionError):
    """The host name did not resolve, or no address accepted a TCP connection.

    ``failures`` lists each address tried, in order, with the error it gave:
    ``[(("127.0.0.1", 9), ConnectionRefusedError(111, "Connection refused")), ...]`` (an
    ``OSError`` of the subclass Python picks for its errno). Empty when the host name did not
    resolve (the message says why).
    """

    failures: Sequence[tuple[tuple[str, int], OSError]] = ()


class WebSocketTimeoutError(WebSocketError, TimeoutError):
    """The connection attempt, or the server's side of the close handshake, took too long.

    ``kind`` says which timer ran out: ``"connect"`` (DNS, TCP, a proxy, TLS and the upgrade
    together took longer than ``connect_timeout``), ``"close"`` (the server did not finish the
    close handshake within ``close_timeout``) or ``"dead_peer"`` (nothing came from the server
    for ``dead_peer_timeout``). ``during`` says what was going on, e.g. ``"in the TLS
    handshake"``.
    """

    kind: str | None = None
    during: str = ""


class TLSError(WebSocketError, ConnectionError):
    """The TLS handshake failed.

    ``kind`` says why, for code to act on:

    - ``"unknown_issuer"``: the server's certificate does not chain to a trusted root (a
      private CA: give it with ``cafile`` or ``cadata``);
    - ``"wrong_name"``: the certificate is not valid for the URL's host;
    - ``"expired"``: the certificate (or one in its chain) has expired;
    - ``"certificate_required"``: the server wants a client certificate and none was sent
      (``certfile``/``keyfile``);
    - ``"alert"``: the server sent another fatal alert, whose number is in ``alert`` (e.g. 42
      ``bad_certificate``, 48 ``unknown_ca``: it did not accept our client certificate);
    - ``"other"``: anything else (not TLS at all, a bad signature, ...); the message says what.
    """

    kind: str = "other"
    alert: int | None = None


class HandshakeRejectedError(WebSocketError, ConnectionError):
    """The server answered the upgrade with another HTTP status than 101 (redirects
    included: they are not followed).

    ``status`` is that status, ``headers`` the response headers as a ``dict`` (names in lower
    case, a repeated header's values joined with ``", "``), e.g. ``retry-after`` or
    ``www-authenticate``, and ``body`` the start of the response body (``bytes``, as far as it
    arrived with the headers).
    """

    status: int = 0
    headers: Mapping[str, str] = MappingProxyType({})  # read-only; instances get a dict
    body: bytes = b""


class ProxyError(WebSocketError, ConnectionError):
    """The proxy (``proxy``, or one from the environment) failed to open the tunnel.

    ``kind`` says why:

    - ``"rejected"``: the HTTP proxy answered ``CONNECT`` with an error status (this is a
      :class:`ProxyRejectedError`, with ``status`` and ``headers``);
    - ``"auth_required"``: the SOCKS5 server wants credentials (none were given in the URL);
    - ``"auth_failed"``: the SOCKS5 server refused the user name and password;
    - a SOCKS5 error reply: ``"general_failure"``, ``"not_allowed"``,
      ``"network_unreachable"``, ``"host_unreachable"``, ``"connection_refused"``,
      ``"ttl_expired"``, ``"command_not_supported"``, ``"address_type_not_supported"``, or
      ``"reply"`` for an unassigned code, whose number is in ``reply``;
    - ``"disconnected"``: the proxy closed the connection before the tunnel was up;
    - ``"protocol"``: the proxy's answer was not HTTP or SOCKS5 as expected.

    Proxy credentials never appear in the message.
    """

    kind: str = "protocol"
    reply: int | None = None


class ProxyRejectedError(ProxyError):
    """The HTTP proxy refused the ``CONNECT`` tunnel: ``status`` is its HTTP status (407:
    credentials missing or refused; 403: not allowed; 502: it could not reach the server) and
    ``headers`` its response headers as a ``dict`` (e.g. ``proxy-authenticate``)."""

    kind: str = "rejected"
    status: int = 0
    headers: Mapping[str, str] = MappingProxyType({})  # read-only; instances get a dict


class HandshakeError(WebSocketError, ConnectionError):
    """The server's answer to the upgrade was not a valid WebSocket handshake."""


class ProtocolError(WebSocketError):
    """The server broke the WebSocket protocol (bad UTF-8, a message over the size limit...)."""


class ConnectionLostError(WebSocketError, ConnectionError):
    """The connection was reset, or closed without a close frame."""


class AbortedError(WebSocketError, ConnectionAbortedError):
    """``close()`` was called while the connection was still being set up."""


class IOThreadError(WebSocketError, OSError):
    """The operating system refused what the connection's I/O thread needs (the thread
    itself, its poller, ...), e.g. out of file descriptors; nothing to do with the server.
    ``errno`` is the OS error number, if there is one."""


class InternalError(WebSocketError):
    """A bug in nwebsocket (its I/O thread panicked); please report it."""


class ConnectHookError(WebSocketError):
    """The ``before_each_connect`` callable raised (that exception is the ``__cause__``),
    returned something that is not ``None``, a URL or a ``(url, headers)`` tuple, or a URL or
    header that is not valid. It ends the connection and any reconnecting."""


class RedirectError(WebSocketError, ConnectionError):
    """With ``follow_redirects``, a redirect of the upgrade request that was not followed: one
    too many, from ``wss`` to ``ws``, credentials to another host, or a ``Location`` that is
    not a WebSocket URL (the message says which)."""
