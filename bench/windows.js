'use strict';
// Section 3, run inside Windows node.exe (here under Wine 10, through test/windows/run-js.sh): on Windows
// the OS socket is found by walking the event loop's handles and matching addresses, so the cost of an apply
// could grow with the number of open sockets. With 20, 200 and 2000 open connections (each has two TCP handles
// in this loop, the client's and the accepted one) this measures the first apply on a fresh socket (which has
// to find its SOCKET), a repeated apply on one socket, and, for reference, Node's own
// socket._handle.setKeepAlive(true, s) (setsockopt SO_KEEPALIVE and TCP_KEEPALIVE, and with libuv 1.52+
// (Node 24+) TCP_KEEPINTVL and TCP_KEEPCNT too; no SIO_KEEPALIVE_VALS).
// Usage: node.exe bench/windows.js [RESULT_FILE] [--quick]; RESULT_FILE may be a Linux path (Wine's Z: drive).
const { applyKeepalive } = require('..');
const { connect, listen, median, bestOfRounds, emit } = require('./support');
const net = require('node:net');

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
const LEVELS = [20, 200, 2000];
const FRESH = quick ? 20 : 60;
const REPEAT_CALLS = quick ? 1_000 : 5_000;
const ROUNDS = quick ? 3 : 7;
// No keepalivecount, so the figures hold for Windows before 10 1703 too, which cannot set it.
const CONFIGS = [
  { onoff: true, keepalivetime: 60_000, keepaliveinterval: 10_000 },
  { onoff: true, keepalivetime: 61_000, keepaliveinterval: 11_000 },
];

const resultArg = process.argv.slice(2).find((a) => !a.startsWith('--'));
if (resultArg) {
  process.env.BENCH_RESULT_FILE = process.platform === 'win32' && resultArg.startsWith('/') ? 'Z:' + resultArg.replace(/\//g, '\\') : resultArg;
}

async function main() {
  const accepted = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    accepted.push(socket);
  });
  const port = await listen(server);
  const firstApplies = async () => {
    const fresh = [];
    for (let i = 0; i < FRESH; i++) fresh.push(await connect(port));
    const ns = fresh.map((socket, i) => {
      const start = process.hrtime.bigint();
      applyKeepalive(socket, CONFIGS[i & 1]);
      return Number(process.hrtime.bigint() - start);
    });
    for (const socket of fresh) socket.destroy();
    return ns;
  };
  await firstApplies(); // warm-up: compiled code and the first walk of the loop are not counted
  const open = [];
  const levels = [];
  for (const level of LEVELS) {
    while (open.length < level) open.push(await connect(port));
    const firstNs = await firstApplies();

    const target = open[open.length - 1];
    const floorHandle = open[open.length - 2]._handle;
    const timed = bestOfRounds(
      [
        { name: 'repeat', run: (n) => { for (let i = 0; i < n; i++) applyKeepalive(target, CONFIGS[i & 1]); } },
        { name: 'floor', run: (n) => { for (let i = 0; i < n; i++) floorHandle.setKeepAlive(true, 60 + (i & 1)); } },
      ],
      ROUNDS,
      REPEAT_CALLS,
    );
    levels.push({ open: level, first: median(firstNs), firstBest: Math.min(...firstNs), repeat: timed.repeat.best, floor: timed.floor.best });
  }
  for (const socket of [...open, ...accepted]) socket.destroy();
  server.close();
  emit({ section: 'windows', platform: process.platform, node: process.version, fresh: FRESH, levels });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
