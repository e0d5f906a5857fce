"""Proxies: through an HTTP CONNECT proxy and a SOCKS5 proxy written in the tests (local.py),
with and without credentials, for ws:// and wss://; the proxy's refusals as exceptions with
attributes; the proxy from the environment, and proxy_from_env=False."""

import base64

import pytest

import nwebsocket
from nwebsocket import Close, Error, Message, Open, WebSocket
from conftest import drain
from local import ConnectProxy, Socks5Proxy, free_port


@pytest.fixture
def http_proxy():
    proxy = ConnectProxy()
    yield proxy
    proxy.stop()


def echoes(url, options):
    ws = WebSocket(url, options)
    assert isinstance(ws.recv(timeout=10), Open)
    ws.send("through the proxy")
    message = ws.recv(timeout=10)
    assert isinstance(message, Message) and message.data == "through the proxy"
    ws.close()


def host_port(url):
    return url.split("://", 1)[1].rstrip("/")


def test_ws_through_an_http_connect_proxy(server, http_proxy):
    echoes(server + "/", {"proxy": http_proxy.url})
    target, headers = http_proxy.requests.get_nowait()
    assert target == host_port(server)
    assert "proxy-authorization" not in headers


def test_wss_through_the_tunnel_verifies_the_server_end_to_end(servers, http_proxy):
    echoes(servers["wss"] + "/", {"proxy": http_proxy.url, "cafile": servers["cafile"]})
    assert http_proxy.requests.get_nowait()[0] == host_port(servers["wss"])


def test_http_proxy_credentials_are_sent_percent_decoded(server):
    proxy = ConnectProxy(credentials=("robot", "p@ss:word"))
    try:
        url = f"http://robot:p%40ss%3Aword@127.0.0.1:{proxy.port}"
        echoes(server + "/", {"proxy": url})
        _, headers = proxy.requests.get_nowait()
        expected = base64.b64encode(b"robot:p@ss:word").decode()
        assert headers["proxy-authorization"] == "Basic " + expected
    finally:
        proxy.stop()


def test_a_refused_tunnel_is_proxy_rejected_error_with_status_and_headers(server):
    proxy = ConnectProxy(credentials=("robot", "secret"))
    try:
        url = f"http://robot:wrong@127.0.0.1:{proxy.port}"
        error, close = drain(WebSocket(server + "/", {"proxy": url}))
        assert isinstance(error, Error) and isinstance(close, Close)
        exc = error.error
        assert isinstance(exc, nwebsocket.ProxyRejectedError)
        assert isinstance(exc, nwebsocket.ProxyError) and isinstance(exc, ConnectionError)
        assert (exc.kind, exc.status) == ("rejected", 407)
        assert exc.headers["proxy-authenticate"] == 'Basic realm="tests"'
        assert "wrong" not in str(exc)  # never the credentials
    finally:
        proxy.stop()


def test_a_tunnel_to_nowhere_is_502(http_proxy):
    error, _ = drain(WebSocket(f"ws://127.0.0.1:{free_port()}/", {"proxy": http_proxy.url}))
    assert error.error.status == 502


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks5_with_credentials(server, scheme):
    proxy = Socks5Proxy(credentials=("robot", "s3cret"))
    try:
        url = f"{scheme}://robot:s3cret@127.0.0.1:{proxy.port}"
        port = int(server.rsplit(":", 1)[1])
        echoes(f"ws://localhost:{port}/", {"proxy": url})
        host, got_port, credentials = proxy.requests.get_nowait()
        # socks5h: the proxy resolves the name; socks5: we do, and send an address.
        assert host == ("localhost" if scheme == "socks5h" else "127.0.0.1")
        assert (got_port, credentials) == (port, ("robot", "s3cret"))
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("proxy_url", "kind"),
    [
        ("socks5://robot:wrong@127.0.0.1:{port}", "auth_failed"),
        ("socks5://127.0.0.1:{port}", "auth_required"),
    ],
)
def test_socks5_refusals_have_a_kind(server, proxy_url, kind):
    proxy = Socks5Proxy(credentials=("robot", "s3cret"))
    try:
        error, close = drain(WebSocket(server + "/", {"proxy": proxy_url.format(port=proxy.port)}))
        assert isinstance(error.error, nwebsocket.ProxyError)
        assert not isinstance(error.error, nwebsocket.ProxyRejectedError)
        assert error.error.kind == kind
        assert not close.wasClean
    finally:
        proxy.stop()


def test_socks5_reply_codes_have_a_kind():
    proxy = Socks5Proxy()
    try:
        error, _ = drain(WebSocket(f"ws://127.0.0.1:{free_port()}/", {"proxy": proxy.url}))
        assert error.error.kind == "connection_refused"  # reply 5
        assert error.error.reply is None
    finally:
        proxy.stop()


def test_a_proxy_that_is_not_there_is_connect_failed():
    error, _ = drain(WebSocket("ws://127.0.0.1:9/", {"proxy": f"http://127.0.0.1:{free_port()}"}))
    assert isinstance(error.error, nwebsocket.ConnectFailedError)


def test_the_environment_names_the_proxy_unless_told_not_to(server, http_proxy, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", http_proxy.url)
    echoes(server + "/", None)
    assert http_proxy.requests.get_nowait()[0] == host_port(server)

    echoes(server + "/", {"proxy_from_env": False})
    assert http_proxy.requests.empty()

    monkeypatch.setenv("no_proxy", "127.0.0.1")
    echoes(server + "/", None)
    assert http_proxy.requests.empty()


def test_proxy_false_goes_direct_whatever_the_environment(server, http_proxy, monkeypatch):
    monkeypatch.setenv("http_proxy", http_proxy.url)
    monkeypatch.setenv("all_proxy", http_proxy.url)
    echoes(server + "/", {"proxy": False})
    assert http_proxy.requests.empty()
    with pytest.raises(nwebsocket.OptionsError, match="contradicts proxy_from_env"):
        WebSocket(server + "/", {"proxy": False, "proxy_from_env": True})
    with pytest.raises(nwebsocket.OptionsError, match="proxy must be a URL"):
        WebSocket(server + "/", {"proxy": True})


@pytest.mark.parametrize(
    "options",
    [
        {"proxy": "https://127.0.0.1:3128"},
        {"proxy": "socks4://127.0.0.1"},
        {"proxy": "http://127.0.0.1:3128/path"},
    ],
)
def test_bad_proxy_urls_are_refused(options):
    with pytest.raises(nwebsocket.OptionsError):
        WebSocket("ws://127.0.0.1:9/", options)


def test_the_message_never_quotes_proxy_credentials():
    with pytest.raises(nwebsocket.OptionsError) as raised:
        WebSocket("ws://127.0.0.1:9/", {"proxy": "ftp://robot:hunter2@proxy"})
    assert "hunter2" not in str(raised.value)


def test_proxy_must_be_a_string():
    with pytest.raises(TypeError):
        WebSocket("ws://127.0.0.1:9/", {"proxy": 3128})
