"""wss:// trust and mutual TLS through the options (against local servers whose certificates
come from a trustme CA), and the TLSError kinds of each failure."""

import ssl

import pytest

import nwebsocket
from nwebsocket import Close, Error, Open, WebSocket


def first_events(url, options=None):
    """The connection's events up to the first Open or Close (every wait bounded)."""
    ws = WebSocket(url, options)
    events = [ws.recv(timeout=15)]
    while not isinstance(events[-1], (Open, Close)):
        events.append(ws.recv(timeout=15))
    return ws, events


def echoes(url, options, text="secure"):
    ws, events = first_events(url, options)
    assert isinstance(events[0], Open), events
    ws.send(text)
    reply = ws.recv(timeout=10).data
    ws.close()
    return reply


def tls_error(url, options=None):
    ws, events = first_events(url, options)
    assert [type(e).__name__ for e in events] == ["Error", "Close"], events
    error = events[0].error
    assert isinstance(error, nwebsocket.TLSError) and isinstance(error, ConnectionError)
    return error


def read(path):
    with open(path, "rb") as f:
        return f.read()


# Trust: cafile, cadata, root_certificates, platform_roots.


def test_cafile(servers):
    for url in (servers["wss"], servers["wss_localhost"]):
        assert echoes(url + "/", {"cafile": servers["cafile"]}) == "secure"


def test_cafile_as_path_object(servers):
    import pathlib

    assert echoes(servers["wss"] + "/", {"cafile": pathlib.Path(servers["cafile"])}) == "secure"


def test_cadata_as_str_pem_bytes_and_der(servers):
    pem = read(servers["cafile"])
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    for cadata in (pem.decode(), pem, der):
        assert echoes(servers["wss"] + "/", {"cadata": cadata}) == "secure"


def test_platform_roots_off_with_a_private_ca(servers):
    options = {"cafile": servers["cafile"], "platform_roots": False}
    assert echoes(servers["wss"] + "/", options) == "secure"


def test_platform_roots_off_alone_is_refused(servers):
    with pytest.raises(nwebsocket.OptionsError):
        WebSocket(servers["wss"] + "/", {"platform_roots": False})


def test_danger_accept_invalid_certs(servers):
    options = {"danger_accept_invalid_certs": True}
    assert echoes(servers["wss"] + "/", options) == "secure"  # untrusted CA
    assert echoes(servers["wss_wrong_name"] + "/", options) == "secure"
    assert echoes(servers["wss_expired"] + "/", options) == "secure"


def test_danger_accept_invalid_certs_with_roots_is_refused(servers):
    for roots in ({"cafile": servers["cafile"]}, {"platform_roots": True}):
        with pytest.raises(nwebsocket.OptionsError):
            WebSocket(servers["wss"] + "/", {"danger_accept_invalid_certs": True, **roots})
    # False is the default, and combines with anything.
    options = {"danger_accept_invalid_certs": False, "cafile": servers["cafile"]}
    assert echoes(servers["wss"] + "/", options) == "secure"


# The kinds of TLSError.


def test_unknown_issuer(servers):
    error = tls_error(servers["wss"] + "/")
    assert error.kind == "unknown_issuer"
    assert error.alert is None


def test_unknown_issuer_with_platform_roots_off(servers):
    # Trusting only another CA: the server's is unknown.
    error = tls_error(servers["wss"] + "/", {"cafile": servers["foreign_cert"], "platform_roots": False})
    assert error.kind == "unknown_issuer"


def test_wrong_name(servers):
    error = tls_error(servers["wss_wrong_name"] + "/", {"cafile": servers["cafile"]})
    assert error.kind == "wrong_name"


def test_expired(servers):
    error = tls_error(servers["wss_expired"] + "/", {"cafile": servers["cafile"]})
    assert error.kind == "expired"


def test_not_tls_at_all(server):
    # A ws:// server behind a wss:// URL: the handshake fails, kind "other".
    error = tls_error(server.replace("ws://", "wss://") + "/")
    assert error.kind == "other"


# Mutual TLS: certfile/keyfile, certdata/keydata.


def test_mutual_tls_without_a_client_certificate(servers):
    error = tls_error(servers["wss_mtls"] + "/", {"cafile": servers["cafile"]})
    assert error.kind == "certificate_required"


def test_mutual_tls_with_certfile_and_keyfile(servers):
    options = {
        "cafile": servers["cafile"],
        "certfile": servers["client_cert"],
        "keyfile": servers["client_key"],
    }
    assert echoes(servers["wss_mtls"] + "/peer", options) == "robot-7"  # the server saw us


def test_mutual_tls_with_the_key_in_the_certfile(servers):
    options = {"cafile": servers["cafile"], "certfile": servers["client_combined"]}
    assert echoes(servers["wss_mtls"] + "/peer", options) == "robot-7"


def test_mutual_tls_with_certdata_and_keydata(servers):
    options = {
        "cadata": read(servers["cafile"]),
        "certdata": read(servers["client_cert"]),
        "keydata": read(servers["client_key"]).decode(),  # str works too
    }
    assert echoes(servers["wss_mtls"] + "/peer", options) == "robot-7"
    combined = {"cafile": servers["cafile"], "certdata": read(servers["client_combined"])}
    assert echoes(servers["wss_mtls"] + "/peer", combined) == "robot-7"


def test_mutual_tls_with_a_certificate_from_another_ca(servers):
    options = {
        "cafile": servers["cafile"],
        "certfile": servers["foreign_cert"],
        "keyfile": servers["foreign_key"],
    }
    error = tls_error(servers["wss_mtls"] + "/", options)
    assert error.kind == "alert"
    assert error.alert == 48  # unknown_ca


def test_mutual_tls_options_are_validated(servers, tmp_path):
    url = servers["wss_mtls"] + "/"
    cert, key = servers["client_cert"], servers["client_key"]
    bad = [
        {"keyfile": key},  # no certfile
        {"keydata": read(key)},  # no certdata
        {"certfile": cert, "certdata": read(cert)},  # both forms
        {"certfile": cert, "keydata": read(key)},  # one of each
        {"certdata": read(cert), "keyfile": key},
        {"certfile": cert},  # no key in it
        {"certfile": cert, "keyfile": servers["foreign_key"]},  # not its key
        {"certfile": str(tmp_path / "missing.pem"), "keyfile": key},
        {"certdata": b"not PEM", "keydata": read(key)},
    ]
    for options in bad:
        with pytest.raises(nwebsocket.OptionsError):
            WebSocket(url, options)
    for options in ({"certfile": 42}, {"certdata": 42}, {"danger_accept_invalid_certs": "yes"}):
        with pytest.raises(TypeError):
            WebSocket(url, options)
