'use strict';
// An app that knows nothing of tcp-keepalive, run by register.test.ts inside a private network namespace with
// only NODE_OPTIONS (--require or --import tcp-keepalive/register) and TCP_KEEPALIVE set. It serves on
// 127.0.0.1:5432 and :6379 (net) and :8080 (http), and connects to each: net.connect, new Socket().connect and an
// http.Agent with keepAlive (which calls setKeepAlive(true, 1000) itself), from the main thread, from a worker
// thread and from a child process (each of which inherits NODE_OPTIONS and TCP_KEEPALIVE). Then it prints
// { ev: 'ready', pid, child } with the local ports of each one's client sockets, and holds every connection
// open until its stdin ends. Run as `register-app.js child`, it is that child process.
const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const { Worker } = require('node:worker_threads');

const HOST = '127.0.0.1';
const PORTS = [5432, 6379];
const HTTP_PORT = 8080;
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

/** Opens the clients; resolves to their local ports. Shared by the main thread, the worker and the child. */
async function clients() {
  const connected = (socket) => new Promise((resolve, reject) => socket.once('error', reject).once('connect', () => resolve(socket.localPort)));
  const a = await connected(net.connect(PORTS[0], HOST));
  const b = await connected(new net.Socket().connect(PORTS[1], HOST));
  const agent = new http.Agent({ keepAlive: true });
  const c = await new Promise((resolve, reject) => {
    http.get({ host: HOST, port: HTTP_PORT, agent }, (res) => {
      const port = res.socket.localPort;
      res.resume().on('end', () => resolve(port));
    }).on('error', reject);
  });
  return [a, b, c];
}

const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { clients } = require(${JSON.stringify(__filename)});
clients().then((ports) => parentPort.postMessage(ports), (error) => parentPort.postMessage({ error: String(error) }));
setInterval(() => {}, 1 << 30);
`;

async function main() {
  const servers = [...PORTS.map((port) => [net.createServer(() => {}), port]), [http.createServer((req, res) => res.end('ok')), HTTP_PORT]];
  await Promise.all(servers.map(([server, port]) => new Promise((resolve, reject) => server.once('error', reject).listen(port, HOST, resolve))));
  const main = await clients();
  const worker = new Worker(WORKER_CODE, { eval: true });
  const workerPorts = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
  if (workerPorts.error) throw new Error(`worker: ${workerPorts.error}`);
  const child = spawn(process.execPath, [__filename, 'child'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const childPorts = await new Promise((resolve, reject) => {
    child.once('error', reject).once('exit', (code) => reject(new Error(`child exited ${code}`)));
    child.stdout.setEncoding('utf8').once('data', (line) => resolve(JSON.parse(line)));
  });
  // A server's first accepted socket is configured right after its 'connection' listeners: let that turn pass.
  await new Promise((resolve) => setTimeout(resolve, 100));
  send({ ev: 'ready', pid: process.pid, child: child.pid, main, worker: workerPorts, childPorts });
  process.stdin.resume().on('end', () => {
    child.stdin.end();
    process.exit(0);
  });
}

if (require.main === module) {
  if (process.argv[2] === 'child') {
    clients().then((ports) => {
      send(ports);
      process.stdin.resume().on('end', () => process.exit(0));
    }, (error) => {
      console.error(error);
      process.exit(1);
    });
  } else {
    main().catch((error) => {
      console.error(error);
      process.exit(1);
    });
  }
}

module.exports = { clients };
