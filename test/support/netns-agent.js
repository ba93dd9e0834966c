'use strict';
// Runs inside a private network namespace (started by netns.ts through `ip netns exec`) and holds the
// sockets a dead-peer test watches. It takes one JSON command a line on stdin and writes one JSON line
// a reply or event on stdout. Times (`t`) are CLOCK_MONOTONIC in ms, the same clock in every process on
// the machine, so the test can set them against the moment it pulled the cable.
// Only 127.0.0.1 is ever used: the namespace has nothing else, and neither does this file.
const net = require('node:net');
const readline = require('node:readline');

const HOST = '127.0.0.1';
const { applyKeepalive, getKeepalive, getTcpInfo, DEAD_CHANNEL } = require(process.argv[2]);
const diagnosticsChannel = require('node:diagnostics_channel');

const sockets = new Map();
const servers = new Map();
let nextId = 0;

const now = () => Number(process.hrtime.bigint()) / 1e6;
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

function watch(socket, id) {
  sockets.set(id, socket);
  socket.on('error', (error) => {
    errored.add(id);
    send({ ev: 'error', sock: id, code: error.code, syscall: error.syscall, t: now() });
  });
  socket.on('close', () => send({ ev: 'close', sock: id, t: now() }));
  socket.on('data', () => {});
}

// tcp-keepalive:dead, reported with the socket's id; `after` says whether its own error came first.
const errored = new Set();
diagnosticsChannel.subscribe(DEAD_CHANNEL, ({ socket, side, source, error, idleMs, unacked, values }) => {
  const id = [...sockets].find(([, s]) => s === socket)?.[0];
  send({ ev: 'dead', sock: id, side, source, code: error.code, idleMs, unacked, values, afterError: errored.has(id), t: now() });
});

function socketOf(id) {
  const socket = sockets.get(id);
  if (!socket) throw new Error(`no socket ${id}`);
  return socket;
}

function connectOne(port, keepalive, nodeKeepAlive) {
  return new Promise((resolve, reject) => {
    const id = `c${nextId++}`;
    const socket = net.connect(port, HOST);
    if (keepalive) applyKeepalive(socket, keepalive);
    socket.once('error', reject);
    socket.once('connect', () => {
      const t = now();
      socket.off('error', reject);
      if (nodeKeepAlive !== undefined) socket.setKeepAlive(true, nodeKeepAlive);
      watch(socket, id);
      resolve({ sock: id, localPort: socket.localPort, t });
    });
  });
}

const ops = {
  async listen({ keepalive }) {
    const id = `s${nextId++}`;
    const server = net.createServer((socket) => {
      const sock = `a${nextId++}`;
      watch(socket, sock);
      send({ ev: 'accept', server: id, sock, remotePort: socket.remotePort, t: now() });
    });
    if (keepalive) applyKeepalive(server, keepalive);
    servers.set(id, server);
    await new Promise((resolve, reject) => server.once('error', reject).listen(0, HOST, 511, resolve));
    return { server: id, port: server.address().port };
  },

  async connect({ port, count = 1, keepalive, nodeKeepAlive }) {
    const connected = await Promise.all(Array.from({ length: count }, () => connectOne(port, keepalive, nodeKeepAlive)));
    return { sockets: connected };
  },

  write({ socks, bytes }) {
    const t = now();
    for (const id of socks) socketOf(id).write(Buffer.alloc(bytes, 0x6b));
    return { t };
  },

  keepalive({ sock }) {
    return { values: getKeepalive(socketOf(sock)) };
  },

  tcpInfo({ sock }) {
    return { info: getTcpInfo(socketOf(sock)), t: now() };
  },

  reset({ sock }) {
    socketOf(sock).resetAndDestroy();
    return {};
  },

  end({ sock }) {
    socketOf(sock).end();
    return {};
  },

  state({ socks }) {
    return { open: socks.filter((id) => !socketOf(id).destroyed) };
  },
};

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, op, ...args } = JSON.parse(line);
  try {
    send({ id, ok: true, ...(await ops[op](args)) });
  } catch (error) {
    send({ id, ok: false, error: `${error.code ?? error.name}: ${error.message}` });
  }
});
process.stdin.on('end', () => process.exit(0));
send({ ev: 'ready', pid: process.pid, t: now() });
