'use strict';
// Section 6: what setDefaultKeepalive costs on the paths it touches, as ratios measured in one run.
//  - client connects per second of this process's CPU: no default / the default / a default whose filter
//    returns false (the peer server runs in another process, with no default);
//  - server accepts per second of this process's CPU: no default / the default (the load comes from
//    bench/client.c, or a Node client process without a C compiler).
// The modes switch in the same process between rounds (setDefaultKeepalive(options) / null), so JIT state,
// heap and sockets are shared; rounds rotate, forwards and backwards, and the first one warms up.
const { execFileSync, fork } = require('node:child_process');
const net = require('node:net');
const { quick, listen, median, emit, nativeClient, CONFIGS } = require('./support');

const ROLE = process.argv[2];
const PER_ROUND = quick ? 2_000 : 8_000;
const ROUNDS = quick ? 2 : 10;
const IN_FLIGHT = 32;
const LIMIT_MS = quick ? 4_000 : 8_000;

const diagnosticsChannel = require('node:diagnostics_channel');
const { setDefaultKeepalive, getKeepalive, CONFIGURE_CHANNEL } = require('..');

/** A server in another process that closes every connection it accepts. */
function peer() {
  process.on('disconnect', () => process.exit(0));
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.destroy();
  });
  listen(server).then((port) => process.send({ port }));
}

/** Without a C compiler: a Node process that connects the same way. */
function nodeLoad() {
  process.on('disconnect', () => process.exit(0));
  process.on('message', ({ port, count }) => {
    let started = 0;
    let finished = 0;
    const next = () => {
      if (started >= count) {
        if (finished === started) process.send({ finished, errors: 0 });
        return;
      }
      started++;
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', () => {});
      socket.on('end', () => socket.resetAndDestroy());
      socket.on('close', () => {
        finished++;
        next();
      });
    };
    for (let i = 0; i < IN_FLIGHT; i++) next();
  });
}

function forkRole(role) {
  const child = fork(__filename, [role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () => new Promise((resolve) => child.once('message', resolve));
  return { child, next };
}

const cpuUs = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** `count` client connections from this process, IN_FLIGHT at a time, each reset as soon as it connects. */
function connectMany(port, count) {
  return new Promise((resolve, reject) => {
    let started = 0;
    let finished = 0;
    const next = () => {
      if (started >= count) {
        if (finished === started) resolve();
        return;
      }
      started++;
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', reject);
      socket.on('connect', () => socket.resetAndDestroy());
      socket.on('close', () => {
        finished++;
        next();
      });
    };
    for (let i = 0; i < IN_FLIGHT; i++) next();
  });
}

/** Every field given, as the README recommends (usertimeout included). */
const OPTIONS = { ...CONFIGS[0], usertimeout: 90_000 };

/** A subscriber to tcp-keepalive:configure that does what a metrics counter does: one addition per message. */
let configured = 0;
const onConfigure = () => {
  configured++;
};
const subscribe = (on) => (on ? diagnosticsChannel.subscribe(CONFIGURE_CHANNEL, onConfigure) : diagnosticsChannel.unsubscribe(CONFIGURE_CHANNEL, onConfigure));

const MODES = {
  without: () => (subscribe(false), setDefaultKeepalive(null)),
  default: () => (subscribe(false), setDefaultKeepalive(OPTIONS)),
  filtered: () => (subscribe(false), setDefaultKeepalive(OPTIONS, { filter: () => false })),
  subscribed: () => (subscribe(true), setDefaultKeepalive(OPTIONS)),
};

function rotations(modes, round) {
  const order = modes.map((_, k) => modes[(round + k) % modes.length]);
  return round % 2 ? order.reverse() : order;
}

async function clientSide() {
  const server = forkRole('peer');
  const { port } = await server.next();
  // Check first: with the default, a client socket holds it.
  MODES.default();
  const probe = net.connect(port, '127.0.0.1');
  probe.on('error', () => {});
  await new Promise((resolve) => probe.once('connect', resolve));
  const held = getKeepalive(probe);
  probe.destroy();
  if (held.keepalivetime !== OPTIONS.keepalivetime || held.usertimeout !== OPTIONS.usertimeout) throw new Error(`a client socket does not hold the default: ${JSON.stringify(held)}`);

  const samples = { without: [], default: [], filtered: [], subscribed: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const mode of rotations(Object.keys(MODES), round)) {
      MODES[mode]();
      const t = process.hrtime.bigint();
      const before = cpuUs();
      await connectMany(port, PER_ROUND);
      const cpu = cpuUs() - before;
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (round > 0) samples[mode].push({ cpuUsPerConn: cpu / PER_ROUND, connPerSec: (PER_ROUND / ms) * 1000 });
    }
  }
  MODES.without();
  if (configured === 0) throw new Error('the configure channel never published while subscribed');
  server.child.disconnect();
  return samples;
}

async function serverSide() {
  let accepted = 0;
  let inspect;
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    if (inspect) return inspect(socket);
    accepted++;
    // The default reaches an accepted socket right after the connection listeners: close it after that.
    queueMicrotask(() => socket.destroy());
  });
  const port = await listen(server);

  MODES.default();
  const held = await new Promise((resolve) => {
    inspect = (socket) => {
      inspect = undefined;
      // The default reaches an accepted socket right after the server's connection listeners.
      setImmediate(() => {
        resolve(getKeepalive(socket));
        socket.destroy();
      });
    };
    net.connect(port, '127.0.0.1').on('error', () => {});
  });
  if (held.keepalivetime !== OPTIONS.keepalivetime || held.usertimeout !== OPTIONS.usertimeout) throw new Error(`an accepted socket does not hold the default: ${JSON.stringify(held)}`);
  setDefaultKeepalive(null);

  const binary = nativeClient();
  const nodeClient = binary ? undefined : forkRole('load');
  const load = async (count) => {
    if (binary) return JSON.parse(execFileSync(binary, [String(port), String(count), String(LIMIT_MS), String(IN_FLIGHT)], { encoding: 'utf8', timeout: LIMIT_MS + 30_000 }));
    nodeClient.child.send({ port, count });
    return nodeClient.next();
  };

  const modes = ['without', 'default'];
  const samples = { without: [], default: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const mode of rotations(modes, round)) {
      MODES[mode]();
      const t = process.hrtime.bigint();
      const before = cpuUs();
      const acceptedBefore = accepted;
      // The load runs in another process; this one must stay free to accept, so wait without blocking.
      const run = binary ? await new Promise((resolve, reject) => {
        const child = require('node:child_process').execFile(binary, [String(port), String(PER_ROUND), String(LIMIT_MS), String(IN_FLIGHT)], { encoding: 'utf8' }, (error, stdout) => (error ? reject(error) : resolve(JSON.parse(stdout))));
        child.on('error', reject);
      }) : await load(PER_ROUND);
      const cpu = cpuUs() - before;
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      const n = accepted - acceptedBefore;
      if (run.errors > 0) throw new Error(`the load client saw ${run.errors} errors`);
      if (round > 0 && n > 0) samples[mode].push({ cpuUsPerConn: cpu / n, connPerSec: (n / ms) * 1000 });
    }
  }
  setDefaultKeepalive(null);
  nodeClient?.child.disconnect();
  server.close();
  return { samples, client: binary ? 'c' : 'node' };
}

// Best of rounds, as section 2: on a shared machine the noise only ever adds CPU time.
const summarize = (list) => ({
  cpuUsPerConn: Math.min(...list.map((s) => s.cpuUsPerConn)),
  cpuUsPerConnMedian: median(list.map((s) => s.cpuUsPerConn)),
  connPerSec: median(list.map((s) => s.connPerSec)),
});

async function main() {
  const client = await clientSide();
  const server = await serverSide();
  emit({
    section: 'default',
    rounds: ROUNDS,
    perRound: PER_ROUND,
    client: Object.fromEntries(Object.entries(client).map(([mode, list]) => [mode, summarize(list)])),
    server: Object.fromEntries(Object.entries(server.samples).map(([mode, list]) => [mode, summarize(list)])),
    loadClient: server.client,
  });
  process.exit(0);
}

const fail = (error) => {
  console.error(error);
  process.exit(1);
};

if (ROLE === 'peer') peer();
else if (ROLE === 'load') nodeLoad();
else main().catch(fail);
