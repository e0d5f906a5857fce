# example_class.py: the 1.0 README's "Class protocol" example, unchanged apart from the URL
# (taken from the command line; a local echo server by default) and the type annotations
# (python/ci.sh checks the examples with mypy --strict).
from __future__ import annotations

import sys
import time

from nwebsocket import WebSocket


class WSProtocolLogic(WebSocket):
    def __init__(self, url: str) -> None:
        super().__init__(url)

        self.messages: list[str | bytes] = []

        # wait for connection, close or error
        while(not self.readyState):
            time.sleep(1e-4)

    def onopen(self) -> None:
        print("Opened connection")

    def onclose(self) -> None:
        print("Closed connection")

    def onerror(self, e: Exception) -> None:
        print("Connection error", e)

    def onmessage(self, m: str | bytes) -> None:
        self.messages.append(m)


wscn = WSProtocolLogic(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/")

wscn.send('text')
time.sleep(1.)

print(wscn.messages)

wscn.close()
