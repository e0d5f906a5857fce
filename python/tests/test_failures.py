"""The event order in every way a connection can end, polled and with callbacks:
``Open? Message* Error? Close``, with ``onclose`` exactly once and last."""

import errno
import subprocess
import sys
import threading

import pytest

import nwebsocket
from nwebsocket import Close, Error, Message, Open, WebSocket
from conftest import drain


def polled(url, options=None, greeting=None):
    """Every event of a connection, taken with recv() (bounded by a timeout); sends
    `greeting` once open."""
    ws = WebSocket(url, options)
    events = []
    while True:
        event = ws.recv(timeout=15)
        events.append(event)
        if isinstance(event, Open) and greeting is not None:
            ws.send(greeting)
        if isinstance(event, Close):
            break
    with pytest.raises(nwebsocket.StreamEndedError):
        ws.recv(timeout=1)
    assert ws.readyState == WebSocket.CLOSED
    return events


class Recorder(WebSocket):
    """Records the callbacks in order (callbacks overridden in a subclass: all set before the
    first event)."""

    def __init__(self, url, options=None, greeting=None):
        self.calls = []
        self.greeting = greeting
        self.done = threading.Event()
        super().__init__(url, options)

    def onopen(self):
        self.calls.append("open")
        if self.greeting is not None:
            self.send(self.greeting)

    def onmessage(self, data):
        self.calls.append(("message", data))

    def onerror(self, error):
        self.calls.append(("error", error))

    def onclose(self, event):
        self.calls.append(("close", event))
        self.done.set()


def called(url, options=None, greeting=None):
    ws = Recorder(url, options, greeting)
    assert ws.wait_closed(15)
    assert ws.readyState == WebSocket.CLOSED
    return ws.calls


def kinds(events):
    return [type(event).__name__ for event in events]


def test_refused(closed_port_url):
    events = polled(closed_port_url)
    assert kinds(events) == ["Error", "Close"]
    assert isinstance(events[0].error, nwebsocket.ConnectFailedError)
    assert isinstance(events[0].error, ConnectionError)
    assert "refused" in events[0].message.lower()
    assert (events[1].code, events[1].wasClean) == (1006, False)
    # Each address tried, with the OSError it gave.
    port = int(closed_port_url.rsplit(":", 1)[1].strip("/"))
    [(address, why)] = events[0].error.failures
    assert address == ("127.0.0.1", port)
    assert isinstance(why, ConnectionRefusedError)


def test_send_after_a_refused_connect_says_it_never_opened(closed_port_url):
    ws = WebSocket(closed_port_url)
    assert ws.wait_closed(15)
    # The Error is still queued: the message says how the connection ended all the same.
    with pytest.raises(nwebsocket.InvalidStateError) as raised:
        ws.send("hello")
    message = str(raised.value)
    assert "never opened" in message and "refused" in message.lower(), message
    assert "closing" not in message
    assert kinds(drain(ws)) == ["Error", "Close"]  # nothing was lost to the message
    with pytest.raises(nwebsocket.InvalidStateError, match="never opened: could not connect"):
        ws.send("hello")


def test_send_after_an_untrusted_certificate_says_tls(servers):
    ws = WebSocket(servers["wss"] + "/")
    events = drain(ws)
    assert kinds(events) == ["Error", "Close"]
    with pytest.raises(nwebsocket.InvalidStateError, match="never opened: TLS handshake failed"):
        ws.send("hello")


def test_send_after_the_server_closed_says_closed(server):
    ws = WebSocket(server + "/close/4001")
    assert kinds(drain(ws)) == ["Open", "Close"]
    with pytest.raises(nwebsocket.InvalidStateError) as raised:
        ws.send("hello")
    assert str(raised.value) == "send() after the connection closed"


def test_refused_callbacks(closed_port_url):
    calls = called(closed_port_url)
    assert [c if isinstance(c, str) else c[0] for c in calls] == ["error", "close"]
    assert isinstance(calls[0][1], nwebsocket.ConnectFailedError)
    assert calls[1][1].code == 1006


def test_rejected(server):
    events = polled(server + "/reject")
    assert kinds(events) == ["Error", "Close"]
    error = events[0].error
    assert isinstance(error, nwebsocket.HandshakeRejectedError)
    assert error.status == 403
    assert error.body.startswith(b"go away")
    assert isinstance(error.headers, dict)
    assert error.headers["retry-after"] == "7"
    assert error.headers["x-reason"] == "one, two"
    assert events[1].code == 1006 and not events[1].wasClean


def test_rejected_callbacks(server):
    calls = called(server + "/reject")
    assert [c[0] for c in calls] == ["error", "close"]
    assert calls[0][1].status == 403


def test_silent_server_times_out(servers):
    events = polled(servers["silent"] + "/", {"connect_timeout": 0.3})
    assert kinds(events) == ["Error", "Close"]
    assert isinstance(events[0].error, nwebsocket.WebSocketTimeoutError)
    assert isinstance(events[0].error, TimeoutError)
    assert events[0].error.kind == "connect"
    assert events[0].error.during


def test_deaf_server_times_out_on_close(servers):
    ws = WebSocket(servers["raw"] + "/deaf", {"close_timeout": 0.3})
    assert isinstance(ws.recv(timeout=10), Open)
    ws.close()
    events = drain(ws)
    assert kinds(events) == ["Error", "Close"]
    error = events[0].error
    assert isinstance(error, nwebsocket.WebSocketTimeoutError)
    assert error.kind == "close"
    assert (events[1].code, events[1].wasClean) == (1006, False)


def test_reset(servers):
    events = polled(servers["raw"] + "/reset", greeting="hi")
    assert kinds(events) == ["Open", "Error", "Close"]
    assert isinstance(events[1].error, nwebsocket.ConnectionLostError)
    assert (events[2].code, events[2].wasClean) == (1006, False)


def test_reset_callbacks(servers):
    calls = called(servers["raw"] + "/reset", greeting="hi")
    assert [c if isinstance(c, str) else c[0] for c in calls] == ["open", "error", "close"]


def test_server_closes_with_code(server):
    events = polled(server + "/close/4001")
    assert kinds(events) == ["Open", "Close"]
    close = events[1]
    assert (close.code, close.reason, close.wasClean, close.was_clean) == (4001, "bye", True, True)


def test_server_closes_with_code_callbacks(server):
    calls = called(server + "/close/4001")
    assert calls[0] == "open"
    assert calls[-1][0] == "close"
    assert (calls[-1][1].code, calls[-1][1].reason) == (4001, "bye")
    assert len(calls) == 2


def test_client_closes(server):
    ws = WebSocket(server + "/")
    assert isinstance(ws.recv(timeout=10), Open)
    ws.send("last words")
    assert ws.recv(timeout=10).data == "last words"
    ws.close(4000, "done")
    assert ws.readyState == WebSocket.CLOSED
    events = drain(ws)
    assert kinds(events) == ["Close"]
    assert events[0].wasClean and events[0].code == 4000


def test_close_while_connecting(servers):
    ws = WebSocket(servers["silent"] + "/")
    ws.close()
    events = drain(ws)
    assert kinds(events) == ["Error", "Close"]
    assert isinstance(events[0].error, nwebsocket.AbortedError)
    assert events[1].code == 1006


def test_untrusted_certificate(servers):
    events = polled(servers["wss"] + "/")
    assert kinds(events) == ["Error", "Close"]
    assert isinstance(events[0].error, nwebsocket.TLSError)
    assert events[0].error.kind == "unknown_issuer"  # more kinds in test_tls.py


def test_onclose_once_and_last_even_when_callbacks_raise(servers, monkeypatch):
    reported = []
    monkeypatch.setattr("sys.unraisablehook", reported.append)

    class Failing(Recorder):
        def onerror(self, error):
            super().onerror(error)
            raise RuntimeError("onerror failed")

    ws = Failing(servers["raw"] + "/reset", greeting="hi")
    assert ws.wait_closed(15)
    names = [c if isinstance(c, str) else c[0] for c in ws.calls]
    assert names == ["open", "error", "close"]
    assert [type(r.exc_value) for r in reported] == [RuntimeError]


OUT_OF_FILES = """
import os, resource, sys
from nwebsocket import IOThreadError, WebSocket
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while len(held) < 64:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
try:
    WebSocket(sys.argv[1])
except IOThreadError as error:
    print(error.errno, isinstance(error, OSError), error)
"""


def test_no_file_descriptor_left_for_the_io_thread(server):
    # In a process of its own, which runs out of file descriptors before it connects.
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_FILES, server + "/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    errno_, is_os_error, message = done.stdout.split(" ", 2)
    assert (int(errno_), is_os_error) == (errno.EMFILE, "True")
    assert "I/O thread" in message
