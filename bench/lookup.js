'use strict';
// Section 5: finding a descriptor by its addresses, as on a runtime that exposes none (Deno's TCP handles, Bun's
// HTTP sockets). The native lookup scans this process's descriptor table, caches what it finds by addresses and
// verifies every hit with getsockname/getpeername. This calls it directly (binding.resolve(-1, addresses…)) with
// 20 and 2000 descriptors open and measures the mean per socket, each connection's two ends looked up as it opens:
//   fresh   a socket just connected or accepted, on a new descriptor number (an incremental scan: no system call
//           for a connection it already knows, so it should cost about the same at 20 and at 2000);
//   hit     a socket looked up before (a cache hit, verified with one getsockname and one getpeername);
//   reused  a socket that took the number of one closed since the last scan (the incremental scan cannot tell a
//           reused number from the socket it knew, so this costs a full scan: it grows with the table).
// Usage: node bench/lookup.js [--quick]
const fs = require('node:fs');
const net = require('node:net');
const { binding } = require('../dist/binding.js');
const { listen, connect, bestOfRounds, emit, quick } = require('./support');

const LEVELS = [20, 2000];
const FRESH = quick ? 10 : 40;
const REUSED = quick ? 4 : 10;
const HIT_CALLS = quick ? 2_000 : 20_000;
const ROUNDS = quick ? 3 : 7;

const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;

function resolveSocket(socket) {
  return binding.resolve(-1, socket.localAddress, socket.localPort, socket.remoteAddress, socket.remotePort);
}

/** ns and socket calls for one lookup of each socket, and whether each found the socket's real descriptor. */
function lookups(sockets) {
  const ns = [];
  const calls = [];
  for (const socket of sockets) {
    const before = binding.stats()[2];
    const start = process.hrtime.bigint();
    const fd = resolveSocket(socket);
    ns.push(Number(process.hrtime.bigint() - start));
    calls.push(binding.stats()[2] - before);
    if (fd !== socket._handle.fd) throw new Error(`lookup found descriptor ${fd} for a socket on ${socket._handle.fd}`);
  }
  return { ns, calls };
}

function merge(into, more) {
  into.ns.push(...more.ns);
  into.calls.push(...more.calls);
}

const mean = (list) => list.reduce((a, b) => a + b, 0) / list.length;

async function main() {
  if (process.platform === 'win32') throw new Error('bench/lookup.js measures the POSIX lookup');
  const accepted = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    accepted.push(socket);
  });
  const port = await listen(server);
  const pair = async () => {
    const client = await connect(port);
    client.on('error', () => {});
    while (accepted.length === 0 || accepted[accepted.length - 1].remotePort !== client.localPort) await new Promise((r) => setImmediate(r));
    return [client, accepted[accepted.length - 1]];
  };
  const pairs = async (n) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(...(await pair()));
    return out;
  };

  lookups(await pairs(2)); // warm-up: compiled code and the first scan of the table are not counted

  const held = [];
  const levels = [];
  for (const level of LEVELS) {
    while (openDescriptors() < level - FRESH) held.push(...(await pairs(1)));
    const open = openDescriptors();
    lookups(held); // everything held is known: what follows measures only the new sockets

    const fresh = { ns: [], calls: [] };
    for (let i = 0; i < FRESH / 2; i++) merge(fresh, lookups(await pair()));

    // Close some known sockets, let their numbers be taken again, and look the new ones up.
    const victims = held.splice((held.length >> 2) * 2, REUSED); // whole pairs: closing one end closes the other
    for (const socket of victims) socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const reused = { ns: [], calls: [] };
    for (let i = 0; i < REUSED / 2; i++) {
      const sockets = await pair();
      merge(reused, lookups(sockets));
      held.push(...sockets);
    }

    const target = held[held.length >> 1];
    resolveSocket(target);
    const timed = bestOfRounds([{ name: 'hit', run: (n) => { for (let i = 0; i < n; i++) resolveSocket(target); } }], ROUNDS, HIT_CALLS);
    const before = binding.stats()[2];
    resolveSocket(target);
    const hitCalls = binding.stats()[2] - before;

    levels.push({
      open,
      fresh: mean(fresh.ns),
      freshCalls: mean(fresh.calls),
      reused: mean(reused.ns),
      reusedCalls: mean(reused.calls),
      hit: timed.hit.best,
      hitCalls,
    });
  }
  for (const socket of [...held, ...accepted]) socket.destroy();
  server.close();
  emit({ section: 'lookup', platform: process.platform, node: process.version, fresh: FRESH, reused: REUSED, levels });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
