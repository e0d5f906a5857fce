"""A typed program that uses every public name of nwebsocket: python/ci.sh checks it with
``mypy --strict`` (so that the stubs cover the whole API, as a user's code sees it), and
test_typed_sample.py runs it against the local servers (so that what it asserts is true)."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Mapping, Sequence

import nwebsocket
from nwebsocket import (
    CLOSED,
    CLOSING,
    CONNECTING,
    OPEN,
    AbortedError,
    Close,
    ConnectFailedError,
    ConnectHook,
    ConnectHookError,
    ConnectionLostError,
    DOMSyntaxError,
    Error,
    Event,
    HandshakeError,
    HandshakeRejectedError,
    InternalError,
    InvalidAccessError,
    InvalidStateError,
    IOThreadError,
    Message,
    Open,
    OptionsError,
    PayloadTooLongError,
    ProtocolError,
    ProxyError,
    ProxyRejectedError,
    QueueFullError,
    RedirectError,
    StreamEndedError,
    TLSError,
    WebSocket,
    WebSocketError,
    WebSocketTimeoutError,
)
from nwebsocket.utils import uriparse


def describe(event: Event) -> str:
    """Every event type and attribute, as a handler would read them."""
    if isinstance(event, Open):
        headers: dict[str, str] = event.headers
        return f"open {event.protocol!r} {event.extensions!r} {len(headers)}"
    if isinstance(event, Message):
        data: str | bytes = event.data
        return f"message {data!r}"
    if isinstance(event, Error):
        error: WebSocketError = event.error
        return f"error {type(error).__name__}: {event.message}"
    code: int = event.code
    clean: bool = event.was_clean and event.wasClean
    delay: float | None = event.reconnect
    attempt: int = event.attempt
    final: bool = event.is_final
    return f"close {code} {event.reason!r} {clean} {delay} {attempt} {final}"


def error_details(error: WebSocketError) -> str:
    """The attributes each exception carries, with their types."""
    if isinstance(error, ConnectFailedError):
        failures: Sequence[tuple[tuple[str, int], OSError]] = error.failures
        return f"connect failed at {[address for address, _ in failures]}"
    if isinstance(error, WebSocketTimeoutError):
        kind: str | None = error.kind
        return f"timeout {kind} {error.during}"
    if isinstance(error, TLSError):
        alert: int | None = error.alert
        return f"tls {error.kind} {alert}"
    if isinstance(error, HandshakeRejectedError):
        headers: Mapping[str, str] = error.headers
        body: bytes = error.body
        return f"rejected {error.status} {dict(headers)} {body!r}"
    if isinstance(error, ProxyRejectedError):
        return f"proxy rejected {error.status} {dict(error.headers)} {error.kind}"
    if isinstance(error, ProxyError):
        reply: int | None = error.reply
        return f"proxy {error.kind} {reply}"
    if isinstance(error, QueueFullError):
        queued: int = error.queued
        return f"queue full {queued}"
    if isinstance(error, IOThreadError):
        return f"io thread {error.errno}"
    others: tuple[type[WebSocketError], ...] = (
        InvalidStateError,
        InvalidAccessError,
        DOMSyntaxError,
        OptionsError,
        PayloadTooLongError,
        StreamEndedError,
        HandshakeError,
        ProtocolError,
        ConnectionLostError,
        AbortedError,
        InternalError,
        ConnectHookError,
        RedirectError,
    )
    return f"{type(error).__name__} {isinstance(error, others)}"


def polled(url: str) -> list[str]:
    """The polling API, with options of every kind of value."""
    seen: list[str] = []

    def fresh(attempt: int) -> tuple[str | None, dict[str, str] | None]:
        return None, {"X-Attempt": str(attempt)}

    hook: ConnectHook = fresh
    options: dict[str, object] = {
        "before_each_connect": hook,
        "tcp_keepalive": (30, 10, 3),
        "follow_redirects": 1,
        "happy_eyeballs_delay": 0.25,
        "connect_timeout": 5,
        "close_timeout": 2.5,
        "subprotocols": ["chat"],
        "headers": {"X-Sample": "1"},
        "deflate": True,
        "deflate_client_max_window_bits": 12,
        "proxy": False,
        "ping_interval": None,
    }
    with WebSocket(url, options) as ws:
        assert ws.readyState in (CONNECTING, OPEN) and ws.ready_state in (CONNECTING, OPEN)
        first = ws.recv(timeout=10)
        seen.append(describe(first))
        assert ws.readyState == WebSocket.OPEN == OPEN
        ws.send("text")
        ws.send(b"binary")
        ws.send(bytearray(b"more"))
        ws.send(memoryview(b"view"))
        ws.ping(b"seed")
        pending: int = ws.bufferedAmount + ws.buffered_amount
        assert pending >= 0
        protocol: str = ws.protocol
        extensions: str = ws.extensions
        seen.append(f"{protocol} {extensions.split(';')[0]}")
        for _ in range(4):
            seen.append(describe(ws.recv(timeout=10)))
        assert ws.try_recv() is None or True
        ws.close(4000, "done")
        assert ws.readyState in (CLOSING, CLOSED)
        seen.extend(describe(event) for event in ws.events())
        try:
            ws.recv(timeout=1)
        except StreamEndedError:
            seen.append("ended")
        assert ws.wait_closed(timeout=5)
        assert ws.url == url and isinstance(ws.options, dict)
    for event in ws:
        seen.append(describe(event))  # never runs: the stream has ended
    return seen


class Client(WebSocket):
    """Callbacks by PEP 8 names, overridden in a subclass."""

    def __init__(self, url: str) -> None:
        self.got: list[str | bytes] = []
        self.closed = threading.Event()
        super().__init__(url)

    def on_open(self) -> None:
        self.send("hi")

    def on_message(self, data: str | bytes) -> None:
        self.got.append(data)
        self.close()

    def on_close(self, event: Close) -> None:
        self.closed.set()


def called(url: str) -> list[str | bytes]:
    """Callbacks by a subclass, and assigned on an instance by either name."""
    client = Client(url)
    assert client.closed.wait(10)
    errors: list[WebSocketError] = []
    codes: list[int] = []
    opened = threading.Event()
    ws = WebSocket(url)
    ws.on_open = opened.set
    ws.onerror = errors.append
    ws.onmessage = None
    ws.on_close = lambda: None
    ws.onclose = lambda event: codes.append(event.code)  # the same attribute: this one counts
    assert opened.wait(10)
    ws.close()
    assert codes == [1000] and errors == []
    return client.got


def values() -> None:
    """Events made by hand, as in a handler's unit test."""
    events: list[Event] = [
        Open(protocol="chat", extensions="", headers={"server": "x"}),
        Message(data="hi"),
        Message(b"\x00"),
        Error(error=ConnectionLostError("reset")),
        Close(code=1000, reason="bye", was_clean=True, reconnect=None, attempt=0),
    ]
    for event in events:
        copy = pickle.loads(pickle.dumps(event))
        assert copy == event and hash(copy) == hash(event) and repr(copy) == repr(event)
    assert Close.__match_args__ == ("code", "reason", "was_clean")
    assert uriparse("ws://host:9/path") == {"port": 9, "path": "/path", "host": "host"}
    assert nwebsocket.__version__


def main(url: str) -> list[str]:
    values()
    return polled(url) + [repr(data) for data in called(url)]
