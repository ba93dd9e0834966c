'use strict';
// The Node servers of the driver suite, run inside its network namespace by servers.ts: HTTP on 8080 and
// HTTPS on 8443, each with a WebSocket server on the same port. With LAB_DEFAULT_KEEPALIVE set (JSON
// options), the process calls setDefaultKeepalive first, so the accepted side is covered too.
//   GET /       "ok"                        GET /close  "ok" with Connection: close (the client reconnects)
//   GET /delay  "ok" after 100 ms           GET /slow   never answers (a request in flight)
//   WS: echoes every message except "slow", which gets no answer.
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');
const { WebSocketServer } = require('ws');

if (process.env.LAB_DEFAULT_KEEPALIVE) require(process.argv[2]).setDefaultKeepalive(JSON.parse(process.env.LAB_DEFAULT_KEEPALIVE));

const fixtures = path.join(__dirname, '..', 'fixtures');
const tls = { key: fs.readFileSync(path.join(fixtures, 'key.pem')), cert: fs.readFileSync(path.join(fixtures, 'cert.pem')) };

function handle(req, res) {
  if (req.url === '/slow') return;
  if (req.url === '/delay') return void setTimeout(() => res.end('ok'), 100);
  if (req.url === '/close') res.setHeader('connection', 'close');
  res.end('ok');
}

function serve(server, port) {
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  server.on('clientError', (error, socket) => socket.destroy());
  new WebSocketServer({ server }).on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data) => {
      if (String(data) !== 'slow') ws.send(data);
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

Promise.all([serve(http.createServer(handle), 8080), serve(https.createServer(tls, handle), 8443)]).then(() => console.log('ready'));
