"""One client library's measurements, run in a process (and venv) of its own by bench.py.

    python clients.py LIBRARY BASE_URL

prints one JSON line: RTT samples' p50/p99 in microseconds, and inbound and outbound
messages per second with the counts that actually arrived, and (where written) the medians of
connect+close and of a 1 MiB echo in milliseconds. The server is bench/echo-server:
``/`` echoes, ``/flood/<n>/<size>`` sends n messages, ``/sink`` counts until ``__done__``.
"""

import json
import statistics
import sys
import threading
import time

SIZE = 32
PAYLOAD = "x" * SIZE
RTT_WARMUP = 200
RTT_COUNT = 5_000
BULK = 100_000
SLOW_BULK = 10_000  # for the 1.0 package, which cannot keep up with more in reasonable time
BURST = 1_000  # sent back to back to the echo server; how many come back, in order?
CONNECTS = 200  # connect, wait until open, close (waiting for the close handshake): each timed
BIG = bytes(1 << 20)  # one binary message of 1 MiB, echoed
BIG_ECHOES = 20


def percentiles(samples):
    samples = sorted(samples)
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    return pick(0.50) * 1e6, pick(0.99) * 1e6


# --- nwebsocket-rs, polling -------------------------------------------------------------

def ours_polling(base):
    from nwebsocket import Close, Open, WebSocket

    ws = WebSocket(base + "/")
    assert isinstance(ws.recv(timeout=10), Open)
    samples = []
    for i in range(RTT_WARMUP + RTT_COUNT):
        start = time.perf_counter()
        ws.send(PAYLOAD)
        ws.recv()
        if i >= RTT_WARMUP:
            samples.append(time.perf_counter() - start)
    for i in range(BURST):
        ws.send(str(i))
    echoed = []
    try:
        while len(echoed) < BURST:
            echoed.append(ws.recv(timeout=5).data)
    except TimeoutError:
        pass
    burst = in_order(echoed)
    ws.close()

    ws = WebSocket(f"{base}/flood/{BULK}/{SIZE}")
    assert isinstance(ws.recv(timeout=10), Open)
    # The same loop as the other blocking clients': BULK calls of recv(), nothing else.
    start = time.perf_counter()
    for _ in range(BULK):
        ws.recv()
    inbound = (BULK, time.perf_counter() - start)
    assert isinstance(event := ws.recv(timeout=10), Close) and event.wasClean, event

    ws = WebSocket(base + "/sink")
    assert isinstance(ws.recv(timeout=10), Open)
    start = time.perf_counter()
    for _ in range(BULK):
        ws.send(PAYLOAD)
    ws.send("__done__")
    reply = ws.recv(timeout=60).data
    outbound = (int(reply.split(":")[1]), time.perf_counter() - start)
    ws.close()
    return samples, inbound, outbound, BULK, burst


def in_order(echoed):
    """How many of the burst's echoes came back in order (a lost or reordered one ends it)."""
    count = 0
    for i, data in enumerate(echoed):
        if data != str(i):
            break
        count += 1
    return count


# --- nwebsocket-rs and the 1.0 package, callbacks (the same code for both) ----------------

def callbacks(base, bulk):
    from nwebsocket import WebSocket

    def opened(url):
        ws = WebSocket(url)
        ws.got = []
        ws.arrived = threading.Event()

        def onmessage(data):
            ws.got.append(data)
            ws.arrived.set()

        ws.onmessage = onmessage
        limit = time.monotonic() + 10
        while ws.readyState == WebSocket.CONNECTING and time.monotonic() < limit:
            time.sleep(1e-4)
        assert ws.readyState == WebSocket.OPEN
        return ws

    ws = opened(base + "/")
    samples = []
    for i in range(RTT_WARMUP + RTT_COUNT):
        ws.arrived.clear()
        start = time.perf_counter()
        ws.send(PAYLOAD)
        if not ws.arrived.wait(5):
            break  # lost (the 1.0 package loses messages)
        if i >= RTT_WARMUP:
            samples.append(time.perf_counter() - start)
    ws.got.clear()
    for i in range(BURST):
        ws.send(str(i))
    seen = -1
    while len(ws.got) != seen:  # until nothing more arrives within 2 s
        seen = len(ws.got)
        ws.arrived.clear()
        if seen < BURST:
            ws.arrived.wait(2)
    burst = in_order(list(ws.got))
    ws.close()

    counted = []
    done = threading.Event()
    ws = WebSocket(f"{base}/flood/{bulk}/{SIZE}")

    def count(data):
        counted.append(time.perf_counter())

    ws.onmessage = count
    ws.onclose = lambda *args: done.set()
    start = time.perf_counter()
    # The flood starts once open; with callbacks we cannot take "open" off the clock as
    # precisely, so the connect (~1 ms on loopback) is included.
    done.wait(120)
    inbound = (len(counted), (counted[-1] - start) if counted else float("nan"))
    ws.close()

    ws = opened(base + "/sink")
    start = time.perf_counter()
    for _ in range(bulk):
        ws.send(PAYLOAD)
    ws.send("__done__")
    limit = time.monotonic() + 60
    while not ws.got and time.monotonic() < limit:
        ws.arrived.wait(1)
    outbound = (int(ws.got[0].split(":")[1]) if ws.got else 0, time.perf_counter() - start)
    ws.close()
    return samples, inbound, outbound, bulk, burst


# --- websocket-client ---------------------------------------------------------------------

def websocket_client(base):
    import websocket

    ws = websocket.create_connection(base + "/")
    samples = []
    for i in range(RTT_WARMUP + RTT_COUNT):
        start = time.perf_counter()
        ws.send(PAYLOAD)
        ws.recv()
        if i >= RTT_WARMUP:
            samples.append(time.perf_counter() - start)
    for i in range(BURST):
        ws.send(str(i))
    burst = in_order([ws.recv() for _ in range(BURST)])
    ws.close()

    ws = websocket.create_connection(f"{base}/flood/{BULK}/{SIZE}")
    start = time.perf_counter()
    for _ in range(BULK):
        ws.recv()
    inbound = (BULK, time.perf_counter() - start)
    ws.close()

    ws = websocket.create_connection(base + "/sink")
    start = time.perf_counter()
    for _ in range(BULK):
        ws.send(PAYLOAD)
    ws.send("__done__")
    outbound = (int(ws.recv().split(":")[1]), time.perf_counter() - start)
    ws.close()
    return samples, inbound, outbound, BULK, burst


# --- websockets, sync client --------------------------------------------------------------

def websockets_sync(base):
    from websockets.sync.client import connect

    options = dict(compression=None, max_size=None)
    ws = connect(base + "/", **options)
    samples = []
    for i in range(RTT_WARMUP + RTT_COUNT):
        start = time.perf_counter()
        ws.send(PAYLOAD)
        ws.recv()
        if i >= RTT_WARMUP:
            samples.append(time.perf_counter() - start)
    for i in range(BURST):
        ws.send(str(i))
    burst = in_order([ws.recv() for _ in range(BURST)])
    ws.close()

    ws = connect(f"{base}/flood/{BULK}/{SIZE}", **options)
    start = time.perf_counter()
    for _ in range(BULK):
        ws.recv()
    inbound = (BULK, time.perf_counter() - start)
    ws.close()

    ws = connect(base + "/sink", **options)
    start = time.perf_counter()
    for _ in range(BULK):
        ws.send(PAYLOAD)
    ws.send("__done__")
    outbound = (int(ws.recv().split(":")[1]), time.perf_counter() - start)
    ws.close()
    return samples, inbound, outbound, BULK, burst


# --- picows (asyncio; for reference) ------------------------------------------------------

def picows_client(base):
    import asyncio

    from picows import WSListener, WSMsgType, ws_connect

    class Listener(WSListener):
        def __init__(self):
            self.waiter = None
            self.count = 0
            self.target = 0
            self.last = 0.0
            self.text = None

        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()
                return
            self.count += 1
            self.last = time.perf_counter()
            if frame.msg_type == WSMsgType.TEXT:
                self.text = frame.get_payload_as_ascii_text()
            if self.waiter is not None and not self.waiter.done() and self.count >= self.target:
                self.waiter.set_result(None)

    async def run():
        loop = asyncio.get_running_loop()
        payload = PAYLOAD.encode()
        transport, listener = await ws_connect(Listener, base + "/")
        samples = []
        for i in range(RTT_WARMUP + RTT_COUNT):
            listener.waiter = loop.create_future()
            listener.target = listener.count + 1
            start = time.perf_counter()
            transport.send(WSMsgType.TEXT, payload)
            await listener.waiter
            if i >= RTT_WARMUP:
                samples.append(time.perf_counter() - start)
        transport.disconnect()

        transport, listener = await ws_connect(Listener, f"{base}/flood/{BULK}/{SIZE}")
        start = time.perf_counter()
        listener.waiter = loop.create_future()
        listener.target = BULK
        await listener.waiter
        inbound = (listener.count, listener.last - start)
        transport.disconnect()

        transport, listener = await ws_connect(Listener, base + "/sink")
        start = time.perf_counter()
        for _ in range(BULK):
            transport.send(WSMsgType.TEXT, payload)
        listener.waiter = loop.create_future()
        listener.target = 1
        transport.send(WSMsgType.TEXT, b"__done__")
        await listener.waiter
        outbound = (int(listener.text.split(":")[1]), time.perf_counter() - start)
        transport.disconnect()
        return samples, inbound, outbound, BULK, None

    return asyncio.run(run())


# --- websocket-rs (the other PyO3 client; its sync client, on tungstenite) ---------------

def websocket_rs_sync(base):
    from websocket_rs.sync.client import connect

    ws = connect(base + "/")
    samples = []
    for i in range(RTT_WARMUP + RTT_COUNT):
        start = time.perf_counter()
        ws.send(PAYLOAD)
        ws.recv()
        if i >= RTT_WARMUP:
            samples.append(time.perf_counter() - start)
    for i in range(BURST):
        ws.send(str(i))
    burst = in_order([ws.recv() for _ in range(BURST)])
    ws.close()

    ws = connect(f"{base}/flood/{BULK}/{SIZE}")
    start = time.perf_counter()
    for _ in range(BULK):
        ws.recv()
    inbound = (BULK, time.perf_counter() - start)
    ws.close()

    ws = connect(base + "/sink")
    start = time.perf_counter()
    for _ in range(BULK):
        ws.send(PAYLOAD)
    ws.send("__done__")
    outbound = (int(ws.recv().split(":")[1]), time.perf_counter() - start)
    ws.close()
    return samples, inbound, outbound, BULK, burst


# --- connect+close and 1 MiB echoes, per client -------------------------------------------
# Each returns (connect+close seconds, 1 MiB echo seconds), one sample per try.

def timed(count, once):
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        once()
        samples.append(time.perf_counter() - start)
    return samples


def ours_polling_extra(base):
    from nwebsocket import Message, Open, WebSocket

    def connect_close():
        ws = WebSocket(base + "/")
        assert isinstance(ws.recv(timeout=10), Open)
        ws.close()  # returns once closed and the I/O thread has finished

    ws = WebSocket(base + "/")
    assert isinstance(ws.recv(timeout=10), Open)

    def echo():
        ws.send(BIG)
        event = ws.recv(timeout=10)
        assert isinstance(event, Message) and len(event.data) == len(BIG)

    echoes = timed(BIG_ECHOES, echo)
    ws.close()
    return timed(CONNECTS, connect_close), echoes


def ours_callbacks_extra(base):
    from nwebsocket import WebSocket

    def connect_close():
        opened = threading.Event()
        ws = WebSocket(base + "/")
        ws.onopen = opened.set
        assert opened.wait(10)
        ws.close()  # returns once onclose has run and the dispatcher has finished

    got = threading.Event()
    sizes = []
    ws = WebSocket(base + "/")
    opened = threading.Event()
    ws.onopen = opened.set
    ws.onmessage = lambda data: (sizes.append(len(data)), got.set())
    assert opened.wait(10)

    def echo():
        got.clear()
        ws.send(BIG)
        assert got.wait(10) and sizes[-1] == len(BIG)

    echoes = timed(BIG_ECHOES, echo)
    ws.close()
    return timed(CONNECTS, connect_close), echoes


def sync_extra(connect):
    """For the clients with a blocking connect(), send(), recv() and close()."""

    def extra(base):
        def connect_close():
            connect(base + "/").close()

        ws = connect(base + "/")

        def echo():
            ws.send(BIG)
            assert len(ws.recv()) == len(BIG)

        echoes = timed(BIG_ECHOES, echo)
        ws.close()
        return timed(CONNECTS, connect_close), echoes

    return extra


def websocket_client_connect(url):
    import websocket

    return websocket.create_connection(url)


def websockets_sync_connect(url):
    from websockets.sync.client import connect

    return connect(url, compression=None, max_size=None)


def websocket_rs_connect(url):
    from websocket_rs.sync.client import connect

    return connect(url)


def picows_extra(base):
    import asyncio

    from picows import WSListener, WSMsgType, ws_connect

    class Listener(WSListener):
        def __init__(self):
            self.waiter = None
            self.size = 0

        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()
                return
            self.size = len(frame.get_payload_as_bytes())
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    async def run():
        loop = asyncio.get_running_loop()
        connects = []
        for _ in range(CONNECTS):
            start = time.perf_counter()
            transport, _ = await ws_connect(Listener, base + "/")
            transport.send_close()
            await transport.wait_disconnected()
            connects.append(time.perf_counter() - start)
        transport, listener = await ws_connect(Listener, base + "/", max_frame_size=2 << 20)
        echoes = []
        for _ in range(BIG_ECHOES):
            listener.waiter = loop.create_future()
            start = time.perf_counter()
            transport.send(WSMsgType.BINARY, BIG)
            await listener.waiter
            assert listener.size == len(BIG)
            echoes.append(time.perf_counter() - start)
        transport.disconnect()
        return connects, echoes

    return asyncio.run(run())


EXTRAS = {
    "nwebsocket-rs, recv()": ours_polling_extra,
    "nwebsocket-rs, callbacks": ours_callbacks_extra,
    "websocket-client": sync_extra(websocket_client_connect),
    "websockets (sync)": sync_extra(websockets_sync_connect),
    "websocket-rs (sync)": sync_extra(websocket_rs_connect),
    "picows (asyncio)": picows_extra,
}


LIBRARIES = {
    "nwebsocket-rs, recv()": ours_polling,
    "nwebsocket-rs, callbacks": lambda base: callbacks(base, BULK),
    "nwebsocket 1.0, callbacks": lambda base: callbacks(base, SLOW_BULK),
    "websocket-client": websocket_client,
    "websockets (sync)": websockets_sync,
    "picows (asyncio)": picows_client,
    "websocket-rs (sync)": websocket_rs_sync,
}


def main():
    name, base = sys.argv[1], sys.argv[2]
    samples, (in_count, in_seconds), (out_count, out_seconds), bulk, burst = LIBRARIES[name](base)
    p50, p99 = percentiles(samples) if samples else (float("nan"), float("nan"))
    connects, echoes = EXTRAS[name](base) if name in EXTRAS else ([], [])
    print(json.dumps({
        "connect_ms": statistics.median(connects) * 1e3 if connects else None,
        "echo_1mib_ms": statistics.median(echoes) * 1e3 if echoes else None,
        "library": name,
        "rtt_p50_us": p50,
        "rtt_p99_us": p99,
        "rtt_samples": len(samples),
        "sent": bulk,
        "burst_in_order": burst,
        "in_received": in_count,
        "in_per_s": in_count / in_seconds if in_seconds == in_seconds and in_seconds > 0 else 0,
        "out_received": out_count,
        "out_per_s": out_count / out_seconds if out_seconds > 0 else 0,
    }))


if __name__ == "__main__":
    main()
