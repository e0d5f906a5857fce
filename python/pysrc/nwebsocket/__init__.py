"""nwebsocket: a synchronous WebSocket client, no async, JS-style (drop-in for nwebsocket 1.0).

Built on the Rust crate ``nwebsocket``: a native I/O thread per connection (or a few shared
ones, :class:`IoThreads`, for many connections) and an event queue that loses nothing. See
:class:`WebSocket`.
"""

from typing import Callable, Iterable, Mapping, Optional, Tuple, Union

from ._nwebsocket import Close, Error, IoThreads, Message, Open
from .errors import *  # noqa: F403
from .websocket import WebSocket

__version__ = "0.1.0"

#: Any of the four events, for annotations: ``def handle(event: nwebsocket.Event) -> None``.
Event = Union[Open, Message, Error, Close]

#: What the ``before_each_connect`` option takes: a callable given the attempt number (0 for
#: the first connection, then ``Close.attempt``) that returns ``None`` (the URL and headers as
#: given), a URL, or a ``(url, headers)`` tuple, either of them ``None``; the headers a dict
#: or ``(name, value)`` pairs.
ConnectHook = Callable[
    [int],
    Union[
        None,
        str,
        Tuple[Optional[str], Union[Mapping[str, str], Iterable[Tuple[str, str]], None]],
    ],
]

CONNECTING = WebSocket.CONNECTING
OPEN = WebSocket.OPEN
CLOSING = WebSocket.CLOSING
CLOSED = WebSocket.CLOSED

__all__ = [
    "WebSocket",
    "IoThreads",
    "Open",
    "Message",
    "Error",
    "Close",
    "Event",
    "ConnectHook",
    "CONNECTING",
    "OPEN",
    "CLOSING",
    "CLOSED",
    # nwebsocket.errors.__all__, spelled out so that type checkers see it.
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
