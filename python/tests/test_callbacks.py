"""Callbacks: where they run, late assignment, the onclose/onerror signatures, exceptions,
close() from inside, and the subclass style."""

import subprocess
import sys
import threading

import pytest

import nwebsocket
from nwebsocket import Close, WebSocket
from conftest import wait_for


def test_late_assignment_after_open(server):
    ws = WebSocket(server + "/")
    assert wait_for(lambda: ws.readyState == WebSocket.OPEN)
    got = []
    ws.onmessage = got.append  # assigned after the Open arrived: it still gets every message
    ws.send("late")
    assert wait_for(lambda: got == ["late"])
    ws.close()


def test_callbacks_run_on_one_dispatcher_thread(server):
    threads = set()
    ws = WebSocket(server + "/")
    ws.onopen = lambda: threads.add(threading.current_thread().name)
    ws.onmessage = lambda m: threads.add(threading.current_thread().name)
    ws.onclose = lambda: threads.add(threading.current_thread().name)
    assert wait_for(lambda: ws.readyState == WebSocket.OPEN)
    ws.send("x")
    assert wait_for(lambda: len(threads) >= 1 and ws.bufferedAmount == 0)
    ws.close()
    assert threads == {"nwebsocket-dispatch"}


def test_the_dispatcher_is_known_to_threading_while_it_runs(server):
    """The dispatcher is a native thread: `threading` knows it by name, with its ids, from
    its start to its end, and forgets it after (Python before 3.13 would keep it for ever)."""
    seen = []
    ws = WebSocket(server + "/")
    ws.onmessage = lambda m: seen.append(
        (
            threading.current_thread().name,
            threading.get_ident(),
            threading.get_native_id(),
            [t.name for t in threading.enumerate()].count("nwebsocket-dispatch"),
        )
    )
    assert wait_for(lambda: ws.readyState == WebSocket.OPEN)
    ws.send("x")
    assert wait_for(lambda: seen)
    dispatcher = ws._dispatcher
    assert seen == [("nwebsocket-dispatch", dispatcher.ident, dispatcher.native_id, 1)]
    assert dispatcher.is_alive()
    with open(f"/proc/self/task/{dispatcher.native_id}/comm") as comm:
        assert comm.read().strip() == "nwebsocket-disp"  # the OS keeps 15 characters
    ws.close()
    assert not dispatcher.is_alive()
    assert "nwebsocket-dispatch" not in [t.name for t in threading.enumerate()]


EXIT_WITHOUT_CLOSE = """
import logging, sys, threading
from nwebsocket import WebSocket
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(threadName)s %(message)s")
ws = WebSocket(sys.argv[1])
opened = threading.Event()
ws.onopen = lambda: (logging.info("open"), opened.set())
ws.onclose = lambda event: logging.info("close %s", event.code)
assert opened.wait(10)
logging.info("exiting")
"""


def test_interpreter_exit_closes_and_waits_for_the_dispatcher(server):
    """At exit, a WebSocket with callbacks is closed and its onclose runs before the process
    ends, as Python waits for a non-daemon thread."""
    done = subprocess.run(
        [sys.executable, "-c", EXIT_WITHOUT_CLOSE, server + "/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nwebsocket-dispatch open",
        "MainThread exiting",
        "nwebsocket-dispatch close 1000",
    ]


def test_ready_state_inside_callbacks(server):
    seen = {}

    class Probe(WebSocket):
        def onopen(self):
            seen["open"] = self.readyState
            self.send("from onopen")

        def onmessage(self, data):
            seen["message"] = data
            self.close()  # from inside a callback: returns at once, no deadlock

        def onclose(self):
            seen["close"] = self.readyState

    ws = Probe(server + "/")
    assert ws.wait_closed(10)
    assert seen == {"open": 1, "message": "from onopen", "close": 3}


def test_onclose_signatures(server):
    events = []

    def with_event(event):
        events.append(event)

    def without():
        events.append("bare")

    for callback in (with_event, without, lambda *args: events.append(args)):
        ws = WebSocket(server + "/close/4002")
        ws.onclose = callback
        assert ws.wait_closed(10)
    assert isinstance(events[0], Close) and events[0].code == 4002
    assert events[0].reason == "bye" and events[0].wasClean is True
    assert events[1] == "bare"
    assert isinstance(events[2][0], Close)


def test_onerror_signatures(closed_port_url):
    errors = []
    ws = WebSocket(closed_port_url)
    ws.onerror = lambda e: errors.append(e)
    ws.onclose = lambda: errors.append("close")
    assert ws.wait_closed(10)

    class Bare(WebSocket):
        def onerror(self):
            errors.append("bare error")

    ws = Bare(closed_port_url)
    assert ws.wait_closed(10)
    assert isinstance(errors[0], nwebsocket.ConnectFailedError)
    assert errors[1:] == ["close", "bare error"]


def test_exception_in_callback_is_reported_and_the_connection_goes_on(server, monkeypatch):
    reported = []
    monkeypatch.setattr("sys.unraisablehook", reported.append)
    got = []
    closed = threading.Event()

    def onmessage(data):
        got.append(data)
        if int(data) % 2:
            raise ValueError(f"odd {data}")

    ws = WebSocket(server + "/")
    ws.onclose = closed.set
    ws.onmessage = onmessage
    assert wait_for(lambda: ws.readyState == WebSocket.OPEN)
    for i in range(10):
        ws.send(str(i))
    assert wait_for(lambda: len(got) == 10)
    assert got == [str(i) for i in range(10)]
    assert [str(r.exc_value) for r in reported] == [f"odd {i}" for i in (1, 3, 5, 7, 9)]
    assert all(r.object is onmessage for r in reported)
    assert ws.readyState == WebSocket.OPEN
    ws.close()
    assert closed.is_set()


def test_callbacks_and_polling_do_not_mix(server):
    ws = WebSocket(server + "/")
    ws.onmessage = print
    with pytest.raises(RuntimeError):
        ws.recv(timeout=1)
    ws.close()


def test_none_callback_is_skipped(server):
    ws = WebSocket(server + "/")
    ws.onmessage = None  # JS style: no handler
    assert wait_for(lambda: ws.readyState == WebSocket.OPEN)
    ws.send("ignored")
    ws.close()
    assert ws.readyState == WebSocket.CLOSED


def test_subclass_with_init_waiting_on_ready_state(server):
    class Protocol(WebSocket):
        def __init__(self, url):
            super().__init__(url)
            self.messages = []
            assert wait_for(lambda: self.readyState)

        def onmessage(self, m):
            self.messages.append(m)

    ws = Protocol(server + "/")
    assert ws.readyState == WebSocket.OPEN
    ws.send("text")
    assert wait_for(lambda: ws.messages == ["text"])
    ws.close()


def test_callbacks_assigned_one_after_another_all_see_an_instant_failure(closed_port_url):
    """The 1.0 README's order (onmessage, onopen, onclose, onerror) against a refused port,
    which fails within microseconds: onerror and onclose still fire, every time."""
    for _ in range(50):
        got = []
        ws = WebSocket(closed_port_url)
        ws.onmessage = lambda m: got.append("message")
        ws.onopen = lambda: got.append("open")
        ws.onclose = lambda: got.append("close")
        ws.onerror = lambda e: got.append("error")
        assert ws.wait_closed(10)
        assert got == ["error", "close"]


def test_dispatcher_attaches_once_per_batch(server):
    """Events that wait in the queue are dispatched in batches: one attach to the interpreter
    for up to 256 of them, not one per event."""
    count = 1000
    got = []

    class Slow(WebSocket):
        def onmessage(self, data):
            if not got:
                # Hold the first callback until the server's close frame has been read: by
                # then all 1,000 messages wait in the queue.
                assert wait_for(lambda: self.readyState == WebSocket.CLOSING)
            got.append(data)

    ws = Slow(server + f"/flood/{count}/16")
    assert ws.wait_closed(30)
    assert len(got) == count
    # Open, the first message, then 999 messages and the Close in batches of up to 256.
    assert ws._conn.dispatched_batches <= 8, ws._conn.dispatched_batches
