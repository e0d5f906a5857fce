"""Keepalive: pings on a quiet connection (counted at the server), a dead peer found by
``dead_peer_timeout`` (a link that turns into a black hole), and the options' checks."""

import time

import pytest

import nwebsocket
from nwebsocket import Close, Error, Message, Open, WebSocket
from conftest import drain
from local import Forwarder, PingCounter, free_port


def test_a_quiet_connection_is_pinged_every_interval_and_stays_open():
    server = PingCounter(time.monotonic)
    try:
        ws = WebSocket(server.url, {"ping_interval": 0.1, "dead_peer_timeout": 2})
        assert isinstance(ws.recv(timeout=10), Open)
        assert server.seen(4, timeout=10), server.pings
        # "Quiet" is measured from the last bytes of the server (the pong): three intervals
        # at least from the first ping to the fourth (less the server's scheduling slack).
        assert server.pings[3] - server.pings[0] >= 0.25, server.pings
        assert ws.readyState == WebSocket.OPEN
        assert ws.try_recv() is None  # pongs are not events, and no Error came
        ws.close()
        assert [type(event) for event in drain(ws)] == [Close]
    finally:
        server.stop()


def test_without_ping_interval_nothing_is_sent(servers):
    ws = WebSocket(servers["raw"] + "/quiet", {"dead_peer_timeout": 0.3})
    assert isinstance(ws.recv(timeout=10), Open)
    # The raw server never writes: without pings a quiet server counts as dead.
    started = time.monotonic()
    error, close = drain(ws)
    assert time.monotonic() - started >= 0.25
    assert isinstance(error, Error)
    assert isinstance(error.error, nwebsocket.WebSocketTimeoutError)
    assert error.error.kind == "dead_peer"
    assert (close.code, close.wasClean, close.reconnect) == (1006, False, None)


def test_a_link_that_goes_silent_is_found_dead(server):
    link = Forwarder(int(server.rsplit(":", 1)[1]))
    try:
        ws = WebSocket(
            f"ws://127.0.0.1:{link.port}/",
            {"ping_interval": 0.1, "dead_peer_timeout": 0.5},
        )
        assert isinstance(ws.recv(timeout=10), Open)
        ws.send("still there?")
        assert ws.recv(timeout=10).data == "still there?"
        link.blackhole()
        started = time.monotonic()
        error, close = drain(ws, timeout=10)
        # Within the interval plus the timeout (and the scheduler's slack).
        assert 0.4 <= time.monotonic() - started < 5
        assert isinstance(error.error, nwebsocket.WebSocketTimeoutError)
        assert isinstance(error.error, TimeoutError)
        assert error.error.kind == "dead_peer"
        assert not close.wasClean and close.code == 1006
        assert ws.readyState == WebSocket.CLOSED
    finally:
        link.stop()


def test_with_reconnect_a_dead_link_is_replaced(server):
    link = Forwarder(int(server.rsplit(":", 1)[1]))
    try:
        ws = WebSocket(
            f"ws://127.0.0.1:{link.port}/",
            {
                "ping_interval": 0.1,
                "dead_peer_timeout": 0.4,
                "reconnect": True,
                "reconnect_delays": (0.05, 0.2),
            },
        )
        assert isinstance(ws.recv(timeout=10), Open)
        link.blackhole()  # the connections made from now on forward again
        error, close = ws.recv(timeout=10), ws.recv(timeout=10)
        assert isinstance(error, Error) and error.error.kind == "dead_peer"
        assert isinstance(close, Close) and close.reconnect is not None
        # Sent in the backoff: queued, written right after the next Open.
        ws.send("queued, then delivered")
        assert isinstance(ws.recv(timeout=10), Open)
        echo = ws.recv(timeout=10)
        assert isinstance(echo, Message) and echo.data == "queued, then delivered"
        ws.close()
        assert drain(ws)[-1].is_final
    finally:
        link.stop()


@pytest.mark.parametrize(
    "options",
    [
        {"ping_interval": 0},
        {"ping_interval": -1},
        {"dead_peer_timeout": 8 * 24 * 3600},
    ],
)
def test_bad_keepalive_values_are_refused(options):
    with pytest.raises(nwebsocket.OptionsError):
        WebSocket(f"ws://127.0.0.1:{free_port()}/", options)
