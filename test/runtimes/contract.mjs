// The contract under Bun or Deno, run by test/runtimes.test.ts from a project that depends on tcp-keepalive as a
// user's would. It applies keepalive to every kind of target, prints one `READY {json}` line naming each socket
// by its addresses (with the values it expects the kernel to hold) and the errors it caught, then keeps every
// socket open until stdin closes, so the test can read the options from outside through another process.
// Usage: <runtime> contract.mjs CERT_PEM KEY_PEM UNIX_SOCKET_PATH
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { applyKeepalive, getKeepalive, getTcpInfo, setDefaultKeepalive } from 'tcp-keepalive';

const [certFile, keyFile, unixPath] = process.argv.slice(2);
const cert = fs.readFileSync(certFile);
const key = fs.readFileSync(keyFile);

const runtime = typeof globalThis.Bun !== 'undefined' ? `bun ${globalThis.Bun.version}` : typeof globalThis.Deno !== 'undefined' ? `deno ${globalThis.Deno.version.deno}` : `node ${process.versions.node}`;

const open = [];
const keep = (thing) => (open.push(thing), thing);
const sockets = [];
const errors = [];

/** Distinct idle times per case (whole seconds), so a value inherited or left over from another case shows. */
let nextIdle = 10;
function optionsFor() {
  const idle = nextIdle++;
  return { keepalivetime: idle * 1000, keepaliveinterval: 2000, keepalivecount: 4, usertimeout: 7000 };
}
const kernelView = (o) => (o.onoff === false ? { so_keepalive: 0 } : { so_keepalive: 1, tcp_keepidle: o.keepalivetime / 1000, tcp_keepintvl: o.keepaliveinterval / 1000, tcp_keepcnt: o.keepalivecount, tcp_user_timeout: o.usertimeout });

function record(name, socket, options) {
  let got;
  try {
    got = getKeepalive(socket);
  } catch (error) {
    got = { error: `${error.code}: ${error.message}` };
  }
  let tcp;
  try {
    const info = getTcpInfo(socket);
    tcp = { state: info.state, rtt: info.rtt, bytesSent: info.bytesSent, bytesReceived: info.raw.tcpi_bytes_received };
  } catch (error) {
    tcp = { error: `${error.code}: ${error.message}` };
  }
  sockets.push({
    name,
    local: { address: socket.localAddress, port: socket.localPort },
    remote: { address: socket.remoteAddress, port: socket.remotePort },
    expected: kernelView(options),
    got,
    tcp,
  });
}

function expectError(name, run) {
  try {
    run();
    errors.push({ name, code: 'no error' });
  } catch (error) {
    errors.push({ name, code: error.code, type: error.constructor?.name });
  }
}

function expectNoError(name, run) {
  try {
    run();
    errors.push({ name, code: 'no error' });
  } catch (error) {
    errors.push({ name, code: error.code, message: error.message });
  }
}

async function listen(server, host = '127.0.0.1') {
  keep(server);
  server.listen(0, host);
  await once(server, 'listening');
  return server.address().port;
}

async function connect(port, host = '127.0.0.1') {
  const socket = keep(net.connect(port, host));
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** The server's next accepted socket (its `connection` event, or `secureConnection` for TLS). */
function accepted(server, event = 'connection') {
  return new Promise((resolve) => server.once(event, (socket) => resolve(keep(socket))));
}

async function plainServer() {
  const server = net.createServer((s) => s.on('error', () => {}));
  return listen(server);
}

// A net.Socket, connected, then applied.
{
  const port = await plainServer();
  const client = await connect(port);
  const options = optionsFor();
  applyKeepalive(client, options);
  record('net.Socket, connected', client, options);
}

// A net.Socket applied while it connects: the settings land on `connect`, before the user's listeners.
{
  const port = await plainServer();
  const client = keep(net.connect(port, '127.0.0.1'));
  client.on('error', () => {});
  const options = optionsFor();
  applyKeepalive(client, options);
  let seenInListener;
  client.on('connect', () => {
    seenInListener = getKeepalive(client).keepalivetime;
  });
  await once(client, 'connect');
  if (seenInListener !== options.keepalivetime) errors.push({ name: 'deferred apply not in force in the connect listener', code: String(seenInListener) });
  record('net.Socket, applied while connecting', client, options);
}

// net.Server, applied before listen() and while listening: every accepted socket.
for (const when of ['before listen', 'while listening']) {
  const server = net.createServer((s) => s.on('error', () => {}));
  const options = optionsFor();
  if (when === 'before listen') applyKeepalive(server, options);
  const port = await listen(server);
  if (when === 'while listening') applyKeepalive(server, options);
  const next = accepted(server);
  await connect(port);
  const socket = await next;
  record(`net.Server, applied ${when}: accepted socket`, socket, options);
}

// A dual-stack listener on :: reached over IPv4: the accepted socket's addresses are IPv4-mapped IPv6.
{
  const server = net.createServer((s) => s.on('error', () => {}));
  const options = optionsFor();
  applyKeepalive(server, options);
  const port = await listen(server, '::');
  const next = accepted(server);
  await connect(port, '127.0.0.1');
  const socket = await next;
  record('net.Server on ::, IPv4 client: accepted socket (IPv4-mapped)', socket, options);
}

// IPv6 on both ends (::1).
{
  const server = net.createServer((s) => s.on('error', () => {}));
  const options = optionsFor();
  applyKeepalive(server, options);
  const port = await listen(server, '::1');
  const next = accepted(server);
  const client = await connect(port, '::1');
  const clientOptions = optionsFor();
  applyKeepalive(client, clientOptions);
  record('net.Socket over IPv6 (::1)', client, clientOptions);
  record('net.Server on ::1: accepted socket', await next, options);
}

// http.Server and https.Server: the socket a request arrived on.
async function requestSocket(server, connectClient) {
  const options = optionsFor();
  applyKeepalive(server, options);
  const port = await listen(server);
  const arrived = new Promise((resolve) => server.once('request', (req, res) => {
    resolve(keep(req.socket));
    res.end('ok');
  }));
  const client = keep(await connectClient(port));
  client.on('error', () => {});
  client.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  return { socket: await arrived, options };
}
{
  const server = http.createServer();
  const { socket, options } = await requestSocket(server, (port) => connect(port));
  record('http.Server: request socket', socket, options);
  expectNoError('getKeepalive(http.Server) while listening', () => getKeepalive(server));
}
{
  const { socket, options } = await requestSocket(https.createServer({ key, cert }), async (port) => {
    const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    await once(client, 'secureConnect');
    return client;
  });
  record('https.Server: request socket', socket, options);
}

// tls.Server and tls.TLSSocket.
{
  const server = tls.createServer({ key, cert }, (s) => s.on('error', () => {}));
  const serverOptions = optionsFor();
  applyKeepalive(server, serverOptions);
  const port = await listen(server);
  const next = accepted(server, 'secureConnection');
  const client = keep(tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }));
  client.on('error', () => {});
  await once(client, 'secureConnect');
  const clientOptions = optionsFor();
  applyKeepalive(client, clientOptions);
  record('tls.TLSSocket (client)', client, clientOptions);
  record('tls.Server: accepted TLSSocket', await next, serverOptions);
}

// Sticky: a later setKeepAlive(true, n) by another library keeps our interval, count and idle time.
{
  const port = await plainServer();
  const client = await connect(port);
  const options = optionsFor();
  applyKeepalive(client, options);
  client.setKeepAlive(true, 60_000);
  record('net.Socket, setKeepAlive(true, 60000) after apply (sticky)', client, options);
}

// onoff: false turns keepalive off.
{
  const port = await plainServer();
  const client = await connect(port);
  applyKeepalive(client, optionsFor());
  const options = { onoff: false };
  applyKeepalive(client, options);
  record('net.Socket, onoff false', client, options);
}

// The process-wide default reaches clients the runtime's drivers create: net.connect and new Socket().connect().
{
  const port = await plainServer();
  const options = optionsFor();
  setDefaultKeepalive(options);
  const viaConnect = await connect(port);
  const viaSocket = keep(new net.Socket());
  viaSocket.on('error', () => {});
  viaSocket.connect(port, '127.0.0.1');
  await once(viaSocket, 'connect');
  setDefaultKeepalive(null);
  record('setDefaultKeepalive: net.connect client', viaConnect, options);
  record('setDefaultKeepalive: new net.Socket().connect() client', viaSocket, options);
}

// Errors: the same typed errors as in Node.
{
  const port = await plainServer();
  const client = await connect(port);
  expectError('not a target ({})', () => applyKeepalive({}, optionsFor()));
  expectError('options not an object', () => applyKeepalive(client, 5));
  expectError('keepalivetime a string', () => applyKeepalive(client, { keepalivetime: '3000', keepaliveinterval: 1000 }));
  expectError('keepalivecount out of range', () => applyKeepalive(client, { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 1000 }));
  expectError('unknown option', () => applyKeepalive(client, { keepalivetime: 3000, keepaliveinterval: 1000, keepidle: 3 }));
  const connecting = keep(net.connect(port, '127.0.0.1'));
  connecting.on('error', () => {});
  expectError('getKeepalive while connecting', () => getKeepalive(connecting));
  expectError('getTcpInfo while connecting', () => getTcpInfo(connecting));
  expectError('getKeepalive on a server not listening', () => getKeepalive(http.createServer()));
  const closed = await connect(port);
  closed.destroy();
  expectError('destroyed socket', () => applyKeepalive(closed, optionsFor()));
  expectError('getTcpInfo(destroyed socket)', () => getTcpInfo(closed));

  try {
    fs.unlinkSync(unixPath);
  } catch {}
  const unixServer = keep(net.createServer((s) => s.on('error', () => {})));
  unixServer.listen(unixPath);
  await once(unixServer, 'listening');
  const unixClient = keep(net.connect(unixPath));
  unixClient.on('error', () => {});
  await once(unixClient, 'connect');
  expectError('Unix-domain socket', () => applyKeepalive(unixClient, optionsFor()));
  expectError('getTcpInfo(Unix-domain socket)', () => getTcpInfo(unixClient));
  const unixConnecting = keep(net.connect(unixPath));
  unixConnecting.on('error', (error) => errors.push({ name: 'Unix-domain socket still connecting: later error', code: error.code }));
  expectError('Unix-domain socket still connecting', () => applyKeepalive(unixConnecting, optionsFor()));
  expectError('Unix-domain net.Server', () => applyKeepalive(unixServer, optionsFor()));
  expectError('getKeepalive(Unix-domain net.Server)', () => getKeepalive(unixServer));

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

process.stdout.write(`READY ${JSON.stringify({ runtime, pid: process.pid, sockets, errors })}\n`);

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
