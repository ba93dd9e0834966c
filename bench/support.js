'use strict';
// Helpers shared by the bench sections: connected loopback sockets, best-of-rounds timing, result hand-off.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const RESULT_PREFIX = 'BENCH_RESULT ';

/** Where the bench keeps what it installs or compiles: never part of the package. */
const scratch = process.env.BENCH_SCRATCH || path.join(__dirname, '.scratch');

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';

function listen(server, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

function connect(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** `count` client sockets connected over 127.0.0.1 to one server, and the server's accepted ends. */
async function connectedSockets(count) {
  const accepted = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    accepted.push(socket);
  });
  const port = await listen(server);
  const clients = [];
  for (let i = 0; i < count; i++) {
    const socket = await connect(port);
    socket.on('error', () => {});
    clients.push(socket);
  }
  while (accepted.length < count) await new Promise((resolve) => setImmediate(resolve));
  return {
    server,
    clients,
    accepted,
    close() {
      for (const socket of [...clients, ...accepted]) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Nanoseconds per call of `run(n)`, which makes `n` calls. */
function nsPerCall(run, n) {
  const start = process.hrtime.bigint();
  run(n);
  return Number(process.hrtime.bigint() - start) / n;
}

/**
 * Runs every contender `rounds` times for `n` calls each (or its own `calls`), interleaved and in a rotating
 * order so that drift (clock frequency, a neighbour's load) falls on all of them alike. The first round warms
 * up and is not counted. Returns, per contender name, the best and the median ns/call.
 */
function bestOfRounds(contenders, rounds, n) {
  const samples = new Map(contenders.map((c) => [c.name, []]));
  for (let round = 0; round <= rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const contender = contenders[(round + k) % contenders.length];
      const ns = nsPerCall(contender.run, contender.calls ?? n);
      if (round > 0) samples.get(contender.name).push(ns);
    }
  }
  const out = {};
  for (const c of contenders) {
    const list = samples.get(c.name);
    out[c.name] = { best: Math.min(...list), median: median(list), rounds: list.length, calls: c.calls ?? n };
  }
  return out;
}

function median(list) {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Hands a section's result to bench/run.js: one prefixed JSON line on stdout, and a file when one is named. */
function emit(result) {
  const line = RESULT_PREFIX + JSON.stringify(result) + '\n';
  const file = process.env.BENCH_RESULT_FILE;
  if (file) fs.writeFileSync(file, line);
  process.stdout.write(line);
}

function parseResult(stdout) {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith(RESULT_PREFIX));
  return line === undefined ? undefined : JSON.parse(line.slice(RESULT_PREFIX.length));
}

/** Two full configurations that differ in every field, so no layer can skip a repeated call. */
const CONFIGS = [
  { onoff: true, keepalivetime: 60_000, keepaliveinterval: 10_000, keepalivecount: 5 },
  { onoff: true, keepalivetime: 61_000, keepaliveinterval: 11_000, keepalivecount: 6 },
];

/** Compiles bench/<name>.c into the scratch folder; returns the binary, or undefined without a compiler (or with BENCH_NODE_CLIENT=1). */
function compileC(name) {
  if (process.env.BENCH_NODE_CLIENT === '1') return undefined;
  const source = path.join(__dirname, `${name}.c`);
  const binary = path.join(scratch, name);
  try {
    if (!fs.existsSync(binary) || fs.statSync(binary).mtimeMs < fs.statSync(source).mtimeMs) {
      fs.mkdirSync(scratch, { recursive: true });
      execFileSync(process.env.CC || 'cc', ['-O2', '-o', binary, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    return binary;
  } catch {
    return undefined;
  }
}

/** Compiles bench/client.c into the scratch folder; returns the binary, or undefined without a compiler. */
function nativeClient() {
  return compileC('client');
}

module.exports = { compileC, nativeClient, scratch, quick, listen, connect, connectedSockets, nsPerCall, bestOfRounds, median, emit, parseResult, CONFIGS };
