"""The Python side of the API: PEP 8 names beside the JS ones, and events as values (made with
keyword arguments, equal, hashable, pickled; matched by position in test_match.py) so that handlers can be
tested with fake events."""

import pickle
import threading

import pytest

import nwebsocket
from nwebsocket import Close, Error, Message, Open, WebSocket
from conftest import drain


def test_pep8_names_are_the_js_attributes(server):
    ws = WebSocket(server + "/")
    assert isinstance(ws.recv(timeout=10), Open)
    assert ws.ready_state == ws.readyState == WebSocket.OPEN
    assert ws.buffered_amount == ws.bufferedAmount == 0
    ws.close()
    assert ws.ready_state == WebSocket.CLOSED


def test_callbacks_by_either_name_are_one_attribute(server):
    ws = WebSocket(server + "/")
    handler = print
    ws.on_message = handler
    assert ws.onmessage is handler and ws.on_message is handler
    ws.onmessage = None
    assert ws.on_message is None
    del ws.on_message  # back to the class's default
    assert ws.onmessage == ws.on_message
    ws.close()


def test_callbacks_assigned_by_pep8_names_fire(server):
    got = []
    done = threading.Event()
    ws = WebSocket(server + "/")
    ws.on_open = lambda: ws.send("hi")
    ws.on_message = lambda data: (got.append(data), ws.close())
    ws.on_close = lambda event: (got.append(event), done.set())
    assert done.wait(10)
    assert got == ["hi", Close(1000, "", True)]


class Pep8Client(WebSocket):
    def __init__(self, url):
        self.got = []
        self.done = threading.Event()
        super().__init__(url)

    def on_open(self):
        self.send("hello")

    def on_message(self, data):
        self.got.append(data)
        self.close()

    def on_close(self, event):
        self.got.append(event.code)
        self.done.set()


def test_a_subclass_may_override_the_pep8_names(server):
    ws = Pep8Client(server + "/")
    assert ws.done.wait(10)
    assert ws.got == ["hello", 1000]
    assert ws.on_message == ws.onmessage  # still one attribute


def test_a_subclass_may_not_define_both_names():
    with pytest.raises(TypeError, match="both onmessage and on_message"):

        class Both(WebSocket):
            def onmessage(self, data):
                pass

            def on_message(self, data):
                pass


def test_events_made_with_keyword_arguments():
    assert Message(data="hi").data == "hi"
    assert Message(data=bytearray(b"\x00")).data == b"\x00"
    assert Message(memoryview(b"ab")).data == b"ab"
    close = Close(code=4000, reason="bye", was_clean=True)
    assert (close.code, close.reason, close.was_clean, close.wasClean) == (4000, "bye", True, True)
    assert close.is_final and close.reconnect is None and close.attempt == 0
    later = Close(1006, was_clean=False, reconnect=0.5, attempt=1)
    assert not later.is_final
    error = nwebsocket.ConnectFailedError("could not connect")
    assert Error(error=error).error is error and Error(error).message == "could not connect"
    opened = Open(protocol="chat", extensions="permessage-deflate", headers={"Server": "x"})
    assert (opened.protocol, opened.extensions, opened.headers) == ("chat", "permessage-deflate", {"server": "x"})
    assert Open() == Open(protocol="", extensions="", headers={})


@pytest.mark.parametrize(
    "call",
    [
        lambda: Message(3),
        lambda: Message(["a"]),
        lambda: Error("not an exception"),
        lambda: Close("1000"),
        lambda: Open(headers={"a": 1}),
    ],
)
def test_events_refuse_wrong_types(call):
    with pytest.raises(TypeError):
        call()


def test_close_checks_reconnect_and_attempt_together():
    for bad in (dict(reconnect=1.0), dict(attempt=2), dict(reconnect=-1.0, attempt=1), dict(code=70000)):
        with pytest.raises((ValueError, OverflowError)):
            Close(**{"code": 1006, **bad})


def test_events_are_equal_by_value_and_hashable():
    assert Message("a") == Message("a") and Message("a") != Message(b"a")
    assert not (Message("a") != Message("a"))
    assert Message("a") != "a" and Close(1000) != Message("a")
    assert Close(1000, "x") == Close(1000, "x") != Close(1000, "y")
    assert len({Message("a"), Message("a"), Close(1000), Close(1000), Open(), Open()}) == 3
    error = nwebsocket.ProtocolError("bad")
    assert Error(error) == Error(error) and hash(Error(error)) == hash(Error(error))
    # By class and message: exceptions themselves compare by identity.
    assert Error(nwebsocket.ProtocolError("bad")) == Error(nwebsocket.ProtocolError("bad"))
    assert Error(nwebsocket.ProtocolError("bad")) != Error(nwebsocket.ProtocolError("worse"))
    assert Error(nwebsocket.ProtocolError("bad")) != Error(nwebsocket.TLSError("bad"))


def test_events_pickle(server):
    received = [Open(protocol="chat", headers={"a": "b"}), Message("hi"), Message(b"\x00"), Close(1006, "", False, 0.25, 2)]
    ws = WebSocket(server + "/")
    real = [ws.recv(timeout=10)]
    ws.close()
    real += drain(ws)
    for event in received + real:
        copy = pickle.loads(pickle.dumps(event))
        assert copy == event and type(copy) is type(event)
    error = Error(nwebsocket.ConnectionLostError("reset"))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy.error) is nwebsocket.ConnectionLostError and copy.message == "reset"
    assert copy == error


def test_the_package_exports_every_exception():
    assert set(nwebsocket.errors.__all__) <= set(nwebsocket.__all__)


def test_send_and_recv_are_the_native_calls_unless_replaced(server, monkeypatch):
    """An instance calls its Connection's send/recv/try_recv directly (no Python method in
    between), with the same arguments; a subclass that overrides one, or a patch of the class
    made before the instance, is still what gets called."""
    ws = WebSocket(server + "/")
    assert ws.recv.__self__ is ws._conn and ws.send.__self__ is ws._conn
    assert isinstance(ws.recv(timeout=10), nwebsocket.Open)
    assert ws.try_recv() is None
    ws.send(data="kw")
    assert ws.recv(timeout=10) == nwebsocket.Message(data="kw")
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.01)
    ws.close()

    class Logged(WebSocket):
        def recv(self, timeout=None):
            event = super().recv(timeout)
            self.seen.append(event)
            return event

    logged = Logged(server + "/")
    logged.seen = []
    assert logged.recv(10) == logged.seen[0]
    logged.close()

    sent = []
    monkeypatch.setattr(WebSocket, "send", lambda self, data: sent.append(data))
    patched = WebSocket(server + "/")
    patched.send("never on the wire")
    assert sent == ["never on the wire"]
    patched.close()
