# Types of nwebsocket.websocket. A stub rather than annotations in websocket.py: the callbacks
# are methods there (overridable in a subclass) and attributes to assign on an instance, which
# only a declared attribute of a callable type expresses.

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Final, Union

from typing_extensions import Buffer, Self, TypeAlias

from ._nwebsocket import Close, Error, IoThreads, Message, Open
from .errors import WebSocketError

__all__ = ["WebSocket"]

_Event: TypeAlias = Union[Open, Message, Error, Close]
_Options: TypeAlias = Mapping[str, Any]

class WebSocket:
    CONNECTING: ClassVar[int]
    OPEN: ClassVar[int]
    CLOSING: ClassVar[int]
    CLOSED: ClassVar[int]

    url: str
    options: _Options

    # Callbacks: a method to override in a subclass, or a callable (or None) to assign on an
    # instance. onerror and onclose may take their argument or not.
    onopen: Callable[[], object] | None
    onmessage: Callable[[str | bytes], object] | None
    onerror: Callable[[WebSocketError], object] | Callable[[], object] | None
    onclose: Callable[[Close], object] | Callable[[], object] | None
    on_open: Callable[[], object] | None
    on_message: Callable[[str | bytes], object] | None
    on_error: Callable[[WebSocketError], object] | Callable[[], object] | None
    on_close: Callable[[Close], object] | Callable[[], object] | None

    def __init__(
        self,
        url: str,
        options: _Options | str | Sequence[str] | None = None,
        *,
        io_threads: IoThreads | None = None,
    ) -> None: ...
    def __init_subclass__(cls, **kwargs: Any) -> None: ...
    @property
    def readyState(self) -> int: ...
    @property
    def ready_state(self) -> int: ...
    @property
    def bufferedAmount(self) -> int: ...
    @property
    def buffered_amount(self) -> int: ...
    @property
    def protocol(self) -> str: ...
    @property
    def extensions(self) -> str: ...
    def send(self, data: str | Buffer) -> None: ...
    def ping(self, payload: Buffer = b"") -> None: ...
    def close(self, code: int = 1000, reason: str = "") -> None: ...
    def wait_closed(self, timeout: float | None = None) -> bool: ...
    def recv(self, timeout: float | None = None) -> _Event: ...
    def try_recv(self) -> _Event | None: ...
    def events(self) -> Iterator[_Event]: ...
    def __iter__(self) -> Iterator[_Event]: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
