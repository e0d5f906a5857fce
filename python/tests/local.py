"""Servers that the staying-connected and proxy tests start in this process, on 127.0.0.1:

- ``Restartable``: a ``websockets`` echo server on a fixed port, stopped (its connections
  dropped without a close frame) and started again on the same port;
- ``PingCounter``: completes the handshake by hand, then counts the client's pings (and answers
  each with a pong) and answers a close frame;
- ``Forwarder``: a TCP forwarder to another server that can turn into a black hole (it stops
  passing bytes either way, without closing anything), as a link that died silently;
- ``ConnectProxy`` and ``Socks5Proxy``: an HTTP CONNECT proxy and a SOCKS5 proxy, with
  optional credentials, that record what they were asked.

Every server ends its threads in ``stop()``.
"""

import base64
import hashlib
import queue
import socket
import struct
import threading

from websockets.sync.server import serve

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
JOIN = 5.0


def free_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def _start(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class Restartable:
    """An echo server; the text ``close:<code>`` makes it close cleanly with that code.

    ``stop()`` drops the connections whose handler runs: a client may see its ``Open`` just
    before that, so tests exchange a message first."""

    def __init__(self):
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self._server = None
        self._threads = []
        self._connections = set()
        self._lock = threading.Lock()

    def _handler(self, ws):
        with self._lock:
            self._connections.add(ws)
            self._threads.append(threading.current_thread())
        try:
            for message in ws:
                if isinstance(message, str) and message.startswith("close:"):
                    ws.close(int(message.split(":")[1]), "restart")
                    return
                ws.send(message)
        except Exception:  # noqa: BLE001 - the connection was dropped by stop()
            pass
        finally:
            with self._lock:
                self._connections.discard(ws)

    def start(self):
        self._server = serve(
            self._handler, "127.0.0.1", self.port, compression=None, ping_interval=None
        )
        self._threads.append(_start(self._server.serve_forever))

    def stop(self):
        """Drops every connection without a close frame, and stops listening."""
        with self._lock:
            connections = list(self._connections)
        # Before shutdown(), which would close them cleanly (1001). Only shut down: the
        # library's thread, in select() on the socket, sees EOF and closes it itself.
        for ws in connections:
            try:
                ws.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.shutdown()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(JOIN)
        self._threads = []


def _handshake(conn):
    """Reads the upgrade request and answers 101; the request's path, or None."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        request += chunk
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
    return request.split(b" ", 2)[1]


def _read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _read_frame(conn):
    """One client frame: (opcode, unmasked payload)."""
    first, second = _read_exactly(conn, 2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", _read_exactly(conn, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _read_exactly(conn, 8))
    mask = _read_exactly(conn, 4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(_read_exactly(conn, length)))
    return first & 0x0F, payload


def _frame(opcode, payload):
    """A server frame (unmasked, payload under 126 bytes)."""
    return bytes([0x80 | opcode, len(payload)]) + payload


class PingCounter:
    """Answers the handshake, then each ping with a pong; ``pings`` holds the time of each ping
    (``time.monotonic()``) and ``seen(n)`` waits until n have come."""

    def __init__(self, clock):
        self._clock = clock
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self._listener.getsockname()[1]}/"
        self.pings = []
        self._changed = threading.Condition()
        self._thread = _start(self._serve)

    def _serve(self):
        conn, _ = self._listener.accept()
        with conn:
            _handshake(conn)
            try:
                while True:
                    opcode, payload = _read_frame(conn)
                    if opcode == 0x9:
                        with self._changed:
                            self.pings.append(self._clock())
                            self._changed.notify_all()
                        conn.sendall(_frame(0xA, payload))
                    elif opcode == 0x8:
                        conn.sendall(_frame(0x8, payload[:2]))
                        return
            except (EOFError, OSError):
                return

    def seen(self, count, timeout):
        with self._changed:
            return self._changed.wait_for(lambda: len(self.pings) >= count, timeout)

    def stop(self):
        _close(self._listener)  # shutdown() wakes the accept() that close() would not
        self._thread.join(JOIN)


class Forwarder:
    """Forwards each connection to ``(host, port)``. ``blackhole()`` makes every connection open
    at that moment silent: bytes are read and dropped both ways, nothing is closed. Connections
    made later forward normally."""

    def __init__(self, port):
        self._target = ("127.0.0.1", port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._live = []  # [dead flag, sockets]
        self._threads = [_start(self._accept)]

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            link = {"dead": False, "sockets": (client, upstream)}
            with self._lock:
                self._live.append(link)
                self._threads.append(_start(self._pump, client, upstream, link))
                self._threads.append(_start(self._pump, upstream, client, link))

    @staticmethod
    def _pump(source, sink, link):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not link["dead"]:
                    sink.sendall(data)
        except OSError:
            pass
        if not link["dead"]:
            _close(sink)

    def blackhole(self):
        with self._lock:
            for link in self._live:
                link["dead"] = True

    def stop(self):
        _close(self._listener)  # shutdown() wakes the accept() that close() would not
        with self._lock:
            links, threads = list(self._live), list(self._threads)
        for link in links:
            for sock in link["sockets"]:
                _close(sock)
        for thread in threads:
            thread.join(JOIN)


class _Proxy:
    """What both proxies share: a listener, a thread per client, and the splice."""

    def __init__(self, credentials=None):
        self.credentials = credentials  # (user, password) to require, or None
        self.requests = queue.Queue()  # what each client asked for, see the subclasses
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets = []
        self._threads = [_start(self._accept)]

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
                self._threads.append(_start(self._serve_one, client))

    def _serve_one(self, client):
        try:
            upstream = self.tunnel(client)
        except (OSError, EOFError, ValueError):
            upstream = None
        if upstream is None:
            _close(client)
            return
        with self._lock:
            self._sockets.append(upstream)
        back = _start(self._splice, upstream, client)
        self._splice(client, upstream)
        back.join(JOIN)

    @staticmethod
    def _splice(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        _close(sink)

    def stop(self):
        _close(self._listener)  # shutdown() wakes the accept() that close() would not
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _close(sock)
        for thread in threads:
            thread.join(JOIN)


class ConnectProxy(_Proxy):
    """An HTTP proxy that opens CONNECT tunnels. ``requests`` gets ``(target, headers)`` for
    each request (header names in lower case). With ``credentials`` it answers 407 unless the
    request carries them as ``Proxy-Authorization: Basic``."""

    def __init__(self, credentials=None):
        super().__init__(credentials)
        self.url = f"http://127.0.0.1:{self.port}"

    def tunnel(self, client):
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = client.recv(4096)
            if not chunk:
                return None
            request += chunk
        lines = request.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        self.requests.put((target, headers))
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(
                ":".join(self.credentials).encode()
            ).decode()
            if headers.get("proxy-authorization") != expected:
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="tests"\r\nContent-Length: 0\r\n\r\n'
                )
                return None
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return None
        host, port = target.rsplit(":", 1)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return None
        upstream.settimeout(None)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return upstream


class Socks5Proxy(_Proxy):
    """A SOCKS5 proxy (RFC 1928, CONNECT only; RFC 1929 credentials when ``credentials`` is
    set). ``requests`` gets ``(host, port, credentials)`` for each CONNECT: the host as the
    client sent it (an IP address, or the name with ``socks5h://``)."""

    def __init__(self, credentials=None):
        super().__init__(credentials)
        self.url = f"socks5://127.0.0.1:{self.port}"

    def tunnel(self, client):
        version, count = _read_exactly(client, 2)
        methods = _read_exactly(client, count)
        wanted = 0x02 if self.credentials is not None else 0x00
        if version != 5 or wanted not in methods:
            client.sendall(b"\x05\xff")
            return None
        client.sendall(bytes([5, wanted]))
        given = None
        if wanted == 0x02:
            _, user_len = _read_exactly(client, 2)
            user = _read_exactly(client, user_len).decode()
            (password_len,) = _read_exactly(client, 1)
            password = _read_exactly(client, password_len).decode()
            given = (user, password)
            if given != tuple(self.credentials):
                client.sendall(b"\x01\x01")
                return None
            client.sendall(b"\x01\x00")
        _, command, _, address_type = _read_exactly(client, 4)
        if address_type == 1:
            host = socket.inet_ntoa(_read_exactly(client, 4))
        elif address_type == 3:
            (length,) = _read_exactly(client, 1)
            host = _read_exactly(client, length).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, _read_exactly(client, 16))
        (port,) = struct.unpack("!H", _read_exactly(client, 2))
        self.requests.put((host, port, given))
        reply = b"\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x00"
        if command != 1:
            client.sendall(b"\x05\x07" + reply)
            return None
        try:
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            client.sendall(b"\x05\x05" + reply)  # connection refused
            return None
        upstream.settimeout(None)
        client.sendall(b"\x05\x00" + reply)
        return upstream
