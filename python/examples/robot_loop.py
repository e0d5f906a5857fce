"""A control loop that never blocks and sets no callbacks: no dispatcher thread at all.

Run it against an echo server: ``python robot_loop.py ws://127.0.0.1:8765/``.
"""

import sys
import time

from nwebsocket import Close, Error, Message, Open, WebSocket

ws = WebSocket(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/")
tick = 0
done = False
while not done and tick < 5000:  # at most 5 s at 1 kHz
    event = ws.try_recv()
    while event is not None:  # drain what arrived since the last tick
        if isinstance(event, Open):
            print("open")
            ws.send("pose 0")
        elif isinstance(event, Message):
            print("got", event.data)
            if event.data == "pose 3":
                ws.close()  # waits (briefly) for the close handshake
            else:
                ws.send("pose %d" % (int(event.data.split()[1]) + 1))
        elif isinstance(event, Error):
            print("error", event.message)
        elif isinstance(event, Close):
            print("closed", event.code)
            done = True
            break
        event = ws.try_recv()
    tick += 1
    time.sleep(1e-3)  # the rest of the robot's work for this tick
