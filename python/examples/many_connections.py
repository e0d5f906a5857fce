"""Many connections on a few shared I/O threads: N WebSockets on one ``IoThreads``, each sends
a message and waits for its echo, then all close.

Run it against an echo server: ``python many_connections.py ws://127.0.0.1:8765/ 200 2``
(URL, connections, threads). It prints one line per stage.
"""

import sys

from nwebsocket import Close, IoThreads, Message, Open, WebSocket

url = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
io = IoThreads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

sockets = [WebSocket(url, io_threads=io) for _ in range(count)]
for ws in sockets:
    event = ws.recv(timeout=30)
    if not isinstance(event, Open):
        sys.exit(f"did not open: {event!r}")
print(f"{io.connections} connections open on {io.threads} I/O threads")

for i, ws in enumerate(sockets):
    ws.send(f"hello {i}")
for i, ws in enumerate(sockets):
    event = ws.recv(timeout=30)
    if not (isinstance(event, Message) and event.data == f"hello {i}"):
        sys.exit(f"unexpected: {event!r}")
print(f"{count} echoes")

for ws in sockets:
    ws.close()  # returns once closed; the Close event waits in the queue
closes = [ws.recv(timeout=30) for ws in sockets]
clean = sum(isinstance(event, Close) and event.code == 1000 for event in closes)
print(f"{clean} closed cleanly")
