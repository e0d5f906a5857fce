"""The ``before_each_connect`` option: a callable called before every connection attempt for
that attempt's URL and headers (fresh credentials on each reconnect), its failures, and the
other connect-path options of the core (``tcp_keepalive``, ``follow_redirects``,
``happy_eyeballs_delay``)."""

import os
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.sync.server import serve

from nwebsocket import (
    AbortedError,
    Close,
    ConnectHookError,
    Error,
    HandshakeRejectedError,
    Message,
    Open,
    OptionsError,
    RedirectError,
    WebSocket,
)

from conftest import drain as drain_events
from conftest import wait_for


def drain(ws, timeout=30.0):
    """Every event up to the Close, and then the end of the I/O thread (later tests count
    threads)."""
    events = drain_events(ws, timeout=timeout)
    assert ws.wait_closed(timeout=10)
    return events



def thread_names():
    """The OS names of this process's threads."""
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                names.append(comm.read().strip())
        except OSError:
            pass  # the thread ended meanwhile
    return names

JOIN = 5.0


class TokenServer:
    """Accepts each token (``Authorization: Bearer <token>`` or ``?token=<token>``) once and
    answers a replayed or missing one with 401. A connection it accepts gets ``welcome
    <token>``, then a close 1012 (service restart), after which the client reconnects.
    ``/redirect`` answers 302 to ``/`` of the same server, ``/loop`` 302 to itself."""

    def __init__(self):
        self.accepted = []
        self.refused = []
        self._handlers = []
        self._lock = threading.Lock()
        self._server = serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._check,
            compression=None,
            ping_interval=None,
        )
        self.port = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def _token(request):
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer "):]
        return parse_qs(urlsplit(request.path).query).get("token", [None])[0]

    def _check(self, ws, request):
        if request.path.startswith("/loop"):
            response = ws.respond(302, "")
            response.headers["Location"] = "/loop"
            return response
        if request.path.startswith("/redirect"):
            response = ws.respond(302, "")
            response.headers["Location"] = "/"
            return response
        token = self._token(request)
        with self._lock:
            if token is None or token in self.accepted:
                self.refused.append(token)
                return ws.respond(401, "token used or missing\n")
            self.accepted.append(token)
        return None

    def _handler(self, ws):
        with self._lock:
            self._handlers.append(threading.current_thread())
        ws.send(f"welcome {self._token(ws.request)}")
        ws.close(1012, "restart")

    def stop(self):
        """Stops listening and waits for every connection's thread: later tests count
        threads."""
        self._server.shutdown()
        self._thread.join(JOIN)
        with self._lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(JOIN)


@pytest.fixture
def token_server():
    server = TokenServer()
    yield server
    server.stop()


RECONNECTING = {
    "reconnect": True,
    "reconnect_on_close_codes": [1012],
    "reconnect_delays": (0.01, 0.05),
}


def until_final(ws):
    """Every event up to the last Close (each waited for at most 10 s), and the end of the
    I/O thread."""
    events = []
    while not events or not (isinstance(events[-1], Close) and events[-1].is_final):
        events.append(ws.recv(timeout=10))
    assert ws.wait_closed(timeout=10)
    return events


def opens_and_welcomes(ws, opens):
    """Events until the `opens`-th Open's welcome; then closes and takes the rest, up to the
    last Close."""
    welcomes, events = [], []
    while len(welcomes) < opens:
        event = ws.recv(timeout=10)
        events.append(event)
        assert not isinstance(event, Error), event
        if isinstance(event, Message):
            welcomes.append(event.data)
    ws.close()
    # The server's 1012 may come before our close: then its Close announces an attempt that
    # close() cancels, and the last Close follows.
    events += until_final(ws)
    return welcomes, events


def test_a_fresh_header_token_for_each_of_three_reconnects(token_server):
    calls = []

    def fresh_token(attempt):
        calls.append((attempt, threading.current_thread().name))
        return None, {"Authorization": f"Bearer t{len(calls)}"}

    ws = WebSocket(token_server.url, {**RECONNECTING, "before_each_connect": fresh_token})
    welcomes, events = opens_and_welcomes(ws, 4)
    assert welcomes == ["welcome t1", "welcome t2", "welcome t3", "welcome t4"]
    assert token_server.accepted == ["t1", "t2", "t3", "t4"]
    assert token_server.refused == []
    assert sum(isinstance(e, Open) for e in events) == 4
    # The hook gets the attempt number that the Close before it announced (0 first; the
    # connections were too short for reconnect_reset_after to start the count over).
    announced = [e.attempt for e in events if isinstance(e, Close) and not e.is_final]
    assert [attempt for attempt, _ in calls] == [0] + announced[:3] == [0, 1, 2, 3]
    # Not on the caller's thread: on the core's short-lived hook thread.
    assert all(name != threading.current_thread().name for _, name in calls)
    assert isinstance(events[-1], Close) and events[-1].is_final


def test_a_fresh_url_for_each_reconnect(token_server):
    tokens = iter(["u1", "u2", "u3", "u4"])
    ws = WebSocket(
        token_server.url,  # without a token: refused unless the hook's URL is used
        {**RECONNECTING, "before_each_connect": lambda _: f"{token_server.url}?token={next(tokens)}"},
    )
    welcomes, _ = opens_and_welcomes(ws, 4)
    assert welcomes == ["welcome u1", "welcome u2", "welcome u3", "welcome u4"]
    assert ws.url == token_server.url  # the URL given, as the core's Client::url


def test_without_the_hook_a_replayed_token_is_refused(token_server):
    # The server is built to break a client that replays its token: the proof that the
    # tests above need the hook.
    ws = WebSocket(
        token_server.url,
        {**RECONNECTING, "headers": {"Authorization": "Bearer same"}, "reconnect_max_attempts": 2},
    )
    events = []
    events = until_final(ws)
    rejected = [e for e in events if isinstance(e, Error)]
    assert rejected and isinstance(rejected[0].error, HandshakeRejectedError)
    assert rejected[0].error.status == 401
    assert token_server.accepted == ["same"]


def test_an_exception_in_the_hook_ends_reconnecting_with_it_as_the_cause(token_server):
    def hook(attempt):
        if attempt:
            raise ValueError("the auth server is down")
        return None, [("Authorization", "Bearer first")]

    ws = WebSocket(token_server.url, {**RECONNECTING, "before_each_connect": hook})
    events = until_final(ws)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Open", "Message", "Close", "Error", "Close"], kinds
    assert events[2].reconnect is not None  # the 1012 announced another attempt
    error = events[3].error
    assert isinstance(error, ConnectHookError)
    assert "ValueError: the auth server is down" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert events[4].is_final and events[4].code == 1006
    assert ws.readyState == WebSocket.CLOSED


@pytest.mark.parametrize(
    ("result", "says"),
    [
        (42, "not a value of type int"),
        (("ws://127.0.0.1:1/", {"Authorization": b"Bearer x"}), "headers"),
        ((b"ws://127.0.0.1:1/", None), "url must be a str"),
        (("http://127.0.0.1:1/", None), "hook failed"),
        ((None, {"Bad Name": "x"}), "hook failed"),
    ],
)
def test_a_hook_result_that_does_not_fit_is_a_clear_error(token_server, result, says):
    ws = WebSocket(token_server.url, {"before_each_connect": lambda _: result})
    events = drain(ws, timeout=10)
    assert [type(e).__name__ for e in events] == ["Error", "Close"]
    assert isinstance(events[0].error, ConnectHookError)
    assert says in events[0].message, events[0].message


def test_close_does_not_wait_for_a_slow_hook(token_server):
    started, release = threading.Event(), threading.Event()

    def slow(_attempt):
        started.set()
        release.wait(10)
        return None

    ws = WebSocket(token_server.url, {"before_each_connect": slow})
    assert started.wait(10)
    begun = time.monotonic()
    ws.close()
    took = time.monotonic() - begun
    release.set()
    events = drain(ws, timeout=10)
    # The hook's thread ends once the hook has returned; later tests count threads.
    assert wait_for(lambda: "nwebsocket-hook" not in thread_names(), timeout=10)
    assert took < 2.0, took
    assert isinstance(events[0], Error) and isinstance(events[0].error, AbortedError)
    assert token_server.accepted == []


def test_the_hook_must_be_callable(token_server):
    with pytest.raises(OptionsError, match="before_each_connect must be a callable"):
        WebSocket(token_server.url, {"before_each_connect": "Bearer x"})


def test_follow_redirects_follows_and_off_by_default_rejects(token_server):
    base = token_server.url
    ws = WebSocket(base + "redirect", {"follow_redirects": 2, "headers": {"X-Token": "r1"}})
    # X-Token is not a credential the redirect policy knows; the server wants Bearer/query.
    events = drain(ws, timeout=10)
    assert isinstance(events[0], Error) and events[0].error.status == 401  # followed to /
    ws = WebSocket(base + "redirect?token=r2")
    events = drain(ws, timeout=10)
    assert isinstance(events[0].error, HandshakeRejectedError)
    assert events[0].error.status == 302
    assert events[0].error.headers["location"] == "/"


def test_a_redirect_with_credentials_is_followed_on_the_same_host(token_server):
    ws = WebSocket(
        token_server.url + "redirect",
        {"follow_redirects": 1, "headers": {"Authorization": "Bearer r3"}},
    )
    event = ws.recv(timeout=10)
    assert isinstance(event, Open), event
    assert ws.recv(timeout=10) == Message("welcome r3")
    ws.close()
    assert token_server.accepted == ["r3"]


def test_one_redirect_too_many_is_a_redirect_error(token_server):
    ws = WebSocket(token_server.url + "loop", {"follow_redirects": 2})
    events = drain(ws, timeout=10)
    assert isinstance(events[0].error, RedirectError), events
    assert events[-1].code == 1006


def test_tcp_keepalive_and_happy_eyeballs_delay_are_taken_and_checked(token_server):
    ws = WebSocket(
        token_server.url + "?token=k1",
        {"tcp_keepalive": (30, 10, 3), "happy_eyeballs_delay": 0.1},
    )
    assert isinstance(ws.recv(timeout=10), Open)
    ws.close()
    for bad, says in [
        ({"tcp_keepalive": (30, 10)}, "tcp_keepalive must be a tuple"),
        ({"tcp_keepalive": (0, 10, 3)}, "tcp_keepalive[0] must be a positive number"),
        ({"tcp_keepalive": (30, 10, 0)}, "tcp_keepalive[2] must be a positive whole number"),
        ({"happy_eyeballs_delay": 0.001}, "happy_eyeballs_delay"),
        ({"happy_eyeballs_delay": "x"}, "happy_eyeballs_delay must be a number of seconds"),
        ({"follow_redirects": -1}, "follow_redirects must be a whole number"),
    ]:
        with pytest.raises(OptionsError) as raised:
            WebSocket(token_server.url, bad)
        assert says in str(raised.value), str(raised.value)


def test_the_hook_is_released_when_the_connection_is_over(token_server):
    import gc
    import weakref

    class Hook:
        def __init__(self):
            self.ws = None

        def __call__(self, _attempt):
            return f"{token_server.url}?token=w1"

    hook = Hook()
    ws = WebSocket(token_server.url, {"before_each_connect": hook})
    hook.ws = ws  # a cycle through the core's config
    gone = weakref.ref(hook)
    del hook
    assert isinstance(ws.recv(timeout=10), Open)
    ws.close()
    assert ws.wait_closed(timeout=10)
    del ws
    gc.collect()
    assert gone() is None
