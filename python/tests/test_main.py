# test_main.py: the 1.0 package's own tests (tests/test_main.py of cristidbr-adapta/nwebsocket),
# same names and assertions. What changed, and why:
# - the server is the local echo server of tests/servers.py, not a curio server on port 8001;
# - the "internet" test (wss://ws.postman-echo.com/raw) talks to a local wss server whose CA it
#   trusts through the `cafile` option;
# - `test_unable_to_connect` uses a refused port on 127.0.0.1 rather than the host name
#   `noconnect`, so that no DNS query leaves the machine;
# - `sock.send(Ping())` (a wsproto object) is `sock.ping()`; the server's ping and close
#   (`server.put(Ping())`, `server.put(CloseConnection(0))`) are asked for with the text commands
#   `__ping__` and `__close__` (code 0 is not a valid close code, so the server sends 1000);
# - the fixed sleeps (1 s, 2 s, 5 s) are gone: the tests wait for what the sleeps waited for.

import random
import string
import time

import pytest

from nwebsocket import WebSocket


def random_string(length):
    return ''.join(random.choice(string.ascii_lowercase) for _ in range(length))


class Tracker:
    def __init__(self, wscn):
        self.open = False
        self.error = False
        self.messages = []

        self.wscn = wscn
        self.wscn.onopen = self.handle_open
        self.wscn.onclose = self.handle_close
        self.wscn.onmessage = self.handle_message
        self.wscn.onerror = self.handle_error

    def handle_open(self):
        self.open = True

    def handle_close(self):
        self.open = False

    def handle_error(self):
        self.open = False
        self.error = True

    def handle_message(self, m):
        self.messages.append(m)


def test_unable_to_connect(server, closed_port_url):
    sock = WebSocket(closed_port_url)

    limit = time.time() + 10.
    while(not sock.readyState and time.time() < limit):
        time.sleep(1e-4)

    assert sock.readyState == WebSocket.CLOSED


def test_send_raise(server, servers):
    raised = False
    sock = WebSocket(servers['wss'] + '/', dict(cafile=servers['cafile']))

    try:
        sock.send('should_fail')
    except ConnectionError:
        raised = True

    assert raised == True
    sock.close()


def test_messaging_echo_secure(server, servers):
    endpoint = servers['wss'] + '/'
    sock = WebSocket(endpoint, dict(cafile=servers['cafile']))

    # can connect
    assert sock.readyState == WebSocket.CONNECTING

    # test stringification
    assert str(sock).find('<WebSocket') == 0
    assert repr(sock).find('<WebSocket') == 0

    wst = Tracker(sock)

    # has connected
    timeout = time.time() + 10.
    while(time.time() < timeout and sock.readyState == WebSocket.CONNECTING):
        time.sleep(1e-4)

    assert sock.readyState == WebSocket.OPEN
    assert wst.open == True

    # send ping message
    sock.ping()

    # send small text and verify echo
    wst.messages = []
    sock.send('test_0')

    limit = time.time() + 5.
    while(len(wst.messages) == 0 and time.time() < limit):
        time.sleep(1e-4)

    assert len(wst.messages) == 1
    assert wst.messages[0] == 'test_0'

    # send multipart text message and verify echo
    multipart_text = random_string(65536)

    wst.messages = []
    sock.send(multipart_text)

    limit = time.time() + 5.
    while(len(wst.messages) == 0 and time.time() < limit):
        time.sleep(1e-4)

    assert len(wst.messages) == 1
    assert wst.messages[0] == multipart_text

    # close connection
    sock.close()
    assert sock.readyState == WebSocket.CLOSED
    assert wst.open == False


def test_messaging_echo_binary(server):
    sock = WebSocket(server + '/')

    wst = Tracker(sock)

    # has connected
    timeout = time.time() + 10.
    while(time.time() < timeout and sock.readyState == WebSocket.CONNECTING):
        time.sleep(1e-4)

    assert sock.readyState == WebSocket.OPEN
    assert wst.open == True

    # send small text and verify echo
    wst.messages = []
    sock.send(bytes('test_0'.encode('utf-8')))

    limit = time.time() + 5.
    while(len(wst.messages) == 0 and time.time() < limit):
        time.sleep(1e-4)

    assert len(wst.messages) == 1
    assert wst.messages[0] == bytes('test_0'.encode('utf-8'))

    # send multipart binary message and verify echo
    multipart_binary = bytes(random_string(65536).encode('utf-8'))

    wst.messages = []
    sock.send(multipart_binary)

    limit = time.time() + 5.
    while(len(wst.messages) == 0 and time.time() < limit):
        time.sleep(1e-4)

    assert len(wst.messages) == 1
    assert wst.messages[0] == multipart_binary

    # test ping (from the server)
    sock.send('__ping__')

    # test close (by the server)
    sock.send('__close__')
    assert sock.wait_closed(10.)

    # close connection
    sock.close()
    assert sock.readyState == WebSocket.CLOSED
    assert wst.open == False


def test_socket_options(server):
    sock = WebSocket(server + '/', dict(maxPayload=365))

    assert sock.options['maxPayload'] == 365

    sock.close()


def test_onmessage_default(server):
    sock = WebSocket(server + '/')

    # has connected
    timeout = time.time() + 10.
    while(time.time() < timeout and sock.readyState == WebSocket.CONNECTING):
        time.sleep(1e-4)

    sock.send('test1')

    sock.close()
