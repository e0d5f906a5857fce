// The Node `ws` peer of nwebsocket's interop suite.
//
// Binds 127.0.0.1:0, prints `PORT <n>`, then serves by request path:
//   /echo                  echoes every message, text as text and binary as binary
//   /close/<code>/<reason> sends "bye", then closes with that code and reason
//   /terminate             sends "bye", then drops the TCP connection with no close frame
//   /deflate12/echo        echoes with permessage-deflate on: 12-bit server windows, and
//                          every message compressed (threshold 0)
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');

const maxPayload = 64 * 1024 * 1024;
const plain = new WebSocketServer({ noServer: true, maxPayload });
const deflate12 = new WebSocketServer({
  noServer: true,
  maxPayload,
  perMessageDeflate: { serverMaxWindowBits: 12, threshold: 0 },
});

const server = http.createServer();
server.on('upgrade', (request, socket, head) => {
  const wss = request.url.startsWith('/deflate12/') ? deflate12 : plain;
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
});
server.listen(0, '127.0.0.1', () => {
  console.log(`PORT ${server.address().port}`);
});

const echo = (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));

deflate12.on('connection', echo);

plain.on('connection', (ws, request) => {
  const path = decodeURIComponent(request.url);
  if (path === '/echo') {
    echo(ws);
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
