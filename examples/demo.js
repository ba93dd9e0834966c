'use strict';
// `npm run demo`: a local server and client on 127.0.0.1, keepalive applied, the kernel's values printed.
const net = require('node:net');
const { applyKeepalive, getKeepalive } = require('..');

const settings = { onoff: true, keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3, usertimeout: 6000 };

const server = net.createServer((socket) => socket.on('error', () => {}));
server.listen(0, '127.0.0.1', () => {
  const client = net.connect(server.address().port, '127.0.0.1');
  applyKeepalive(client, settings);
  client.on('connect', () => {
    console.log('applied:     ', settings);
    console.log('kernel holds:', getKeepalive(client));
    client.destroy();
    server.close();
  });
});
