"""Reconnection: one event stream across a server that is stopped and started again on the same
port, polled and with callbacks; sends while down (queued in order, the queue's limit, fail
fast); the attempt limit; close() during the backoff; clean closes by the server."""

import queue
import threading
import time

import pytest

import nwebsocket
from nwebsocket import Close, Error, Message, Open, WebSocket
from conftest import drain, native_threads, settled_native_threads, settled_thread_count
from local import Restartable

FAST = {"reconnect": True, "reconnect_delays": (0.02, 0.1)}


@pytest.fixture
def restartable():
    server = Restartable()
    server.start()
    yield server
    server.stop()


def until_open(ws):
    """The events up to and including the next Open: failed attempts' Error/Close pairs."""
    events = []
    while not isinstance(events[-1] if events else None, Open):
        events.append(ws.recv(timeout=15))
    return events


def echo(ws, text):
    ws.send(text)
    message = ws.recv(timeout=10)
    assert isinstance(message, Message) and message.data == text, message


def test_one_stream_across_a_server_restart(restartable):
    ws = WebSocket(restartable.url, FAST)
    assert isinstance(ws.recv(timeout=10), Open)
    echo(ws, "before")

    restartable.stop()
    error, close = ws.recv(timeout=10), ws.recv(timeout=10)
    assert isinstance(error.error, nwebsocket.ConnectionLostError)
    assert (close.code, close.wasClean, close.attempt) == (1006, False, 1)
    assert 0 <= close.reconnect <= 0.02 and not close.is_final
    assert "reconnect=" in repr(close)
    assert ws.readyState == WebSocket.CONNECTING
    # The server is still down: refused attempts, each an Error and a Close, counting up.
    error, close = ws.recv(timeout=10), ws.recv(timeout=10)
    assert isinstance(error.error, nwebsocket.ConnectFailedError)
    assert close.attempt == 2 and close.reconnect is not None
    assert ws.readyState == WebSocket.CONNECTING

    restartable.start()
    events = until_open(ws)
    attempts = [event.attempt for event in events if isinstance(event, Close)]
    assert attempts == list(range(3, 3 + len(attempts))), events
    assert ws.readyState == WebSocket.OPEN
    echo(ws, "after")

    ws.close()
    assert ws.readyState == WebSocket.CLOSED
    (close,) = drain(ws)
    assert close.is_final and close.reconnect is None and close.attempt == 0
    assert close.wasClean and close.code == 1000
    assert list(ws) == []  # the iteration ends after the last Close
    with pytest.raises(nwebsocket.StreamEndedError):
        ws.recv(timeout=1)


def test_for_event_in_ws_ends_only_after_the_last_close(restartable):
    ws = WebSocket(restartable.url, FAST)
    seen = []
    for event in ws:  # bounded: every step below ends the loop or moves it on
        seen.append(event)
        if isinstance(event, Open) and len(seen) == 1:
            ws.send("the handler runs")
        elif isinstance(event, Message):
            restartable.stop()
            restartable.start()  # at once: the first attempt may find it back already
        elif isinstance(event, Open):
            ws.close(4000, "done")
    kinds = [type(event).__name__ for event in seen]
    assert kinds[:4] == ["Open", "Message", "Error", "Close"]
    assert kinds[-2:] == ["Open", "Close"]
    assert seen[-1].is_final and seen[-1].code == 4000
    assert all(not close.is_final for close in seen[3:-1] if isinstance(close, Close))


def test_sends_while_down_are_queued_and_delivered_in_order(restartable):
    ws = WebSocket(restartable.url, FAST)
    # Before the first Open too: with reconnect, send() queues instead of raising.
    ws.send("first")
    assert isinstance(ws.recv(timeout=10), Open)
    assert ws.recv(timeout=10).data == "first"

    restartable.stop()
    assert isinstance(ws.recv(timeout=10), Error)
    assert isinstance(ws.recv(timeout=10), Close)
    sent = [f"telemetry {i}" for i in range(200)] + [b"\x00binary"]
    for message in sent:
        ws.send(message)
    assert ws.bufferedAmount > 0
    restartable.start()
    until_open(ws)
    got = [ws.recv(timeout=10).data for _ in sent]
    assert got == sent
    assert ws.bufferedAmount == 0
    ws.close()


def test_the_offline_queue_has_a_limit(closed_port_url):
    ws = WebSocket(closed_port_url, {**FAST, "offline_queue_bytes": 10})
    ws.send("12345678")
    with pytest.raises(nwebsocket.QueueFullError) as raised:
        ws.send("abc")
    assert raised.value.queued == 8
    assert str(raised.value) == (
        "send() of 3 bytes refused: 8 bytes already wait for a connection, "
        "and offline_queue_bytes allows 10"
    )
    assert isinstance(raised.value, nwebsocket.InvalidStateError)
    assert isinstance(raised.value, ConnectionError)
    ws.send("ab")  # fits exactly
    ws.close()


def test_fail_fast_refuses_every_send_while_down(restartable):
    ws = WebSocket(restartable.url, {**FAST, "offline_sends": "fail"})
    with pytest.raises(nwebsocket.InvalidStateError):
        ws.send("too early")
    assert isinstance(ws.recv(timeout=10), Open)
    echo(ws, "open")
    restartable.stop()
    assert isinstance(ws.recv(timeout=10), Error)
    assert isinstance(ws.recv(timeout=10), Close)
    with pytest.raises(nwebsocket.InvalidStateError, match="offline_sends"):
        ws.send("down")
    restartable.start()
    until_open(ws)
    echo(ws, "back")
    ws.close()


def test_offline_sends_queue_without_reconnect(server):
    # Asked for explicitly, sends before the first Open are queued without reconnect too.
    ws = WebSocket(server + "/", {"offline_sends": "queue"})
    ws.send("early")
    assert isinstance(ws.recv(timeout=10), Open)
    assert ws.recv(timeout=10).data == "early"
    ws.close()


def test_the_attempt_limit_ends_the_stream(closed_port_url):
    ws = WebSocket(closed_port_url, {**FAST, "reconnect_max_attempts": 2})
    events = list(ws)  # ends: the first attempt and two more, each refused
    assert [type(event) for event in events] == [Error, Close] * 3
    closes = [event for event in events if isinstance(event, Close)]
    assert [close.attempt for close in closes] == [1, 2, 0]
    assert [close.is_final for close in closes] == [False, False, True]
    assert all(isinstance(event.error, nwebsocket.ConnectFailedError) for event in events[::2])
    assert ws.readyState == WebSocket.CLOSED
    assert ws.wait_closed(timeout=10)


def test_close_during_the_backoff_ends_at_once(closed_port_url):
    ws = WebSocket(closed_port_url, {"reconnect": True, "reconnect_delays": (30, 60)})
    assert isinstance(ws.recv(timeout=10), Error)
    close = ws.recv(timeout=10)
    assert close.reconnect is not None
    assert ws.readyState == WebSocket.CONNECTING
    started = time.monotonic()
    ws.close()
    assert time.monotonic() - started < 5
    assert ws.readyState == WebSocket.CLOSED
    rest = drain(ws, timeout=5)
    # Should the backoff have been under a millisecond, another refused attempt came first.
    assert isinstance(rest[-2].error, nwebsocket.AbortedError)
    assert rest[-1].is_final and not rest[-1].wasClean
    with pytest.raises(nwebsocket.InvalidStateError):
        ws.send("after close()")


def test_a_clean_close_by_the_server_reconnects_only_when_asked(restartable):
    ws = WebSocket(restartable.url, {**FAST, "reconnect_on_close_codes": [1012]})
    assert isinstance(ws.recv(timeout=10), Open)
    ws.send("close:1012")
    close = ws.recv(timeout=10)
    assert (close.code, close.reason, close.wasClean) == (1012, "restart", True)
    assert close.reconnect is not None and close.attempt == 1
    assert isinstance(ws.recv(timeout=10), Open)
    ws.send("close:1000")  # not in the list: the last Close
    close = ws.recv(timeout=10)
    assert close.code == 1000 and close.is_final
    assert list(ws) == []

    ws = WebSocket(restartable.url, {**FAST, "reconnect_on_clean_close": True})
    assert isinstance(ws.recv(timeout=10), Open)
    ws.send("close:4001")
    close = ws.recv(timeout=10)
    assert close.code == 4001 and not close.is_final
    assert isinstance(ws.recv(timeout=10), Open)
    ws.close()


def test_callbacks_fire_once_per_connection_and_the_dispatcher_ends_after_the_last(
    restartable,
):
    calls = queue.Queue()
    ws = WebSocket(restartable.url, FAST)
    ws.onopen = lambda: calls.put(("open", ws.readyState))
    ws.onmessage = lambda data: calls.put(("message", data))
    ws.onerror = lambda error: calls.put(("error", type(error)))
    ws.onclose = lambda event: calls.put(("close", event, ws.readyState))

    assert calls.get(timeout=10) == ("open", WebSocket.OPEN)
    ws.send("one")
    assert calls.get(timeout=10) == ("message", "one")
    restartable.stop()
    assert calls.get(timeout=10) == ("error", nwebsocket.ConnectionLostError)
    _, close, state = calls.get(timeout=10)
    assert close.reconnect is not None and state == WebSocket.CONNECTING
    assert ws._dispatcher.is_alive()
    ws.send("queued")
    restartable.start()
    while True:  # refused attempts, if any, then the next Open
        call = calls.get(timeout=10)
        if call[0] == "open":
            break
        assert call[0] in ("error", "close") and (call[0] == "error" or not call[1].is_final)
    assert call == ("open", WebSocket.OPEN)
    assert calls.get(timeout=10) == ("message", "queued")

    ws.close()  # returns once the last onclose has returned
    _, close, state = calls.get_nowait()
    assert close.is_final and close.wasClean and state == WebSocket.CLOSED
    ws._dispatcher.join(10)
    assert not ws._dispatcher.is_alive()
    assert calls.empty()


def test_onclose_without_an_argument_runs_for_every_connection(closed_port_url):
    closed = []
    done = threading.Event()
    ws = WebSocket(closed_port_url, {**FAST, "reconnect_max_attempts": 1})

    def onclose():
        closed.append(ws.readyState)
        if ws.readyState == WebSocket.CLOSED:
            done.set()

    ws.onclose = onclose
    assert done.wait(10)
    assert closed == [WebSocket.CONNECTING, WebSocket.CLOSED]


@pytest.mark.parametrize(
    "options",
    [
        {"reconnect_max_attempts": 3},  # without reconnect
        {"reconnect": True, "reconnect_max_attempts": 0},
        {"reconnect": True, "reconnect_delays": (2, 1)},
        {"reconnect": True, "reconnect_delays": (0, 1)},
        {"reconnect": True, "reconnect_on_close_codes": [1006]},
        {"reconnect": True, "reconnect_on_close_codes": "1012"},
        {"reconnect": True, "offline_sends": "drop"},
        {"reconnect": True, "offline_sends": "fail", "offline_queue_bytes": 10},
        {"reconnect": True, "offline_queue_bytes": 0},
    ],
)
def test_bad_reconnect_options_are_refused(options, closed_port_url):
    with pytest.raises(nwebsocket.OptionsError):
        WebSocket(closed_port_url, options)


@pytest.mark.parametrize("delays", [1, (1,), (1, 2, 3), "ab"])
def test_reconnect_delays_must_be_a_pair(closed_port_url, delays):
    with pytest.raises((TypeError, nwebsocket.OptionsError)):
        WebSocket(closed_port_url, {"reconnect": True, "reconnect_delays": delays})


def test_reconnect_delays_may_be_a_list(closed_port_url):
    ws = WebSocket(closed_port_url, {"reconnect": True, "reconnect_delays": [0.01, 0.02]})
    assert isinstance(ws.recv(timeout=10), Error)
    assert ws.recv(timeout=10).reconnect <= 0.01
    ws.close()


def test_one_io_thread_serves_every_attempt_and_none_is_left(closed_port_url):
    natives = settled_native_threads()
    calls = queue.Queue()
    ws = WebSocket(closed_port_url, {"reconnect": True, "reconnect_delays": (0.01, 0.02)})
    ws.onclose = lambda event: calls.put(event)
    for _ in range(3):  # three refused attempts, all on the same I/O thread
        assert not calls.get(timeout=10).is_final
    assert native_threads() == natives + 2  # the I/O thread and the dispatcher
    ws.close()  # returns when the last onclose has; then both threads exit
    ws._dispatcher.join(10)
    assert settled_thread_count(natives) == natives
