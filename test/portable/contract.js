'use strict';

// The portable runner: plain JavaScript that any Node runs, with no test framework. It runs the contract's cases
// (test/support/contract.js) and the checks only this runner makes (the binary node-gyp-build picks, getTcpInfo's
// fields per OS, a worker's sockets, the Windows lookup and its cost, a dead peer).
// - Here, test/windows/run.sh runs it in real Windows node.exe builds under Wine and in this Linux Node, in a
//   private network namespace; the Linux side (test/windows/driver.js) answers requests for what only Linux
//   can see or do: `ss` (the keepalive timer), the kernel observer (the socket options, read from a duplicate
//   of the descriptor with pidfd_getfd) and `nft` (a peer that goes silent).
// - On the GitHub runners (windows-latest, macos-latest) it runs with no driver: the values are read back
//   through the OS with getsockopt and printed, and on macOS the dead peer is made with pfctl on lo0 (sudo).
// Every test runs on every platform unless it is marked for some platforms only, and then it is listed;
// KA_CONTRACT_REQUIRE=prefix|prefix makes the run fail unless tests with those names run.
// usage: node contract.js [<package dir> [<exchange dir>]]; the exit code is 0 only if every test passed.
// Results are printed, and with an exchange dir also written to <exchange>/results.jsonl (node.exe under Wine
// has no working stdout when it is a pipe).

const fs = require('fs');
const net = require('net');
const path = require('path');
const { execFileSync } = require('child_process');
const { Worker } = require('worker_threads');

const isMain = require.main === module;
const [rootArg, exchange] = isMain ? process.argv.slice(2) : [];
const root = path.resolve(rootArg || path.join(__dirname, '..', '..'));
const resultsFile = exchange ? path.join(exchange, 'results.jsonl') : undefined;
const underWine = process.platform === 'win32' && fs.existsSync('C:\\windows\\system32\\wineboot.exe') && fs.existsSync('Z:\\proc\\version');
const platform = underWine ? 'wine' : process.platform;

const { applyKeepalive, getKeepalive, getTcpInfo, setDefaultKeepalive } = require(root);
const { casesFor, runContract } = require('../support/contract.js');
const { binding } = require(path.join(root, 'dist', 'binding.js'));

const opened = new Set();
let requestCount = 0;

function record(entry) {
  if (resultsFile) fs.appendFileSync(resultsFile, JSON.stringify(entry) + '\n');
}

function print(line) {
  if (!resultsFile || process.platform !== 'win32') process.stdout.write(line + '\n');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** A request to the Linux driver; undefined when there is none (the GitHub runners). */
async function host(op, args) {
  if (!exchange) return undefined;
  const id = ++requestCount;
  const request = path.join(exchange, `req-${id}.json`);
  const reply = path.join(exchange, `res-${id}.json`);
  fs.writeFileSync(request + '.tmp', JSON.stringify({ op, ...args }));
  fs.renameSync(request + '.tmp', request);
  const deadline = Date.now() + 20000;
  while (!fs.existsSync(reply)) {
    if (Date.now() > deadline) throw new Error(`the Linux driver did not answer request ${op}`);
    await sleep(10);
  }
  const answer = JSON.parse(fs.readFileSync(reply, 'utf8'));
  if (answer.error) throw new Error(`driver ${op}: ${answer.error}`);
  return answer;
}

const endpoints = (socket) => ({ local: socket.localPort, remote: socket.remotePort });

/** ss's keepalive timer for a socket (with the Linux driver): armed at most keepalivetime ago when keepalive is on, absent when off. */
async function ssTimer(socket, want, what) {
  let ss = await host('ss', endpoints(socket));
  // Data still unacknowledged (a TLS handshake's last bytes, on a loaded machine) shows the retransmission
  // timer ("on") instead of keepalive's until it is acknowledged: read again, briefly.
  for (let i = 0; i < 10 && ss && ss.found && ss.timer && ss.timer.name === 'on'; i++) {
    await sleep(100);
    ss = await host('ss', endpoints(socket));
  }
  if (!ss) return undefined;
  assert(ss.found, `${what}: ss does not show ${socket.localPort} -> ${socket.remotePort}`);
  const keepalive = ss.timer && ss.timer.name === 'keepalive' ? ss.timer.ms : undefined;
  if (want.so_keepalive === 0) {
    assert(keepalive === undefined, `${what}: expected no keepalive timer, ss shows ${ss.timerText}`);
    return 'ss: no keepalive timer';
  }
  const ceiling = want.tcp_keepidle * 1000;
  const slack = /min$/.test(ss.timerText) ? 60000 : 2000; // ss shows whole minutes alone above an hour or so
  assert(keepalive !== undefined && keepalive <= ceiling && keepalive >= ceiling - slack, `${what}: ss shows ${ss.timerText || 'no timer'}, expected a keepalive timer in [${ceiling - slack}, ${ceiling}] ms`);
  return `ss timer ${ss.timerText}`;
}

function track(socket) {
  opened.add(socket);
  socket.on('error', (error) => {
    socket.lastError = error;
  });
  socket.on('close', () => opened.delete(socket));
  return socket;
}

function listen(server, address) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve(server));
  });
}

/** The sockets `server` accepted, tracked from the first connectTo() on, so each client finds its own. */
function acceptedBy(server) {
  if (!server.acceptedSockets) {
    server.acceptedSockets = [];
    server.on('connection', (socket) => server.acceptedSockets.push(track(socket)));
  }
  return server.acceptedSockets;
}

function connectTo(server, address) {
  const accepted = acceptedBy(server);
  return new Promise((resolve, reject) => {
    const client = track(net.connect(server.address().port, address));
    client.once('error', reject);
    client.once('connect', async () => {
      const deadline = Date.now() + 10000;
      let mine;
      while (!(mine = accepted.find((socket) => socket.remotePort === client.localPort))) {
        if (Date.now() > deadline) return reject(new Error(`the server did not accept ${client.localPort}`));
        await sleep(5);
      }
      resolve({ client, accepted: mine });
    });
  });
}

async function pair(address = '127.0.0.1', listenAddress = address) {
  const server = await listen(net.createServer(), listenAddress);
  const { client, accepted } = await connectTo(server, address);
  return { server, client, accepted };
}

function closeAll(...servers) {
  for (const socket of opened) socket.destroy();
  for (const server of servers) server.close();
}

function expectThrow(fn, check) {
  try {
    fn();
  } catch (error) {
    check(error);
    return error;
  }
  throw new Error('expected an error, none was thrown');
}

function expectCode(code, what) {
  return (error) => assert(error.code === code, `${what}: expected ${code}, got ${error.code} ${error.message}`);
}

const tests = [];
/** `only`: the platforms ('win32' = real Windows or Wine, 'wine', 'linux', 'darwin') a test belongs to. */
function test(name, fn, only) {
  tests.push({ name, fn, only });
}

/** Whether a test marked `only` runs on `where`: 'win32' (real Windows), 'wine', 'linux' or 'darwin'. */
const runsOn = (only, where) => !only || only.includes(where) || (where === 'wine' && only.includes('win32'));
const applies = (only) => runsOn(only, platform);

test('the package loads the N-API binary for this platform', async () => {
  const file = require(require.resolve('node-gyp-build', { paths: [root] })).path(root);
  if (underWine) assert(/prebuilds[\\/]win32-x64[\\/]tcp-keepalive\.napi\.node$/.test(file), `node-gyp-build chose ${file}`);
  assert(typeof applyKeepalive === 'function' && typeof getKeepalive === 'function', 'exports');
  return `${process.version} ${process.platform}-${process.arch}${underWine ? ' under Wine' : ''} loaded ${path.relative(root, file)}`;
});

let wineNotes = [];

// The contract's cases (test/support/contract.js), read back through getKeepalive everywhere and, with the Linux
// driver, through the kernel observer and ss.
runContract({
  test: (name, fn) => tests.push({ name, fn, shared: true }),
  lib: { applyKeepalive, getKeepalive, getTcpInfo, setDefaultKeepalive },
  platform: underWine ? 'wine' : process.platform === 'win32' ? 'win32' : process.platform === 'darwin' ? 'darwin' : 'linux',
  tlsKey: fs.readFileSync(path.join(root, 'test', 'fixtures', 'key.pem')),
  tlsCert: fs.readFileSync(path.join(root, 'test', 'fixtures', 'cert.pem')),
  tmpdir: exchange,
  read: exchange ? async (socket) => (await host('kernel', endpoints(socket))).options : undefined,
  observe: exchange ? ssTimer : undefined,
  unsupported: (note) => wineNotes.push(note),
});

/** The getTcpInfo fields each OS reports; every other one must be undefined there, never a made-up 0. */
const TCP_INFO_FIELDS = ['rtt', 'rttVariance', 'retransmits', 'totalRetransmits', 'probes', 'unacked', 'lastDataReceived', 'lastDataSent', 'lastAckReceived', 'bytesSent', 'bytesRetransmitted', 'bytesAcked'];
const TCP_INFO_REPORTED = {
  linux: TCP_INFO_FIELDS,
  darwin: ['rtt', 'rttVariance', 'totalRetransmits', 'bytesSent', 'bytesRetransmitted'],
  win32: ['rtt', 'bytesSent', 'bytesRetransmitted'],
  wine: ['rtt', 'bytesSent', 'bytesRetransmitted'],
};

test('getTcpInfo: the connection as the OS reports it, undefined for what it does not (Wine: ERR_KEEPALIVE_UNSUPPORTED without SIO_TCP_INFO)', async (wine) => {
  const { server, client, accepted } = await pair();
  try {
    const received = new Promise((resolve) => accepted.once('data', resolve));
    client.write(Buffer.alloc(1000, 0x6b));
    await received;
    await sleep(100);
    let info;
    try {
      info = getTcpInfo(client);
    } catch (error) {
      const unsupported = error.code === 'ERR_KEEPALIVE_UNSUPPORTED' && error.syscall === 'WSAIoctl(SIO_TCP_INFO)';
      if (!(underWine && unsupported)) throw error;
      wine(`getTcpInfo -> ERR_KEEPALIVE_UNSUPPORTED (WSAIoctl(SIO_TCP_INFO) fails with ${error.sysErrno} under Wine); Windows 10 1703+ answers`);
      return `${error.code} (${error.syscall}, ${error.sysErrno})`;
    }
    assert(info.state === 'ESTABLISHED', `state ${info.state}`);
    const reported = TCP_INFO_REPORTED[platform];
    for (const field of TCP_INFO_FIELDS) {
      if (!reported) break;
      const value = info[field];
      if (reported.includes(field)) assert(typeof value === 'number' && value >= 0, `${field} is ${value}, expected a number on ${platform}`);
      else assert(value === undefined, `${field} is ${value}, expected undefined on ${platform}`);
    }
    assert(info.bytesSent >= 1000, `bytesSent ${info.bytesSent}, 1000 were written`);
    assert(Object.keys(info.raw).length > 0, 'raw is empty');
    const ss = await host('ss', endpoints(client));
    const ssBytes = ss && /bytes_sent:(\d+)/.exec(ss.raw);
    if (ss) assert(ssBytes && Number(ssBytes[1]) === info.bytesSent, `ss shows ${ssBytes ? ssBytes[0] : 'no bytes_sent'}, getTcpInfo bytesSent ${info.bytesSent}`);
    const shown = Object.fromEntries(['state', ...TCP_INFO_FIELDS].filter((field) => info[field] !== undefined).map((field) => [field, info[field]]));
    return `${JSON.stringify(shown)}${ssBytes ? `; ss ${ssBytes[0]}` : ''}; raw: ${Object.keys(info.raw).length} fields`;
  } finally {
    closeAll(server);
  }
});

test('worker thread: the addon loads and applies in a worker, on the worker\'s own sockets', async () => {
  const source = `
    const { parentPort, workerData } = require('worker_threads');
    const net = require('net');
    const { applyKeepalive, getKeepalive } = require(workerData.root);
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const client = net.connect(server.address().port, '127.0.0.1', () => {
        applyKeepalive(client, { keepalivetime: 5000, keepaliveinterval: 1000, keepalivecount: 6 });
        parentPort.postMessage({ localPort: client.localPort, remotePort: client.remotePort, localAddress: client.localAddress,
          remoteAddress: client.remoteAddress, values: getKeepalive(client) });
      });
      parentPort.once('message', () => { client.destroy(); server.close(); parentPort.close(); });
    });`;
  const worker = new Worker(source, { eval: true, workerData: { root } });
  try {
    const found = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const v = found.values;
    assert(v.onoff && v.keepalivetime === 5000 && v.keepaliveinterval === 1000 && v.keepalivecount === 6, `getKeepalive in the worker: ${JSON.stringify(v)}`);
    const notes = [`worker getsockopt ${JSON.stringify(v)}`];
    const ss = await host('ss', { local: found.localPort, remote: found.remotePort });
    if (ss) notes.push(`ss timer ${ss.timerText}`);
    const kernel = await host('kernel', { local: found.localPort, remote: found.remotePort });
    if (kernel) {
      assert(kernel.options.tcp_keepidle === 5 && kernel.options.tcp_keepcnt === 6, `the kernel holds ${JSON.stringify(kernel.options)}`);
      notes.push(`kernel ${JSON.stringify(kernel.options)}`);
    }
    if (process.platform === 'win32') {
      expectThrow(() => binding.resolve(-1, found.localAddress, found.localPort, found.remoteAddress, found.remotePort), expectCode('ERR_KEEPALIVE_SOCKET_NOT_FOUND', 'the main loop'));
      notes.push("the main loop's lookup cannot see the worker's socket");
    }
    return notes.join('; ');
  } finally {
    worker.postMessage('stop');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
});

test('native lookup (Windows): an unknown or closed endpoint is ERR_KEEPALIVE_SOCKET_NOT_FOUND, never a guess', async () => {
  const { server, client } = await pair();
  try {
    const tuple = [client.localAddress, client.localPort, client.remoteAddress, client.remotePort];
    const sock = binding.resolve(-1, ...tuple);
    assert(binding.resolve(-1, ...tuple) === sock, 'a second resolve gives the same SOCKET');
    const listener = binding.resolve(-1, server.address().address, server.address().port, undefined, undefined);
    assert(listener !== sock, 'the listener resolves to its own SOCKET');
    const notFound = expectCode('ERR_KEEPALIVE_SOCKET_NOT_FOUND', 'resolve');
    expectThrow(() => binding.resolve(-1, '127.0.0.1', client.localPort, '127.0.0.1', 1), notFound);
    expectThrow(() => binding.resolve(-1, '127.0.0.2', client.localPort, client.remoteAddress, client.remotePort), notFound);
    expectThrow(() => binding.resolve(-1, 'not an address', 1, undefined, undefined), expectCode('EINVAL', 'a bad address'));
    client.destroy();
    await new Promise((resolve) => client.once('close', resolve));
    expectThrow(() => binding.resolve(-1, ...tuple), notFound);
    return `SOCKET ${sock}, listener ${listener}; closed socket no longer found`;
  } finally {
    closeAll(server);
  }
}, ['win32']);

async function openConnections(server, count) {
  const pairs = [];
  for (let i = 0; i < count; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 50); j++) batch.push(connectTo(server, '127.0.0.1'));
    pairs.push(...(await Promise.all(batch)));
  }
  return pairs;
}

/** Runs fn over items; the time per call (µs, printed only) and the lookup work per call (asserted). */
function perCall(fn, items) {
  if (global.gc && items.length > 1) global.gc();
  const [walks0, visited0, calls0] = binding.stats();
  const start = process.hrtime.bigint();
  for (const item of items) fn(item);
  const us = Number(process.hrtime.bigint() - start) / 1000 / items.length;
  const [walks1, visited1, calls1] = binding.stats();
  return { us, walks: (walks1 - walks0) / items.length, visited: (visited1 - visited0) / items.length, calls: (calls1 - calls0) / items.length };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function summarise(samples) {
  return {
    us: median(samples.map((s) => s.us)),
    walks: Math.max(...samples.map((s) => s.walks)),
    visited: Math.max(...samples.map((s) => s.visited)),
    calls: Math.max(...samples.map((s) => s.calls)),
  };
}

async function lookupCost(count) {
  const options = { keepalivetime: 7000, keepaliveinterval: 1000 };
  const server = await listen(net.createServer(), '127.0.0.1');
  try {
    const clients = (await openConnections(server, count)).map((p) => p.client);
    await sleep(300);
    const tuples = clients.map((c) => [c.localAddress, c.localPort, c.remoteAddress, c.remotePort]);
    const first = [perCall((c) => applyKeepalive(c, options), clients)];
    const hit = [1, 2, 3].map(() => perCall((t) => binding.resolve(-1, ...t), tuples));
    const fresh = [];
    for (let i = 0; i < 8; i++) {
      const { client } = await connectTo(server, '127.0.0.1');
      fresh.push(perCall((c) => applyKeepalive(c, options), [client]));
    }
    return { first: summarise(first), hit: summarise(hit), fresh: summarise(fresh) };
  } finally {
    closeAll(server);
    await sleep(100);
  }
}

test('lookup cost: the work per call does not grow from 20 to 600 open connections (times printed, not asserted)', async () => {
  await lookupCost(20);
  const small = await lookupCost(20);
  const large = await lookupCost(600);
  const fmt = (r) => `${r.us.toFixed(1)} us, ${r.walks.toFixed(2)} walks, ${r.calls.toFixed(1)} socket calls`;
  const detail = ['first apply', 'cached resolve', 'new connection']
    .map((name, i) => {
      const key = ['first', 'hit', 'fresh'][i];
      return `${name}: 20 conns ${fmt(small[key])} | 600 conns ${fmt(large[key])} | time ratio ${(large[key].us / small[key].us).toFixed(2)}x`;
    })
    .join('; ');
  assert(large.hit.walks === 0 && large.hit.calls <= 2, `a cached resolve must cost no walk and at most 2 socket calls: ${detail}`);
  assert(large.first.walks <= small.first.walks, `walks per apply to known connections must not grow with the connections (one walk serves many): ${detail}`);
  // Each connection here has two TCP handles in this process (client and accepted side). Each is described
  // with 2 socket calls on the walk that first sees it, and at most once more if a lookup falls back to the full
  // walk; 2 more confirm the match. A constant, whatever the number of connections.
  const perApply = 2 * 2 * 2 + 2 + 2;
  assert(small.first.calls <= perApply && large.first.calls <= perApply, `socket calls per first apply must stay under ${perApply}, whatever the connections: ${detail}`);
  assert(large.fresh.walks <= 1, `a new connection must cost at most one walk (no full re-describe): ${detail}`);
  assert(large.fresh.calls <= small.fresh.calls + 2 && large.fresh.calls <= perApply + 3, `socket calls per new connection must not grow with the connections: ${detail}`);
  return { detail, metrics: { small, large } };
}, ['win32']);


/** Makes the peer on `port` go silent: the Linux driver's nft here, pfctl on lo0 on macOS. */
async function drop(port) {
  if (exchange) return host('drop', { port });
  if (process.platform !== 'darwin') throw new Error('no way to silence a peer here: on Linux, run the contract through test/windows/run.sh (nft)');
  const anchor = 'com.apple/tcp-keepalive-contract';
  const rules = `block drop quick on lo0 proto tcp from any to any port ${port}\nblock drop quick on lo0 proto tcp from any port ${port} to any\n`;
  execFileSync('sudo', ['-n', 'pfctl', '-a', anchor, '-f', '-'], { input: rules, stdio: ['pipe', 'pipe', 'pipe'] });
  const enabled = require('child_process').spawnSync('sudo', ['-n', 'pfctl', '-E'], { encoding: 'utf8' });
  const token = /Token : (\d+)/.exec(`${enabled.stdout}${enabled.stderr}`);
  assert(enabled.status === 0 && token, `pfctl -E: ${enabled.stderr}`);
  const shown = execFileSync('sudo', ['-n', 'pfctl', '-a', anchor, '-s', 'rules'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { undo: () => {
    execFileSync('sudo', ['-n', 'pfctl', '-a', anchor, '-F', 'rules'], { stdio: 'ignore' });
    execFileSync('sudo', ['-n', 'pfctl', '-X', token[1]], { stdio: 'ignore' });
  }, how: `pfctl anchor ${anchor}: ${shown.trim().split('\n').join('; ')}` };
}

test('dead peer: keepalivetime 3000, interval 1000, count 3 end in ETIMEDOUT about 6 s after the peer goes silent', async () => {
  const { server, client } = await pair();
  let dropped;
  try {
    applyKeepalive(client, { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3 });
    const failed = new Promise((resolve) => client.once('error', resolve));
    const start = Date.now();
    dropped = await drop(server.address().port);
    const expected = 3000 + 1000 * 3;
    const error = await Promise.race([failed, sleep(expected + 15000).then(() => undefined)]);
    const elapsed = Date.now() - start;
    assert(error !== undefined, `no error ${elapsed} ms after the peer went silent`);
    assert(error.code === 'ETIMEDOUT', `error ${error.code} ${error.message}`);
    assert(elapsed >= expected - 2000 && elapsed <= expected + 5000, `ETIMEDOUT after ${elapsed} ms, expected about ${expected} ms`);
    return { detail: `ETIMEDOUT after ${elapsed} ms (expected ${expected} ms: 3000 + 3 probes x 1000)${dropped.how ? `; ${dropped.how}` : ''}`, metrics: { elapsed, expected } };
  } finally {
    if (exchange) await host('undrop', {});
    else if (dropped && dropped.undo) dropped.undo();
    closeAll(server);
  }
}, ['wine', 'linux', 'darwin']);

async function main() {
  if (resultsFile) fs.writeFileSync(resultsFile, '');
  const only = process.env.KA_CONTRACT_ONLY ? new RegExp(process.env.KA_CONTRACT_ONLY) : null;
  const plan = tests.filter((t) => applies(t.only) && (!only || only.test(t.name))).map((t) => t.name);
  record({ event: 'start', node: process.version, platform, underWine, plan });
  // KA_CONTRACT_REQUIRE (the GitHub jobs set it): tests that must run here, or the run fails before it starts.
  const required = process.env.KA_CONTRACT_REQUIRE ? process.env.KA_CONTRACT_REQUIRE.split('|') : [];
  const notPlanned = required.filter((prefix) => !plan.some((name) => name.startsWith(prefix)));
  if (notPlanned.length > 0) {
    print(`FAIL KA_CONTRACT_REQUIRE: no test here starts with ${notPlanned.map((p) => JSON.stringify(p)).join(', ')}`);
    return 1;
  }
  print(`portable contract: Node ${process.version}, ${platform}-${process.arch}${exchange ? ', with the Linux driver (ss, kernel observer, nft)' : ', observed through getsockopt'}`);
  let passed = 0;
  let failed = 0;
  for (const { name, fn, only: platforms } of tests) {
    if (only && !only.test(name)) continue;
    if (!applies(platforms)) {
      print(`  --   ${name}: belongs to ${platforms.join(', ')} only, not to ${platform}`);
      continue;
    }
    const notes = (wineNotes = []);
    const start = Date.now();
    try {
      const result = await fn((note) => notes.push(note));
      const { detail, metrics } = typeof result === 'object' && result !== null ? result : { detail: result };
      passed++;
      record({ name, ok: true, ms: Date.now() - start, detail, metrics, wine: notes });
      print(`  ok   ${name} (${Date.now() - start} ms)\n       ${detail}`);
    } catch (error) {
      failed++;
      const detail = error && error.stack ? error.stack : String(error);
      record({ name, ok: false, ms: Date.now() - start, detail, wine: notes });
      print(`  FAIL ${name}\n       ${detail.split('\n').join('\n       ')}`);
    }
    for (const note of notes) print(`       accepted only ${underWine ? 'under Wine' : 'as a known deviation'}: ${note}`);
  }
  record({ event: 'end' });
  print(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

if (isMain) {
  setTimeout(() => {
    record({ name: 'contract run finished in time', ok: false, detail: 'timed out after 240 s' });
    print('FAIL the contract did not finish in 240 s');
    process.exit(2);
  }, 240000).unref();

  main().then((code) => process.exit(code), (error) => {
    record({ name: 'contract run', ok: false, detail: String(error && error.stack) });
    print(`FAIL contract run: ${error && error.stack}`);
    process.exit(1);
  });
} else {
  /** The tests that run on `where` ('win32', 'wine', 'linux', 'darwin'), for test/release.test.ts. */
  module.exports = { planFor: (where) => [...casesFor(where).map((kase) => kase.name), ...tests.filter((t) => !t.shared && runsOn(t.only, where)).map((t) => t.name)] };
}
