'use strict';
// Threads and processes under setDefaultKeepalive (default.test.ts runs it in a private namespace):
// - a worker_threads Worker started after the default connects on its own (it never loads tcp-keepalive);
// - sticky sessions: a server with pauseOnConnect hands each connection to a forked process with
//   child.send('socket', s); the child emits it on its own server (as sticky-session balancers do), with a
//   default of its own (argv[3] 'child-default') or none.
// Prints { ev: 'observe', ... } with the pids and ports to read, waits for a line on stdin, exits.
// argv: dist/index.js, 'parent' | 'child', 'child-default' | 'child-none'
const { fork } = require('node:child_process');
const net = require('node:net');
const readline = require('node:readline');

const [dist, role, childMode] = process.argv.slice(2);
const { setDefaultKeepalive } = require(dist);
// Looked up after the package loaded (as an ES module import always is: the package syncs the builtin's exports).
const { Worker } = require('node:worker_threads');
const PARENT = { keepalivetime: 2000, keepaliveinterval: 1000 }; // count and usertimeout omitted: a new socket's
const CHILD = { keepalivetime: 4000, keepaliveinterval: 2000, keepalivecount: 4, usertimeout: 5000 };
const HOST = '127.0.0.1';
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

if (role === 'child') {
  if (childMode === 'child-default') setDefaultKeepalive(CHILD);
  const server = net.createServer((socket) => socket.on('error', () => {}));
  const kept = [];
  process.on('message', (message, socket) => {
    if (message !== 'socket' || !socket) return;
    kept.push(socket);
    server.emit('connection', socket);
    socket.resume();
    process.send({ received: socket.remotePort });
  });
  process.on('disconnect', () => process.exit(0));
} else {
  (async () => {
    setDefaultKeepalive(PARENT);
    const plain = net.createServer((socket) => socket.on('error', () => {}));
    await new Promise((resolve) => plain.listen(0, HOST, resolve));
    const worker = new Worker(
      `const net = require('node:net'); const { parentPort, workerData } = require('node:worker_threads');
       const s = net.connect(workerData, '127.0.0.1', () => parentPort.postMessage(s.localPort)); s.on('error', () => {});`,
      { eval: true, workerData: plain.address().port },
    );
    const workerPort = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));

    const child = fork(__filename, [dist, 'child', childMode], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const sticky = net.createServer({ pauseOnConnect: true }, (socket) => child.send('socket', socket));
    await new Promise((resolve) => sticky.listen(0, HOST, resolve));
    const clients = [];
    for (let i = 0; i < 3; i++) {
      const client = net.connect(sticky.address().port, HOST);
      client.on('error', () => {});
      await new Promise((resolve) => client.once('connect', resolve));
      await new Promise((resolve) => child.once('message', resolve));
      clients.push(client.localPort);
    }
    send({ ev: 'observe', pid: process.pid, childPid: child.pid, plainPort: plain.address().port, workerPort, stickyPort: sticky.address().port, clients });
    readline.createInterface({ input: process.stdin }).once('line', () => {
      child.disconnect();
      process.exit(0);
    });
  })().catch((error) => {
    send({ ev: 'failed', error: String((error && error.stack) || error) });
    process.exit(1);
  });
}
