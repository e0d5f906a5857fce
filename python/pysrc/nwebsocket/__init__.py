"""nwebsocket: a synchronous WebSocket client, no async, JS-style (drop-in for nwebsocket 1.0).

Built on the Rust crate ``nwebsocket``: a native I/O thread per connection and an event queue
that loses nothing. See :class:`WebSocket`.
"""

from ._nwebsocket import Close, Error, Message, Open
from .errors import *  # noqa: F403
from .errors import __all__ as _errors
from .websocket import WebSocket

__version__ = "0.1.0"

CONNECTING = WebSocket.CONNECTING
OPEN = WebSocket.OPEN
CLOSING = WebSocket.CLOSING
CLOSED = WebSocket.CLOSED

__all__ = [
    "WebSocket",
    "Open",
    "Message",
    "Error",
    "Close",
    "CONNECTING",
    "OPEN",
    "CLOSING",
    "CLOSED",
    *_errors,
]
