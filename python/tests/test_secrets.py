"""No secret reaches a repr, a str or an exception message (issue 16, item 3): a URL's password
and query values, and the values of headers that carry credentials (Authorization,
Proxy-Authorization, Cookie), wherever the module prints something; ``url`` keeps the URL as
given."""

import pytest

from nwebsocket import Close, Error, OptionsError, WebSocket, WebSocketError
from nwebsocket._redact import redact_url

from conftest import drain as drain_events


def drain(ws, timeout=30.0):
    """Every event up to the Close, and then the end of the I/O thread (later tests count
    threads)."""
    events = drain_events(ws, timeout=timeout)
    assert ws.wait_closed(timeout=10)
    return events


PASSWORD = "pw-s3cr3t-1"
QUERY = "tok-s3cr3t-2"
BEARER = "bearer-s3cr3t-3"
COOKIE = "cookie-s3cr3t-4"
PROXY_AUTH = "proxyauth-s3cr3t-5"
PROXY_PASSWORD = "proxypw-s3cr3t-6"
SECRETS = (PASSWORD, QUERY, BEARER, COOKIE, PROXY_AUTH, PROXY_PASSWORD)

HEADERS = {
    "Authorization": f"Bearer {BEARER}",
    "Cookie": f"sid={COOKIE}",
    "Proxy-Authorization": f"Basic {PROXY_AUTH}",
}


def texts(obj):
    """Every text the module shows for `obj`: repr and str, and for an exception or an Error
    event, those of the exception, its args, its message and its causes."""
    shown = [repr(obj), str(obj)]
    if isinstance(obj, Error):
        shown += [obj.message] + texts(obj.error)
    if isinstance(obj, BaseException):
        shown += [repr(arg) for arg in obj.args]
        for cause in (obj.__cause__, obj.__context__):
            if cause is not None:
                shown += texts(cause)
    return shown


def assert_no_secret(shown):
    assert shown, "nothing was searched"
    for text in shown:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in {text!r}"


def secret_url(base, path="/feed"):
    host = base.split("://", 1)[1].rstrip("/")
    return f"ws://robot:{PASSWORD}@{host}{path}?token={QUERY}&x=1"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "wss://user:secret@127.0.0.1:1/feed?token=abc&x=1&flag#frag",
            "wss://***@127.0.0.1:1/feed?token=***&x=***&flag",
        ),
        ("ws://127.0.0.1/path", "ws://127.0.0.1/path"),
        ("not a url?key=v", "not a url?key=***"),
        ("http://u:pa/ss@proxy:3128", "http://***@proxy:3128"),
        ("http://u:pa?ss@proxy:3128", "http://***@proxy:3128"),
        ("ws://u:pa#ss@host/x", "ws://***@host/x"),
        ("u:pa/ss@proxy:3128", "***@proxy:3128"),
        ("ws://host/#token", "ws://host/"),
    ],
)
def test_redact_url_matches_the_core(raw, shown):
    # The core's own cases (src/redact.rs), which this mirrors.
    assert redact_url(raw) == shown


def test_an_open_connection_shows_no_secret_and_url_keeps_the_users_url(server):
    url = secret_url(server)
    ws = WebSocket(url, {"headers": HEADERS})
    shown = texts(ws)
    event = ws.recv(timeout=10)
    shown += texts(event) + texts(ws)
    ws.send("hi")
    shown += texts(ws.recv(timeout=10))
    ws.close()
    shown += texts(ws)
    events = drain(ws)
    assert isinstance(events[-1], Close)
    for event in events:
        shown += texts(event)
    with pytest.raises(WebSocketError) as raised:
        ws.send("late")
    shown += texts(raised.value)
    assert_no_secret(shown)
    assert ws.url == url
    assert "robot:***" not in repr(ws) and "***@127.0.0.1" in repr(ws)
    assert "token=***&x=***" in str(ws)


def test_a_refused_connection_shows_no_secret(closed_port_url):
    ws = WebSocket(secret_url(closed_port_url), {"headers": HEADERS})
    events = drain(ws)
    assert isinstance(events[0], Error)
    shown = texts(ws)
    for event in events:
        shown += texts(event)
    with pytest.raises(WebSocketError) as raised:
        ws.send("never")
    shown += texts(raised.value)
    assert_no_secret(shown)


def test_a_rejected_handshake_shows_no_secret(server):
    ws = WebSocket(secret_url(server, "/reject"), {"headers": HEADERS})
    events = drain(ws)
    assert isinstance(events[0], Error) and events[0].error.status == 403
    shown = texts(ws)
    for event in events:
        shown += texts(event)
    assert_no_secret(shown)


def test_callbacks_get_no_secret(closed_port_url):
    seen = []
    ws = WebSocket(secret_url(closed_port_url), {"headers": HEADERS})
    ws.onerror = seen.append
    ws.onclose = seen.append
    assert ws.wait_closed(timeout=10)
    assert len(seen) == 2
    shown = texts(ws)
    for thing in seen:
        shown += texts(thing)
    assert_no_secret(shown)


@pytest.mark.parametrize(
    "url",
    [
        f"ws://robot:pa#{PASSWORD}@127.0.0.1:1/x",  # an unescaped '#' in the password
        f"ws://robot:pa?{PASSWORD}@127.0.0.1:1/x",
        f"ws://robot:{PASSWORD}@127.0.0.1:1/x#frag",
        f"http://robot:{PASSWORD}@127.0.0.1:1/x?token={QUERY}",  # not ws://
        f"ws://robot:{PASSWORD}@/x?token={QUERY}",  # no host
        f"ws://robot:{PASSWORD}@127.0.0.1:99999/x?token={QUERY}",  # a bad port
    ],
)
def test_an_invalid_url_is_refused_without_its_secrets(url):
    try:
        ws = WebSocket(url)
    except WebSocketError as err:
        assert_no_secret(texts(err))
        return
    # A URL the core takes as it is fails on connecting instead.
    shown = texts(ws)
    for event in drain(ws):
        shown += texts(event)
    assert_no_secret(shown)


@pytest.mark.parametrize(
    "options",
    [
        {"headers": {"Authorization": f"Bearer {BEARER}".encode()}},
        {"headers": [("Cookie", COOKIE.encode())]},
        {"headers": [("Cookie", COOKIE, "x")]},
        {"headers": f"Authorization: Bearer {BEARER}"},
        {"headers": {"Authorization": f"Bearer {BEARER}\r\nX: y"}},
        {"headers": {"Cookie": f"{COOKIE}\n"}},
        {"proxy": f"http://robot:{PROXY_PASSWORD}@127.0.0.1:1".encode()},
        {"proxy": f"http://robot:pa/{PROXY_PASSWORD}@127.0.0.1:1"},
        {"proxy": f"http://robot:pa#{PROXY_PASSWORD}@127.0.0.1:1"},
        {"proxy": f"ftp://robot:{PROXY_PASSWORD}@127.0.0.1:1"},
        {"proxy": f"http://robot:{PROXY_PASSWORD}@127.0.0.1:1/path"},
        {"keydata": [PASSWORD.encode()]},
    ],
)
def test_a_bad_option_is_refused_without_its_secrets(options, closed_port_url):
    with pytest.raises(OptionsError) as raised:
        WebSocket(closed_port_url, options)
    assert_no_secret(texts(raised.value))


def test_a_refused_proxy_shows_no_secret(closed_port_url):
    proxy = closed_port_url.replace("ws://", f"http://robot:{PROXY_PASSWORD}@").rstrip("/")
    ws = WebSocket(secret_url("ws://127.0.0.1:1"), {"proxy": proxy, "headers": HEADERS})
    events = drain(ws)
    assert isinstance(events[0], Error)
    shown = texts(ws)
    for event in events:
        shown += texts(event)
    assert_no_secret(shown)
