"""The exceptions of nwebsocket.

Every one subclasses :class:`WebSocketError`; most also subclass the built-in exception a
Python programmer would catch (``ConnectionError``, ``ValueError``, ``TimeoutError``), so that
code written for the 1.0 package, which raised ``ConnectionError``, keeps working.
"""

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
    "HandshakeError",
    "ProtocolError",
    "ConnectionLostError",
    "AbortedError",
    "InternalError",
]


class WebSocketError(Exception):
    """The base class of every nwebsocket exception."""


# Raised by calls on a WebSocket.


class InvalidStateError(WebSocketError, ConnectionError):
    """``send()`` before the connection is open, or after it started closing.

    JS throws a DOMException named InvalidStateError for the first case. The 1.0 package raised
    ``ConnectionError``, which this subclasses.
    """


class InvalidAccessError(WebSocketError, ValueError):
    """``close(code)`` with a code that is neither 1000 nor in 3000-4999 (as JS throws)."""


class DOMSyntaxError(WebSocketError, ValueError):
    """A URL that is not ``ws://`` or ``wss://`` with a host, or a close reason over 123 bytes
    of UTF-8 (JS throws a DOMException named SyntaxError for both)."""


class OptionsError(WebSocketError, ValueError):
    """An unknown key in ``options``, or a value the connection cannot use."""


class PayloadTooLongError(WebSocketError, ValueError):
    """A ping payload over 125 bytes."""


class StreamEndedError(WebSocketError, EOFError):
    """``recv()`` or ``try_recv()`` after the ``Close`` event was taken: nothing more comes."""


# Reported by an ``Error`` event (and to ``onerror``) when a connection fails.


class ConnectFailedError(WebSocketError, ConnectionError):
    """The host name did not resolve, or no address accepted a TCP connection."""


class WebSocketTimeoutError(WebSocketError, TimeoutError):
    """The connection attempt, or the server's side of the close handshake, took too long."""


class TLSError(WebSocketError, ConnectionError):
    """The TLS handshake failed (an untrusted certificate, an alert from the server, ...)."""


class HandshakeRejectedError(WebSocketError, ConnectionError):
    """The server answered the upgrade with another HTTP status than 101.

    ``status`` is that status, ``body`` the start of the response body (bytes).
    """

    status = 0
    body = b""


class HandshakeError(WebSocketError, ConnectionError):
    """The server's answer to the upgrade was not a valid WebSocket handshake."""


class ProtocolError(WebSocketError):
    """The server broke the WebSocket protocol (bad UTF-8, a message over the size limit...)."""


class ConnectionLostError(WebSocketError, ConnectionError):
    """The connection was reset, or closed without a close frame."""


class AbortedError(WebSocketError, ConnectionAbortedError):
    """``close()`` was called while the connection was still being set up."""


class InternalError(WebSocketError):
    """A bug in nwebsocket (its I/O thread panicked); please report it."""
