"""Messages: every payload type, 10,000 in order both ways, 16 MiB each way."""

import sys
import time

import pytest

import nwebsocket
from nwebsocket import Close, Message, Open, WebSocket
from conftest import drain

COUNT = 10_000


def open_ws(url, options=None):
    ws = WebSocket(url, options)
    assert isinstance(ws.recv(timeout=10), Open)
    return ws


def test_payload_types(server):
    ws = open_ws(server + "/")
    ws.send("text é")
    ws.send(b"\x00bytes")
    ws.send(bytearray(b"array"))
    ws.send(memoryview(b"xxview")[2:])
    ws.send(b"")
    got = [ws.recv(timeout=10).data for _ in range(5)]
    assert got == ["text é", b"\x00bytes", b"array", b"view", b""]
    with pytest.raises(TypeError):
        ws.send(42)
    ws.close()


def test_a_sent_payload_is_what_it_was_at_send_time(server):
    """bytes are shared with the core, not copied: immutable, and kept alive while queued
    (a large message waits in the send queue by reference); bytearray and memoryview are
    copied at send() time, so changing them after it changes nothing."""
    ws = open_ws(server + "/", {"deflate": False})
    big = bytes(range(256)) * 1024  # 256 KiB: queued as it is, framed by the I/O thread
    before = sys.getrefcount(big)
    array = bytearray(b"a" * 100_000)
    view_of = bytearray(b"v" * 100_000)
    ws.send(big)
    ws.send(bytes(b"dropped at once" * 2000))  # its only reference is the send queue's
    ws.send(array)
    ws.send(memoryview(view_of)[1:])
    array[:] = b"A" * 100_000
    view_of[:] = b"V" * 100_000
    got = [ws.recv(timeout=10).data for _ in range(4)]
    assert got[0] == big
    assert got[1] == b"dropped at once" * 2000
    assert got[2] == b"a" * 100_000
    assert got[3] == b"v" * 99_999
    # The core dropped its reference to `big` (on the I/O thread, without the GIL: PyO3
    # gives it back at the next call into the module, such as this one).
    ws.send("x")
    assert ws.recv(timeout=10).data == "x"
    assert sys.getrefcount(big) == before
    ws.close()


def test_ten_thousand_echoed_in_order(server):
    ws = open_ws(server + "/")
    for i in range(COUNT):
        ws.send(str(i))
    received = [ws.recv(timeout=10).data for _ in range(COUNT)]
    assert received == [str(i) for i in range(COUNT)]
    ws.close()


def test_ten_thousand_from_the_server_in_order_with_callbacks(server):
    ws = WebSocket(server + f"/flood/{COUNT}/64")
    received = []
    ws.onmessage = received.append
    assert ws.wait_closed(30)
    assert len(received) == COUNT
    assert [int(m.split(":")[0]) for m in received] == list(range(COUNT))
    assert all(len(m) == 64 for m in received)


def test_ten_thousand_from_the_server_polled(server):
    ws = WebSocket(server + f"/flood/{COUNT}/16")
    numbers = []
    for event in drain(ws):
        if isinstance(event, Message):
            numbers.append(int(event.data.split(":")[0]))
    assert numbers == list(range(COUNT))
    assert isinstance(event, Close) and event.wasClean


def test_small_event_queue_loses_nothing(server):
    """Backpressure instead of loss: a queue of 8 still gets all 10,000."""
    ws = WebSocket(server + f"/flood/{COUNT}/16", {"event_queue_capacity": 8})
    messages = sum(1 for event in drain(ws) if isinstance(event, Message))
    assert messages == COUNT


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_sixteen_mebibytes(server, kind):
    size = 16 << 20
    payload = ("ab" * (size // 2)) if kind == "text" else bytes(range(256)) * (size // 256)
    ws = open_ws(server + "/")
    ws.send(payload)
    echoed = ws.recv(timeout=60).data
    assert type(echoed) is type(payload)
    assert len(echoed) == size and echoed == payload
    ws.close()


def test_over_max_message_size_fails_the_connection(server):
    ws = open_ws(server + "/", {"maxPayload": 1000})
    ws.send("x" * 1001)
    events = drain(ws)
    assert [type(e).__name__ for e in events] == ["Error", "Close"]
    assert isinstance(events[0].error, nwebsocket.ProtocolError)
    # We failed the connection (sending 1009 to the server): as in JS, our Close says 1006.
    assert (events[1].code, events[1].wasClean) == (1006, False)


def test_buffered_amount_drains(server):
    ws = open_ws(server + "/")
    ws.send(b"x" * (8 << 20))
    assert ws.bufferedAmount >= 0
    limit = time.monotonic() + 10
    while ws.bufferedAmount and time.monotonic() < limit:
        time.sleep(1e-3)
    assert ws.bufferedAmount == 0
    assert len(ws.recv(timeout=30).data) == 8 << 20
    ws.close()


def test_max_buffered_amount_refuses_a_send_past_it(server):
    ws = WebSocket(server + "/", {"max_buffered_amount": 1000})
    assert isinstance(ws.recv(timeout=10), Open)
    with pytest.raises(nwebsocket.QueueFullError) as raised:
        ws.send("x" * 1001)  # larger than the limit: can never be sent
    assert raised.value.queued == 0
    assert str(raised.value) == (
        "send() of 1001 bytes refused: 0 bytes already wait to be written, "
        "and max_buffered_amount allows 1000"
    )
    ws.send("y" * 1000)  # fits exactly; nothing was queued by the refused one
    event = ws.recv(timeout=10)
    assert isinstance(event, Message) and event.data == "y" * 1000
    ws.close()


def test_a_small_event_queue_in_bytes_loses_nothing(server):
    # 200 messages of 1,000 bytes through a queue that holds about one: the I/O thread stops
    # reading while it is full (TCP backpressure), and every message arrives, in order.
    ws = WebSocket(server + "/flood/200/1000", {"event_queue_bytes": 1024})
    events = drain(ws)
    messages = [event.data for event in events if isinstance(event, Message)]
    assert [int(data.split(":")[0]) for data in messages] == list(range(200))
    assert all(len(data) == 1000 for data in messages)
    assert isinstance(events[-1], Close) and events[-1].code == 1000
