# example_minimal.py: the 1.0 README's "Raw API" example, unchanged apart from the URL
# (taken from the command line; a local echo server by default).
import sys
import time

from nwebsocket import WebSocket

wscn = WebSocket(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/")

wscn.onmessage = lambda m: print(m)
wscn.onopen = lambda: print("Opened connection")
wscn.onclose = lambda: print("Closed connection")
wscn.onerror = lambda e: print("Connection error", e)

while(not wscn.readyState):
    time.sleep(1e-4)

wscn.send('text')
time.sleep(1.)

wscn.close()
