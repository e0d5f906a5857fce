"""Local servers for the tests, run in a process of their own (so that their threads never
show up in the tests' thread counts).

Prints one JSON line with the ports, then serves until its standard input closes:

- ``ws``: a ``websockets`` sync server on 127.0.0.1, routed by path:
  ``/`` echoes every message, except the text commands ``__ping__`` (the server pings) and
  ``__close__`` (the server closes with 1000); ``/reject`` answers HTTP 403;
  ``/close/<code>`` closes with that code and reason ``bye`` right after the handshake;
  ``/headers`` sends the request headers as JSON, then echoes; ``/flood/<n>/<size>`` sends ``n`` text messages ``<i>:<padding to size>`` then closes.
- ``ws_deflate``: the same, agreeing to permessage-deflate (``websockets``' defaults: it
  asks for ``server_max_window_bits=12``).
- ``wss``: the same handler over TLS, with a certificate for 127.0.0.1 and localhost from a
  CA generated here (``cafile``: its PEM).
- ``wss_wrong_name``, ``wss_expired``: the same over TLS, with certificates from that CA that
  are for another host (``elsewhere.test``), and expired.
- ``wss_mtls``: the same over TLS, requiring a client certificate from that CA (mutual TLS);
  ``/peer`` sends the client certificate's common name, then echoes. The client's materials:
  ``client_cert`` (PEM certificate), ``client_key`` (PEM key), ``client_combined`` (both in
  one file), and ``foreign_cert``/``foreign_key`` (a client certificate from another CA).
- ``silent``: a TCP server that accepts and never answers.
- ``raw``: completes the WebSocket handshake by hand (no library thread holds the socket), then
  by path: ``/reset`` resets the TCP connection (RST, no close frame) once the client has sent
  something; any other path never reads or writes again (so it never answers a close frame).
"""

import base64
import datetime
import hashlib
import json
import logging
import os
import socket
import ssl
import struct
import sys
import tempfile
import threading

import trustme
from websockets.sync.server import serve


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handler(ws):
    path = ws.request.path
    if path.startswith("/close/"):
        ws.close(int(path.split("/")[2]), "bye")
        return
    if path.startswith("/flood/"):
        _, _, count, size = path.split("/")
        for i in range(int(count)):
            head = f"{i}:"
            ws.send(head + "x" * max(0, int(size) - len(head)))
        ws.close()
        return
    if path == "/peer":
        subject = dict(pair[0] for pair in ws.socket.getpeercert()["subject"])
        ws.send(subject["commonName"])
    if path == "/headers":
        ws.send(json.dumps({k.lower(): v for k, v in ws.request.headers.raw_items()}))
    for message in ws:
        if message == "__ping__":
            ws.ping(b"seed")
        elif message == "__close__":
            ws.close(1000, "server closes")
            return
        else:
            ws.send(message)


def process_request(ws, request):
    if request.path.split("?")[0] == "/reject":
        response = ws.respond(403, "go away\n")
        response.headers["Retry-After"] = "7"
        response.headers["X-Reason"] = "one"
        response.headers["X-Reason"] = "two"  # a repeated header
        return response
    return None


def select_subprotocol(ws, offered):
    """Picks the first of "chat" and "superchat" that the client offers; none is fine too."""
    return next((p for p in offered if p in ("chat", "superchat")), None)


def start(compression=None, **kwargs):
    server = serve(
        handler,
        "127.0.0.1",
        0,
        process_request=process_request,
        compression=compression,
        select_subprotocol=select_subprotocol,
        max_size=None,
        ping_interval=None,
        **kwargs,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.socket.getsockname()[1]


def silent():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            conn, _ = listener.accept()
            accepted.append(conn)  # kept open, never answered

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def raw():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def handshake(conn):
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return
            request += chunk
        path = request.split(b" ", 2)[1]
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        if path == b"/reset":
            conn.recv(1)  # the client is past the handshake
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # with linger 0: RST
            return
        accepted.append(conn)  # kept open, never read again

    def serve():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handshake, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def tls_context(cert):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return context


def main():
    # Handlers that end by an exception (a reset, a peer that went away) are expected here.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    folder = tempfile.mkdtemp(prefix="nwebsocket-tests-")
    files = {}

    def write(name, blob):
        files[name] = os.path.join(folder, name)
        blob.write_to_path(files[name])

    ca = trustme.CA()
    write("cafile", ca.cert_pem)
    secure = tls_context(ca.issue_cert("127.0.0.1", "localhost"))
    wrong_name = tls_context(ca.issue_cert("elsewhere.test"))
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = tls_context(
        ca.issue_cert(
            "127.0.0.1",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )
    )
    mutual = tls_context(ca.issue_cert("127.0.0.1", "localhost"))
    mutual.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(mutual)
    client = ca.issue_cert("robot-7.example.test", common_name="robot-7")
    write("client_cert", client.cert_chain_pems[0])
    write("client_key", client.private_key_pem)
    write("client_combined", client.private_key_and_cert_chain_pem)
    foreign = trustme.CA().issue_cert("intruder.example.test", common_name="intruder")
    write("foreign_cert", foreign.cert_chain_pems[0])
    write("foreign_key", foreign.private_key_pem)

    ports = {
        "ws": start(),
        "ws_deflate": start(compression="deflate"),
        "wss": start(ssl=secure),
        "wss_wrong_name": start(ssl=wrong_name),
        "wss_expired": start(ssl=expired),
        "wss_mtls": start(ssl=mutual),
        "silent": silent(),
        "raw": raw(),
        **files,
    }
    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # until the tests close our stdin


if __name__ == "__main__":
    main()
