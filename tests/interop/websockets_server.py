"""The Python `websockets` peer of nwebsocket's interop suite (a sync server).

Binds 127.0.0.1:0, prints `PORT <n>`, then serves by request path:
  /echo                  echoes every text and binary message
  /reject                refuses the handshake: 403 with a text body
  /close/<code>/<reason> sends "bye", then closes with that code and reason
"""

import sys
from http import HTTPStatus

from websockets.sync.server import serve


def handler(ws):
    path = ws.request.path
    if path == "/echo":
        for message in ws:
            ws.send(message)
    elif path.startswith("/close/"):
        _, _, code, reason = path.split("/", 3)
        ws.send("bye")
        ws.close(int(code), reason)


def process_request(connection, request):
    if request.path == "/reject":
        return connection.respond(HTTPStatus.FORBIDDEN, "forbidden: no token\n")
    return None


def main():
    with serve(
        handler, "127.0.0.1", 0, process_request=process_request, max_size=None
    ) as server:
        print("PORT", server.socket.getsockname()[1], flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
