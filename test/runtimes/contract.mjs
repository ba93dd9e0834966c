// The contract under Bun or Deno, run by test/runtimes.test.ts from a project that depends on tcp-keepalive as a
// user's would: the cases of test/support/contract.js (copied next to this file as contract-cases.cjs), then the
// checks only these runtimes need (handle-less servers on a path, a refused deferred connect, a dead peer). It
// prints one `READY {json}` line with each case's result and each socket it configured (by its addresses, with
// the values the kernel must hold), then keeps every socket open until stdin closes, so the test can read the
// options from outside through another process.
// Usage: <runtime> contract.mjs CERT_PEM KEY_PEM UNIX_SOCKET_PATH
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import { applyKeepalive, getKeepalive, getTcpInfo, setDefaultKeepalive } from 'tcp-keepalive';

const { runContract, OPTIONS } = createRequire(import.meta.url)('./contract-cases.cjs');
const [certFile, keyFile, unixPath] = process.argv.slice(2);

const runtime = typeof globalThis.Bun !== 'undefined' ? `bun ${globalThis.Bun.version}` : typeof globalThis.Deno !== 'undefined' ? `deno ${globalThis.Deno.version.deno}` : `node ${process.versions.node}`;

const open = [];
const keep = (thing) => (open.push(thing), thing);
const sockets = [];
const cases = [];
const errors = [];

function tcpInfo(socket) {
  try {
    const info = getTcpInfo(socket);
    return { state: info.state, rtt: info.rtt, bytesSent: info.bytesSent, bytesReceived: info.raw.tcpi_bytes_received };
  } catch (error) {
    return { error: `${error.code}: ${error.message}` };
  }
}

const registered = [];
let current;
runContract({
  test: (name, fn) => registered.push({ name, fn }),
  lib: { applyKeepalive, getKeepalive, getTcpInfo, setDefaultKeepalive },
  platform: 'linux',
  tlsCert: fs.readFileSync(certFile),
  tlsKey: fs.readFileSync(keyFile),
  tmpdir: path.dirname(unixPath),
  keepOpen: true,
  observe(socket, want, what) {
    sockets.push({ name: current, what, local: { address: socket.localAddress, port: socket.localPort }, remote: { address: socket.remoteAddress, port: socket.remotePort }, expected: want, tcp: tcpInfo(socket) });
  },
});
for (const { name, fn } of registered) {
  current = name;
  try {
    cases.push({ name, ok: true, detail: await fn() });
  } catch (error) {
    cases.push({ name, ok: false, detail: String(error && error.stack) });
  }
}

function expectError(name, run) {
  try {
    run();
    errors.push({ name, code: 'no error' });
  } catch (error) {
    errors.push({ name, code: error.code, type: error.constructor?.name });
  }
}

async function listen(server, host = '127.0.0.1') {
  keep(server);
  server.listen(0, host);
  await once(server, 'listening');
  return server.address().port;
}

async function plainServer() {
  const server = net.createServer((s) => s.on('error', () => {}));
  return listen(server);
}

async function connect(port, host = '127.0.0.1') {
  const socket = keep(net.connect(port, host));
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

const optionsFor = () => ({ ...OPTIONS });

// Checks only these runtimes need. http.Server in Bun is server-shaped without a handle: read by its address.
{
  const server = http.createServer();
  await listen(server);
  applyKeepalive(server, optionsFor());
  expectError('getKeepalive(http.Server) while listening', () => getKeepalive(server));

  // Servers given keepalive before they turn out to listen on a path: one warning each, every connection kept.
  const warned = [];
  process.on('warning', (warning) => warned.push(warning.code));
  const answered = async (name, server, ask) => {
    const path = `${unixPath}.${name}`;
    try {
      fs.unlinkSync(path);
    } catch {}
    applyKeepalive(server, optionsFor());
    keep(server).listen(path);
    await once(server, 'listening');
    const reply = await ask(path);
    errors.push({ name: `Unix-domain ${name} server applied before listen: its client got`, code: reply });
  };
  let requestSocket;
  await answered('net', net.createServer((s) => s.end('hello')), (path) => new Promise((resolve) => {
    let data = '';
    const c = keep(net.connect(path));
    c.on('data', (chunk) => (data += chunk));
    c.on('error', (error) => resolve(error.code));
    c.on('close', () => resolve(data));
  }));
  await answered('http', http.createServer((req, res) => {
    requestSocket = req.socket;
    res.end('hello');
  }), (path) => new Promise((resolve) => {
    http.get({ socketPath: path, path: '/' }, (res) => {
      let data = '';
      res.on('data', (chunk) => (data += chunk));
      res.on('end', () => resolve(data));
    }).on('error', (error) => resolve(error.code));
  }));
  expectError('applyKeepalive(request socket of an http.Server on a path)', () => applyKeepalive(requestSocket, optionsFor()));
  expectError('getKeepalive(request socket of an http.Server on a path)', () => getKeepalive(requestSocket));
  await new Promise((resolve) => setTimeout(resolve, 50));
  errors.push({ name: 'Unix-domain servers: TCP_KEEPALIVE_NOT_TCP warnings', code: String(warned.filter((code) => code === 'TCP_KEEPALIVE_NOT_TCP').length) });

  // A deferred apply on a connection that is refused: the socket reports its own error, the process lives on.
  const refusedPort = await plainServer();
  const refusing = open.pop();
  await new Promise((resolve) => refusing.close(resolve));
  const refused = net.connect(refusedPort, '127.0.0.1');
  applyKeepalive(refused, optionsFor());
  const [error] = await once(refused, 'error');
  errors.push({ name: 'deferred apply, connection refused', code: error.code });
}

process.stdout.write(`READY ${JSON.stringify({ runtime, pid: process.pid, cases, sockets, errors })}\n`);

/**
 * On `deadpeer` from stdin: an idle net.Socket with keepalive and an idle request socket of an http.Server with
 * keepalive, each to a peer without; prints `DEADPEER-READY {ports}` for the test to silence those ports, then
 * one `DEAD {json}` line per socket when it gives up.
 */
const DEAD_PEER = { keepalivetime: 2000, keepaliveinterval: 1000, keepalivecount: 2 };
async function deadPeer() {
  const dead = (name, error) => process.stdout.write(`DEAD ${JSON.stringify({ name, code: error?.code ?? 'closed without an error' })}\n`);

  const port = await plainServer();
  const client = await connect(port);
  client.removeAllListeners('error');
  client.on('error', (error) => dead('net.Socket', error));
  applyKeepalive(client, DEAD_PEER);

  const server = http.createServer((req, res) => {
    let reported = false;
    const report = (error) => {
      if (!reported) dead('http.Server: request socket', error);
      reported = true;
    };
    req.socket.on('error', report);
    req.socket.on('close', () => setTimeout(() => report(undefined), 100));
    res.end('ok');
  });
  server.keepAliveTimeout = 600_000;
  applyKeepalive(server, DEAD_PEER);
  const httpPort = await listen(server);
  const peer = await connect(httpPort);
  peer.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await once(peer, 'data');
  process.stdout.write(`DEADPEER-READY ${JSON.stringify({ ports: [port, httpPort], options: DEAD_PEER })}\n`);
}

let input = '';
process.stdin.on('data', (chunk) => {
  input += chunk;
  let newline;
  while ((newline = input.indexOf('\n')) >= 0) {
    const command = input.slice(0, newline).trim();
    input = input.slice(newline + 1);
    if (command === 'deadpeer') deadPeer().catch((error) => process.stdout.write(`DEAD ${JSON.stringify({ name: 'setup', code: String(error) })}\n`));
  }
});
process.stdin.on('end', () => {
  for (const thing of open) {
    if (typeof thing.destroy === 'function') thing.destroy();
    else thing.close();
  }
  process.exit(0);
});
process.stdin.resume();
