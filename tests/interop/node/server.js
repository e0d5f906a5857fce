// The Node `ws` peer of nwebsocket's interop suite.
//
// Binds 127.0.0.1:0, prints `PORT <n>`, then serves by request path:
//   /echo                  echoes every message, text as text and binary as binary
//   /close/<code>/<reason> sends "bye", then closes with that code and reason
//   /terminate             sends "bye", then drops the TCP connection with no close frame
'use strict';

const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });

wss.on('listening', () => {
  console.log(`PORT ${wss.address().port}`);
});

wss.on('connection', (ws, request) => {
  const path = decodeURIComponent(request.url);
  if (path === '/echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  } else if (path.startsWith('/close/')) {
    const [code, reason] = path.slice('/close/'.length).split(/\/(.*)/s);
    ws.send('bye');
    ws.close(Number(code), reason);
  } else if (path === '/terminate') {
    ws.send('bye', () => ws.terminate());
  } else {
    ws.close(1008, 'unknown path');
  }
});
