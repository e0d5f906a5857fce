"""Threads and the GIL: no dispatcher for polling users, nothing left behind, idle costs
nothing, blocking calls release the GIL and yield to Ctrl-C."""

import gc
import os
import signal
import subprocess
import sys
import threading
import time

from nwebsocket import Open, WebSocket
from conftest import native_threads, settled_native_threads, wait_for


def context_switches(native_id, voluntary_only=False):
    with open(f"/proc/self/task/{native_id}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    voluntary = int(fields["voluntary_ctxt_switches"])
    return voluntary if voluntary_only else voluntary + int(fields["nonvoluntary_ctxt_switches"])


def test_polling_starts_no_python_thread(server):
    natives = settled_native_threads()
    before = threading.active_count()
    ws = WebSocket(server + "/")
    assert isinstance(ws.recv(timeout=10), Open)
    ws.send("x")
    assert ws.recv(timeout=10).data == "x"
    assert threading.active_count() == before
    assert native_threads() == natives + 1  # the I/O thread
    ws.close()
    assert native_threads() == natives  # close() waits for the I/O thread


def test_no_thread_left_after_close(server):
    natives = settled_native_threads()
    sockets = []
    for i in range(20):
        ws = WebSocket(server + "/")
        if i % 2:
            ws.onmessage = lambda m: None
        sockets.append(ws)
    assert wait_for(lambda: all(ws.readyState == WebSocket.OPEN for ws in sockets))
    assert threading.active_count() >= 11
    for ws in sockets:
        ws.close()
    for ws in sockets:
        if ws._dispatcher is not None:
            ws._dispatcher.join(10)
    # join() returns when the thread has finished its Python part; the OS thread ends a moment
    # later, and nothing signals that: poll /proc (bounded).
    assert wait_for(lambda: native_threads() == natives, timeout=5), native_threads() - natives
    assert [t.name for t in threading.enumerate() if t.name.startswith("nwebsocket")] == []


def test_no_thread_left_after_a_dropped_connection(server):
    natives = settled_native_threads()
    ws = WebSocket(server + "/")
    assert isinstance(ws.recv(timeout=10), Open)
    del ws
    gc.collect()
    # Dropping closes in the background (1001, going away); the I/O thread then exits. (At
    # most: a thread of an earlier test may end meanwhile.)
    assert wait_for(lambda: native_threads() <= natives, timeout=10)


def test_idle_dispatcher_never_wakes(server):
    ws = WebSocket(server + "/")
    ws.onmessage = lambda m: None
    assert wait_for(lambda: ws.readyState == WebSocket.OPEN)
    dispatcher = ws._dispatcher
    before = context_switches(dispatcher.native_id)
    time.sleep(1.0)  # measuring idleness: nothing happens on purpose
    assert context_switches(dispatcher.native_id) - before <= 1
    ws.close()


def test_blocked_recv_parks(server):
    """A recv() that waits (off the main thread: no Ctrl-C slices) sleeps until its deadline:
    no spinning, no polling."""
    ws = WebSocket(server + "/")
    assert isinstance(ws.recv(timeout=10), Open)
    switches = []

    def wait():
        # Voluntary switches only: a thread that sleeps or polls gives up the CPU each time,
        # while the other machine's load preempts a thread only while it runs.
        me = threading.get_native_id()
        before = context_switches(me, voluntary_only=True)
        cpu = time.thread_time()
        try:
            ws.recv(timeout=1.0)
        except TimeoutError:
            pass
        switches.append((context_switches(me, voluntary_only=True) - before, time.thread_time() - cpu))

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiter.join(10)
    [(woken, cpu)] = switches
    others = [t.name for t in threading.enumerate()]
    # Parked once, woken at the deadline; a little slack for the GIL. Waiting in 50 ms slices
    # would show 20, polling every millisecond 1,000.
    assert woken <= 5, (woken, others)
    assert cpu < 0.02, (cpu, others)
    ws.close()


def test_blocking_recv_releases_the_gil(server):
    ws = WebSocket(server + "/")
    assert isinstance(ws.recv(timeout=10), Open)
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    worker = threading.Thread(target=count)
    worker.start()
    try:
        try:
            ws.recv(timeout=0.5)
        except TimeoutError:
            pass
    finally:
        stop.set()
        worker.join()
    assert counter[0] > 10_000
    ws.close()


INTERRUPTED = """
import sys, time
from nwebsocket import WebSocket, Open
ws = WebSocket(sys.argv[1], {"close_timeout": 60})
assert isinstance(ws.recv(timeout=10), Open)
print("blocking", flush=True)
try:
    ws.%s
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def run_and_interrupt(call, url):
    process = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED % call, url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "blocking"
        time.sleep(0.2)  # let it enter the blocking call (nothing to wait on from outside)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=10)[0]
        return output, time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ctrl_c_interrupts_recv(server):
    output, elapsed = run_and_interrupt("recv()", server + "/")
    assert output.strip() == "interrupted"
    assert elapsed < 5


def test_ctrl_c_interrupts_the_wait_of_close(servers):
    output, elapsed = run_and_interrupt("close()", servers["raw"] + "/deaf")
    assert output.strip() == "interrupted"
    assert elapsed < 5
