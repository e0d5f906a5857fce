"""Fixtures: the local servers (tests/servers.py, in a child process) and helpers."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# `match` is Python 3.10 syntax; the module supports 3.9.
collect_ignore = ["test_match.py"] if sys.version_info < (3, 10) else []


@pytest.fixture(scope="session")
def servers():
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "servers.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the test servers did not start")
    info = json.loads(line)
    yield {
        "ws": f"ws://127.0.0.1:{info['ws']}",
        "ws_deflate": f"ws://127.0.0.1:{info['ws_deflate']}",
        "wss": f"wss://127.0.0.1:{info['wss']}",
        "wss_localhost": f"wss://localhost:{info['wss']}",
        "silent": f"ws://127.0.0.1:{info['silent']}",
        "raw": f"ws://127.0.0.1:{info['raw']}",
        "wss_wrong_name": f"wss://127.0.0.1:{info['wss_wrong_name']}",
        "wss_expired": f"wss://127.0.0.1:{info['wss_expired']}",
        "wss_mtls": f"wss://127.0.0.1:{info['wss_mtls']}",
        **{
            name: info[name]
            for name in (
                "cafile",
                "client_cert",
                "client_key",
                "client_combined",
                "foreign_cert",
                "foreign_key",
            )
        },
    }
    process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server(servers):
    """The echo server's base URL (the 1.0 tests call their fixture `server`)."""
    return servers["ws"]


@pytest.fixture
def closed_port_url():
    """A ws:// URL on 127.0.0.1 where nothing listens (connections are refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"ws://127.0.0.1:{port}/"


def native_threads():
    """How many OS threads this process has (Python's and the native I/O threads)."""
    return len(os.listdir("/proc/self/task"))


def nwebsocket_thread_names():
    """The OS names of this process's native nwebsocket threads (I/O, DNS, dispatcher), each
    named "nwebsocket-...", as /proc shows them."""
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                names.append(comm.read().strip())
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            pass
    return [name for name in names if name.startswith("nwebsocket")]


def settled_native_threads(timeout=10.0):
    """The thread count to measure a test from: once no nwebsocket thread of an earlier test is
    left. A dropped connection's threads exit a moment after it, and a resolver thread 5 s after
    its last lookup (nothing signals either), so a count taken too soon would include a thread
    about to go, and an exact count later in the test could fail."""
    assert wait_for(lambda: nwebsocket_thread_names() == [], timeout), nwebsocket_thread_names()
    return native_threads()


def wait_for(predicate, timeout=10.0):
    """Polls `predicate` every millisecond until it is true or `timeout` passes."""
    limit = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > limit:
            return False
        time.sleep(1e-3)
    return True


def settled_thread_count(expected, timeout=10.0):
    """Waits (bounded) for the process's thread count to come down to `expected`."""
    wait_for(lambda: native_threads() <= expected and threading.active_count() >= 1, timeout)
    return native_threads()


def drain(ws, timeout=30.0):
    """Every remaining event up to and including the Close, each waited for at most `timeout`
    seconds (a bounded `list(ws)`)."""
    from nwebsocket import Close

    events = []
    while not events or not isinstance(events[-1], Close):
        events.append(ws.recv(timeout=timeout))
    return events
