"""Events in `match` statements (Python 3.10+; conftest.py skips collecting this file on 3.9):
positional patterns through `__match_args__`, and a handler unit-tested with fake events."""

import nwebsocket
from nwebsocket import Close, Error, Message, Open


def test_events_match_by_position():
    def kind(event):
        match event:
            case Message(str(text)):
                return "text " + text
            case Message(bytes(blob)):
                return "binary %d" % len(blob)
            case Close(code, reason, clean):
                return f"close {code} {reason} {clean}"
            case Open(protocol, extensions, headers):
                return f"open {protocol!r} {extensions!r} {headers}"
            case Error(error):
                return "error " + type(error).__name__
        return "?"

    assert kind(Message("hi")) == "text hi"
    assert kind(Message(b"\x00\x01")) == "binary 2"
    assert kind(Close(4000, "bye", False)) == "close 4000 bye False"
    assert kind(Open("chat")) == "open 'chat' '' {}"
    assert kind(Error(nwebsocket.TLSError("x"))) == "error TLSError"


def test_a_handler_tested_with_fake_events():
    """What the issue asked for: a handler unit-tested without a server."""
    seen = []

    def handle(event):
        match event:
            case Message(data):
                seen.append(data.upper())
            case Close(code):
                seen.append(code)

    for event in (Message(data="hi"), Close(code=1000)):
        handle(event)
    assert seen == ["HI", 1000]
