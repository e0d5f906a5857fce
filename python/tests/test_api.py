"""The JS attributes and close() validation, the options, and wss:// trust."""

import json
import ssl

import pytest

import nwebsocket
from nwebsocket import Open, WebSocket
from conftest import drain


def open_ws(url, options=None):
    ws = WebSocket(url, options)
    event = ws.recv(timeout=10)
    assert isinstance(event, Open), event
    return ws


def test_constants():
    assert (WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED) == (0, 1, 2, 3)
    assert (nwebsocket.CONNECTING, nwebsocket.CLOSED) == (0, 3)


def test_attributes(server):
    url = server + "/"
    ws = open_ws(url)
    assert ws.url == url
    assert ws.protocol == ""
    assert ws.extensions == ""  # this server has compression off
    assert ws.bufferedAmount == 0
    ws.close()


def test_extensions_report_the_agreed_deflate(servers):
    ws = WebSocket(servers["ws_deflate"] + "/")
    assert ws.extensions == ""  # nothing agreed before the Open
    open_event = ws.recv(timeout=10)
    assert isinstance(open_event, Open)
    # websockets agrees and limits its own window to 12 bits.
    assert ws.extensions.startswith("permessage-deflate")
    assert "server_max_window_bits=12" in ws.extensions
    assert open_event.extensions == ws.extensions
    assert open_event.headers["sec-websocket-extensions"] == ws.extensions
    text = "compressible " * 10_000
    ws.send(text)
    assert ws.recv(timeout=10).data == text
    ws.close()


def test_deflate_off_offers_nothing(servers):
    ws = open_ws(servers["ws_deflate"] + "/headers", {"deflate": False})
    headers = json.loads(ws.recv(timeout=10).data)
    assert "sec-websocket-extensions" not in headers
    assert ws.extensions == ""
    ws.close()


def test_deflate_settings_are_offered(servers):
    options = {
        "deflate": True,
        "deflate_threshold": 0,
        "deflate_client_no_context_takeover": True,
        "deflate_server_no_context_takeover": True,
        "deflate_client_max_window_bits": 10,
        "deflate_server_max_window_bits": 11,
    }
    ws = open_ws(servers["ws_deflate"] + "/headers", options)
    offer = json.loads(ws.recv(timeout=10).data)["sec-websocket-extensions"]
    for term in (
        "client_no_context_takeover",
        "server_no_context_takeover",
        "client_max_window_bits=10",
        "server_max_window_bits=11",
    ):
        assert term in offer
    assert "server_no_context_takeover" in ws.extensions
    ws.send("x")  # under any threshold but 0: compressed all the same
    assert ws.recv(timeout=10).data == "x"
    ws.close()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"deflate_client_max_window_bits": 8}, "deflate_client_max_window_bits must be a number of bits from 9 to 15, not 8"),
        ({"deflate_server_max_window_bits": "12"}, "deflate_server_max_window_bits must be a number of bits from 9 to 15, not '12'"),
        ({"deflate": False, "deflate_threshold": 10}, "deflate_threshold needs deflate on"),
        ({"deflate_threshold": -1}, "deflate_threshold must be a whole number of bytes"),
        ({"deflate": "yes"}, "deflate must be True or False, not 'yes'"),
    ],
)
def test_bad_deflate_settings_name_the_option(options, message):
    with pytest.raises(nwebsocket.OptionsError) as raised:
        WebSocket("ws://127.0.0.1:9/", options)
    assert message in str(raised.value)


def test_send_after_close_raises(server):
    ws = open_ws(server + "/")
    ws.close()
    with pytest.raises(nwebsocket.InvalidStateError) as raised:
        ws.send("too late")
    assert isinstance(raised.value, ConnectionError)


@pytest.mark.parametrize("code", [0, 999, 1001, 1005, 2999, 5000, 65536, -1])
def test_close_code_validation(server, code):
    ws = open_ws(server + "/")
    with pytest.raises(nwebsocket.InvalidAccessError):
        ws.close(code)
    assert ws.readyState == WebSocket.OPEN  # nothing was sent
    ws.close()


def test_close_reason_validation(server):
    ws = open_ws(server + "/")
    with pytest.raises(nwebsocket.DOMSyntaxError):
        ws.close(1000, "é" * 62)  # 124 bytes of UTF-8
    with pytest.raises(TypeError):
        ws.close("1000")
    ws.close(3000, "é" * 61)  # 122 bytes: fine
    assert ws.readyState == WebSocket.CLOSED
    ws.close()  # again: nothing happens


def test_close_reason_reaches_the_server(server):
    ws = open_ws(server + "/")
    ws.close(4321, "because")
    close = drain(ws)[-1]
    assert (close.code, close.reason) == (4321, "because")  # echoed back by the server


def test_invalid_urls_raise_at_once():
    for url in ["http://example.com/", "nonsense", "ws://"]:
        with pytest.raises(nwebsocket.DOMSyntaxError):
            WebSocket(url)


def test_unknown_option_raises(server):
    with pytest.raises(nwebsocket.OptionsError) as raised:
        WebSocket(server + "/", {"maxpayload": 10})
    assert isinstance(raised.value, ValueError)
    assert "maxPayload" in str(raised.value)  # the message lists the valid names
    with pytest.raises(nwebsocket.OptionsError):
        WebSocket(server + "/", {"connect_timeout": -1})
    with pytest.raises(TypeError):
        WebSocket(server + "/", 42)


def test_headers_and_subprotocols(server):
    ws = open_ws(
        server + "/headers",
        {"headers": {"Authorization": "Bearer t0k3n", "X-Trace": "1"}, "subprotocols": ["superchat", "chat"]},
    )
    headers = json.loads(ws.recv(timeout=10).data)
    assert headers["authorization"] == "Bearer t0k3n"
    assert headers["x-trace"] == "1"
    assert headers["sec-websocket-protocol"] == "superchat, chat"
    assert ws.protocol == "superchat"
    ws.close()


def test_js_style_protocols_argument(server):
    ws = open_ws(server + "/", "chat")
    assert ws.protocol == "chat"
    ws.close()


def test_all_options_accepted(server, servers):
    options = {
        "headers": [("X-A", "1"), ("X-A", "2")],
        "subprotocols": "chat",
        "connect_timeout": 5,
        "close_timeout": 2.5,
        "max_message_size": 1 << 20,
        "max_frame_size": 1 << 16,
        "event_queue_capacity": 64,
        "event_queue_bytes": 1 << 20,
        "max_buffered_amount": 1 << 20,
        "tcp_nodelay": True,
        "read_buffer_size": 8192,
        "write_buffer_size": 8192,
        "cafile": servers["cafile"],
        "cadata": open(servers["cafile"]).read(),
        "root_certificates": [],
        "platform_roots": False,
        "certfile": servers["client_cert"],
        "keyfile": servers["client_key"],
        "certdata": None,  # None: the default, for any option
        "keydata": None,
        "danger_accept_invalid_certs": False,
        "ping_interval": 20,
        "dead_peer_timeout": 60,
        "reconnect": True,
        "reconnect_delays": (0.5, 30),
        "reconnect_max_attempts": 10,
        "reconnect_reset_after": 10.0,
        "reconnect_on_clean_close": False,
        "reconnect_on_close_codes": [1012, 1013],
        "offline_sends": "queue",
        "offline_queue_bytes": 1 << 20,
        "proxy": None,
        "proxy_from_env": False,
        "deflate": True,
        "deflate_threshold": 128,
        "deflate_client_no_context_takeover": False,
        "deflate_server_no_context_takeover": False,
        "deflate_client_max_window_bits": 15,
        "deflate_server_max_window_bits": 15,
        "before_each_connect": lambda attempt: None,
        "tcp_keepalive": (60, 10, 5),
        "follow_redirects": 2,
        "happy_eyeballs_delay": 0.3,
        "io_threads": nwebsocket.IoThreads(1),
    }
    assert set(options) | {"maxPayload"} == set(nwebsocket._nwebsocket.OPTIONS)
    ws = open_ws(server + "/", options)
    ws.close()


def test_wss_with_root_certificates(servers):
    with open(servers["cafile"]) as pem:
        der = ssl.PEM_cert_to_DER_cert(pem.read())
    for url in (servers["wss"] + "/", servers["wss_localhost"] + "/"):
        ws = open_ws(url, {"root_certificates": [der]})
        ws.send("secure")
        assert ws.recv(timeout=10).data == "secure"
        ws.close()


def test_context_manager_closes(server):
    with WebSocket(server + "/") as ws:
        assert isinstance(ws.recv(timeout=10), Open)
    assert ws.readyState == WebSocket.CLOSED


def test_try_recv_never_blocks(server):
    ws = WebSocket(server + "/")
    polls = 0
    event = None
    while event is None and polls < 10_000_000:
        event = ws.try_recv()
        polls += 1
    assert isinstance(event, Open)
    assert ws.try_recv() is None
    ws.close()
    assert type(ws.try_recv()).__name__ == "Close"  # close() waited: the Close is queued
    with pytest.raises(nwebsocket.StreamEndedError):
        ws.try_recv()


def test_event_reprs(server):
    ws = WebSocket(server + "/")
    assert repr(ws.recv(timeout=10)) == "Open(protocol='', extensions='')"
    ws.send("hi")
    assert repr(ws.recv(timeout=10)) == "Message(data='hi')"
    ws.send(b"\x00" * 100)
    assert repr(ws.recv(timeout=10)) == "Message(data=b'" + "\\x00" * 64 + "'..., 100 bytes)"
    ws.close()
    assert repr(ws.recv(timeout=10)) == "Close(code=1000, reason='', was_clean=True)"


def test_bad_option_values_raise(server, tmp_path):
    url = server + "/"
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    bad = [
        {"cafile": str(tmp_path / "missing.pem")},
        {"cafile": str(empty)},
        {"spin_wait": 0},  # gone: waits never spin
        {"cadata": "no certificate here"},
        {"max_message_size": 0},
        {"maxPayload": 10, "max_message_size": 10},
        {"headers": {"Host": "elsewhere"}},
        {"subprotocols": ["not a token"]},
        {"max_message_size": 100, "max_frame_size": 200},
    ]
    for options in bad:
        with pytest.raises(nwebsocket.OptionsError):
            WebSocket(url, options)
    with pytest.raises(TypeError):
        WebSocket(url, {"root_certificates": ["not bytes"]})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"connect_timeout": "x"}, "connect_timeout must be a number of seconds, not 'x'"),
        ({"connect_timeout": True}, "connect_timeout must be a number of seconds, not True"),
        ({"close_timeout": -1}, "close_timeout must be a positive number of seconds, not -1"),
        ({"max_message_size": 1.5}, "max_message_size must be a positive whole number, not 1.5"),
        ({"event_queue_capacity": "64"}, "event_queue_capacity must be a positive whole number, not '64'"),
        ({"max_buffered_amount": 0}, "max_buffered_amount must be a positive whole number, not 0"),
        ({"event_queue_bytes": 1.5}, "event_queue_bytes must be a positive whole number, not 1.5"),
        ({"tcp_nodelay": 1}, "tcp_nodelay must be True or False, not 1"),
        ({"cafile": 3}, "cafile must be a path (str or os.PathLike), not 3"),
        ({"certdata": 3}, "certdata must be PEM text, as str or bytes, not 3"),
        ({"root_certificates": ["not bytes"]}, "root_certificates must be an iterable of DER-encoded certificates (bytes), not 'not bytes'"),
        ({"subprotocols": [1]}, "subprotocols must be a str or a list of str, not 1"),
        ({"headers": {"X-A": 1}}, "headers must be a dict of str to str, or (name, value) pairs of str, not a value of type tuple (not shown: it may hold a secret)"),
        ({"reconnect": True, "reconnect_delays": 5}, "reconnect_delays must be a pair of seconds: (initial, max), not 5"),
        ({"reconnect": True, "reconnect_delays": (1, "x")}, "reconnect_delays[1] must be a number of seconds, not 'x'"),
        ({"reconnect": True, "reconnect_on_close_codes": "1012"}, "reconnect_on_close_codes must be a close code (int) or a list of them, not '1012'"),
        ({"offline_sends": "drop"}, "offline_sends must be \"queue\" or \"fail\", not 'drop'"),
        ({"proxy": 3128}, "proxy must be a URL (str), or False for none, not a value of type int (not shown: it may hold a secret)"),
        ({3: 4}, "an option name must be a str, not 3"),
    ],
)
def test_bad_option_types_name_the_option_and_what_it_expected(options, message):
    with pytest.raises(nwebsocket.OptionsError) as raised:
        WebSocket("ws://127.0.0.1:9/", options)
    assert str(raised.value) == message
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, ValueError)


def test_options_that_are_not_a_dict():
    with pytest.raises(nwebsocket.OptionsError, match="options must be a dict \\(or None\\), not 42"):
        WebSocket("ws://127.0.0.1:9/", 42)
