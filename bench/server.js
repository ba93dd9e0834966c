'use strict';
// Section 2: connections a net.Server accepts per second with and without applyKeepalive(server, ...), and,
// for reference, with Node's own `net.createServer({ keepAlive: true })` (idle time only, set per connection).
//
// Each server runs in a process of its own, and the client in another, so that nothing shares an event loop
// with the server measured; on a 2-core machine the server and the client run on a core each. The client is
// bench/client.c when a C compiler is there: a Node client costs about as much per connection as the Node
// server, so it, not the server, would set the pace and hide the server's overhead (the Node client is the
// fallback; the table then shows how busy the server was). The client keeps a fixed number of connections in
// flight; each one waits for the server to accept and close it (the server's FIN), then resets (no TIME_WAIT
// piles up over a run). The server's own CPU time is read around every round, which gives its cost per
// connection whether or not it was saturated: that is the figure judged. Rounds rotate through the servers,
// forwards and backwards, to cancel drift; the first round warms up and is not counted.
const { execFileSync, fork } = require('node:child_process');
const net = require('node:net');
const { quick, listen, median, emit, nativeClient, CONFIGS } = require('./support');

const ROLE = process.argv[2];
const PER_ROUND = quick ? 3_000 : 10_000;
const ROUNDS = quick ? 2 : 12;
const ROUND_LIMIT_MS = quick ? 4_000 : 8_000;
const IN_FLIGHT = 32;

/** mode: 'without' keepalive, 'with' applyKeepalive(server, ...), or 'node': Node's own keepAlive server option. */
async function serve(mode) {
  process.on('disconnect', () => process.exit(0));
  const withKeepalive = mode === 'with';
  let accepted = 0;
  let inspect;
  const options = mode === 'node' ? { keepAlive: true, keepAliveInitialDelay: CONFIGS[0].keepalivetime } : {};
  const server = net.createServer(options, (socket) => {
    socket.on('error', () => {});
    if (inspect) return inspect(socket);
    accepted++;
    socket.destroy();
  });
  if (withKeepalive) require('..').applyKeepalive(server, CONFIGS[0]);
  const port = await listen(server);
  process.on('message', (msg) => {
    if (msg === 'mark') {
      const { user, system } = process.cpuUsage();
      process.send({ accepted, cpuUs: user + system });
    } else if (msg === 'check') {
      if (withKeepalive) {
        inspect = (socket) => {
          inspect = undefined;
          const held = require('..').getKeepalive(socket);
          socket.destroy();
          probe.destroy();
          process.send({ held });
        };
        const probe = net.connect({ port, host: '127.0.0.1' });
        probe.on('error', () => {});
      } else {
        process.send({ held: null });
      }
    } else if (msg === 'exit') {
      server.close();
      process.disconnect();
    }
  });
  process.send({ port });
}

function hammer(port, count, limitMs) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const deadline = Date.now() + limitMs;
    let started = 0;
    let finished = 0;
    let errors = 0;
    let firstError;
    const next = () => {
      if (started >= count || Date.now() > deadline) {
        if (finished === started) {
          const ms = Number(process.hrtime.bigint() - start) / 1e6;
          resolve({ finished, errors, ms, firstError });
        }
        return;
      }
      started++;
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', (error) => {
        errors++;
        firstError ??= error.code || error.message;
      });
      socket.on('end', () => socket.resetAndDestroy());
      socket.on('close', () => {
        finished++;
        next();
      });
    };
    for (let i = 0; i < IN_FLIGHT; i++) next();
  });
}

function spawnClient() {
  const binary = nativeClient();
  if (binary) {
    return {
      kind: 'c',
      async run(port, count, limitMs) {
        const out = execFileSync(binary, [String(port), String(count), String(limitMs), String(IN_FLIGHT)], { encoding: 'utf8', timeout: limitMs + 30_000 });
        return JSON.parse(out);
      },
      close() {},
    };
  }
  const role = spawnRole('client');
  const ready = role.ask();
  return {
    kind: 'node',
    async run(port, count, limitMs) {
      await ready;
      return role.ask({ port, count, limitMs });
    },
    close() {
      role.child.send('exit');
    },
  };
}

function client() {
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (msg) => {
    if (msg === 'exit') return process.disconnect();
    process.send(await hammer(msg.port, msg.count, msg.limitMs));
  });
  process.send({ ready: true });
}

function spawnRole(...args) {
  const child = fork(__filename, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies = [];
  const waiters = [];
  child.on('message', (msg) => (waiters.length ? waiters.shift().resolve(msg) : replies.push(msg)));
  child.on('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`bench/server.js ${args.join(' ')} exited with ${code}`));
  });
  return {
    child,
    ask(msg) {
      if (msg !== undefined) child.send(msg);
      return replies.length ? Promise.resolve(replies.shift()) : new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
  };
}

const MODES = ['without', 'with', 'node'];

async function main() {
  const servers = Object.fromEntries(MODES.map((mode) => [mode, spawnRole('serve', mode)]));
  const ports = {};
  for (const mode of MODES) ports[mode] = (await servers[mode].ask()).port;
  const load = spawnClient();

  const samples = Object.fromEntries(MODES.map((mode) => [mode, []]));
  for (let round = 0; round <= ROUNDS; round++) {
    const order = MODES.map((_, k) => MODES[(round + k) % MODES.length]);
    if (round % 2) order.reverse();
    for (const mode of order) {
      const before = await servers[mode].ask('mark');
      const run = await load.run(ports[mode], PER_ROUND, ROUND_LIMIT_MS);
      const after = await servers[mode].ask('mark');
      if (run.errors > 0) throw new Error(`client saw ${run.errors} connection errors against the server ${mode} keepalive (first: ${run.firstError})`);
      const accepted = after.accepted - before.accepted;
      if (accepted !== run.finished) throw new Error(`server ${mode} keepalive accepted ${accepted} connections, client finished ${run.finished}`);
      if (round === 0) continue;
      const cpuMs = (after.cpuUs - before.cpuUs) / 1000;
      if (process.env.BENCH_DEBUG) console.error(mode, Math.round((accepted / run.ms) * 1000), 'conn/s', ((cpuMs * 1000) / accepted).toFixed(1), 'us/conn', (cpuMs / run.ms).toFixed(2), 'busy');
      samples[mode].push({ connPerSec: (accepted / run.ms) * 1000, cpuUsPerConn: (cpuMs * 1000) / accepted, serverBusy: cpuMs / run.ms, connections: accepted });
    }
  }

  const { held } = await servers.with.ask('check');
  const want = CONFIGS[0];
  if (!held || held.keepalivetime !== want.keepalivetime || held.keepaliveinterval !== want.keepaliveinterval || held.keepalivecount !== want.keepalivecount || !held.onoff) {
    throw new Error(`an accepted connection does not hold the server's keepalive settings: ${JSON.stringify(held)}`);
  }

  for (const mode of MODES) servers[mode].child.send('exit');
  load.close();

  const summarize = (list) => ({
    connPerSec: Math.max(...list.map((s) => s.connPerSec)),
    connPerSecMedian: median(list.map((s) => s.connPerSec)),
    cpuUsPerConn: Math.min(...list.map((s) => s.cpuUsPerConn)),
    cpuUsPerConnMedian: median(list.map((s) => s.cpuUsPerConn)),
    serverBusy: median(list.map((s) => s.serverBusy)),
    connections: list.reduce((n, s) => n + s.connections, 0),
  });
  emit({
    section: 'server',
    client: load.kind,
    rounds: ROUNDS,
    perRound: PER_ROUND,
    inFlight: IN_FLIGHT,
    ...Object.fromEntries(MODES.map((mode) => [mode, summarize(samples[mode])])),
  });
}

const fail = (error) => {
  console.error(error);
  process.exit(1);
};

if (ROLE === 'serve') serve(process.argv[3]).catch(fail);
else if (ROLE === 'client') client();
else main().catch(fail);
