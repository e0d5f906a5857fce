"""IoThreads: many WebSockets on a few shared native I/O threads. 1,000 connections on one or
two threads each open, echo and close with exactly one Close; the process has the runtime's
threads and no more; dropping the IoThreads ends no connection; callbacks (JS and PEP 8
names) and failures work there as on a thread of their own; bad values are OptionsErrors
that name the option."""

import gc
import os
import resource
import subprocess
import sys
import threading

import pytest

import nwebsocket
from nwebsocket import Close, Error, IoThreads, Message, Open, OptionsError, WebSocket
from conftest import (
    drain,
    native_threads,
    nwebsocket_thread_names,
    settled_native_threads,
    wait_for,
)

HERE = os.path.dirname(os.path.abspath(__file__))
MANY = 1000

# An asyncio echo server (one thread, whatever the number of connections) with a listen
# backlog for the whole burst of connects; it prints its port and serves until stdin closes.
ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, backlog=2048, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def raise_open_files_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft == resource.RLIM_INFINITY or soft >= needed, f"open files limited to {soft}"


@pytest.fixture(scope="module")
def many_server():
    """The ws:// URL of an echo server for MANY connections, in a process of its own started
    after this one's (and so its) open-files limit is raised."""
    raise_open_files_limit(MANY + 256)
    process = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    port = process.stdout.readline().strip()
    if not port:
        process.kill()
        process.wait()
        raise RuntimeError("the echo server did not start")
    yield f"ws://127.0.0.1:{port}/"
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def io_thread_names():
    return [name for name in nwebsocket_thread_names() if name.startswith("nwebsocket-io")]


@pytest.fixture(autouse=True)
def no_io_thread_left():
    """After each test, every IoThreads it made is dropped and its threads have exited (bounded).
    A dropped runtime's threads exit on their own, a moment later: without this wait the next
    test could still see them (CI once saw a test's "nwebsocket-io-1" in the next test's thread
    list), and the thread counts of later test files would not hold."""
    yield
    gc.collect()
    assert wait_for(lambda: io_thread_names() == [], timeout=10), io_thread_names()


@pytest.mark.parametrize("threads", [1, 2])
def test_many_connections_on_one_runtime(many_server, threads):
    natives = settled_native_threads()
    python_threads = threading.active_count()
    io = IoThreads(threads)
    assert io.threads == threads
    assert native_threads() <= natives + threads
    sockets = [WebSocket(many_server, io_threads=io) for _ in range(MANY)]
    for ws in sockets:
        assert isinstance(ws.recv(timeout=30), Open)
    assert io.connections == MANY
    for i, ws in enumerate(sockets):
        ws.send(f"echo {i}")
    for i, ws in enumerate(sockets):
        assert ws.recv(timeout=30) == Message(f"echo {i}")
    # The runtime's threads and nothing else: no thread per connection, no Python thread
    # (polling), no resolver thread (an IP literal skips the resolver). At most: a thread of
    # an earlier test may have ended meanwhile.
    assert native_threads() <= natives + threads
    assert sorted(io_thread_names()) == [f"nwebsocket-io-{n}" for n in range(threads)]
    assert threading.active_count() == python_threads
    for ws in sockets:
        ws.close()
    for ws in sockets:
        events = drain(ws, timeout=30)
        assert events == [Close(1000, "", True)], events
        assert ws.readyState == WebSocket.CLOSED
        with pytest.raises(nwebsocket.StreamEndedError):
            ws.try_recv()
    assert wait_for(lambda: io.connections == 0, timeout=10), io.connections
    # Dropped with no connection left: its threads exit.
    del io
    gc.collect()
    assert wait_for(lambda: io_thread_names() == [], timeout=10), io_thread_names()


def test_dropping_io_threads_ends_no_connection(many_server):
    io = IoThreads(1)
    sockets = [WebSocket(many_server, io_threads=io) for _ in range(20)]
    for ws in sockets:
        assert isinstance(ws.recv(timeout=10), Open)
    del io
    gc.collect()
    for i, ws in enumerate(sockets):
        ws.send(f"after {i}")
    for i, ws in enumerate(sockets):
        assert ws.recv(timeout=10) == Message(f"after {i}")
        assert ws.readyState == WebSocket.OPEN
    assert io_thread_names() == ["nwebsocket-io-0"]
    for ws in sockets:
        ws.close()
        assert drain(ws, timeout=10) == [Close(1000, "", True)]
    # Its last connection over, the thread exits by itself.
    assert wait_for(lambda: io_thread_names() == [], timeout=10), io_thread_names()


def test_callbacks_js_and_pep8_names(many_server):
    io = IoThreads(2)
    lock = threading.Lock()
    events = {}
    all_closed = threading.Event()
    count = 40

    def record(i, what):
        with lock:
            events.setdefault(i, []).append(what)
            if sum(1 for e in events.values() if e and e[-1][0] == "close") == count:
                all_closed.set()

    sockets = []
    for i in range(count):
        ws = WebSocket(many_server, io_threads=io)
        if i % 2:
            ws.onopen = lambda ws=ws, i=i: (record(i, ("open",)), ws.send(f"js {i}"))
            ws.onmessage = lambda data, ws=ws, i=i: (record(i, ("message", data)), ws.close())
            ws.onclose = lambda event, i=i: record(i, ("close", event.code, event.wasClean))
        else:
            ws.on_open = lambda ws=ws, i=i: (record(i, ("open",)), ws.send(f"pep8 {i}"))
            ws.on_message = lambda data, ws=ws, i=i: (record(i, ("message", data)), ws.close())
            ws.on_close = lambda event, i=i: record(i, ("close", event.code, event.was_clean))
        ws.onerror = lambda error, i=i: record(i, ("error", str(error)))
        sockets.append(ws)
    assert all_closed.wait(30), events
    for ws in sockets:
        assert ws.wait_closed(10)
    for i in range(count):
        name = "js" if i % 2 else "pep8"
        assert events[i] == [("open",), ("message", f"{name} {i}"), ("close", 1000, True)]
    assert wait_for(lambda: io.connections == 0, timeout=10)


def test_refused_connection_gets_error_then_one_close(closed_port_url):
    io = IoThreads(1)
    sockets = [WebSocket(closed_port_url, io_threads=io) for _ in range(10)]
    for ws in sockets:
        events = drain(ws, timeout=10)
        assert [type(event) for event in events] == [Error, Close], events
        assert isinstance(events[0].error, nwebsocket.ConnectFailedError)
        assert events[1].code == 1006 and not events[1].wasClean
    assert wait_for(lambda: io.connections == 0, timeout=10)
    assert io_thread_names() == ["nwebsocket-io-0"]  # still serving: io is alive


def test_option_and_argument(server):
    assert IoThreads(threads=2).threads == 2
    io = IoThreads(1)
    by_option = WebSocket(server + "/", {"io_threads": io, "connect_timeout": 5})
    by_argument = WebSocket(server + "/", ["chat"], io_threads=io)
    own_thread = WebSocket(server + "/", {"io_threads": None}, io_threads=None)
    for ws in (by_option, by_argument, own_thread):
        assert isinstance(ws.recv(timeout=10), Open)
    assert io.connections == 2
    assert repr(io) == "<IoThreads threads=1 connections=2>"
    for ws in (by_option, by_argument, own_thread):
        ws.close()
    assert wait_for(lambda: io.connections == 0, timeout=10)
    assert repr(io) == "<IoThreads threads=1 connections=0>"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda url: IoThreads(0), "threads must be a positive whole number, not 0"),
        (lambda url: IoThreads("2"), "threads must be a positive whole number, not '2'"),
        (lambda url: IoThreads(True), "threads must be a positive whole number, not True"),
        (
            lambda url: WebSocket(url, io_threads=2),
            "io_threads must be an nwebsocket.IoThreads (or None), not 2",
        ),
        (
            lambda url: WebSocket(url, {"io_threads": "shared"}),
            "io_threads must be an nwebsocket.IoThreads (or None), not 'shared'",
        ),
        (
            lambda url: WebSocket(url, {"io_threads": IoThreads(1)}, io_threads=IoThreads(1)),
            "give io_threads as the argument or as the option, not both",
        ),
    ],
)
def test_bad_values_are_options_errors(server, make, message):
    with pytest.raises(OptionsError) as caught:
        make(server + "/")
    assert str(caught.value) == message
    assert isinstance(caught.value, (TypeError, ValueError))


def test_example_many_connections(server):
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "..", "examples", "many_connections.py"), server + "/", "50", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "50 connections open on 2 I/O threads",
        "50 echoes",
        "50 closed cleanly",
    ]
