'use strict';

// The Windows contract, run by a Windows node.exe (here under Wine, started by driver.js).
// node.exe has no working stdout under Wine when it is a pipe, so results go to a file, one JSON
// object a line. What only Linux can see (ss, nft) is asked of the driver through request files.
// usage: node.exe contract.js <package dir> <exchange dir>

const fs = require('fs');
const net = require('net');
const path = require('path');
const { Worker } = require('worker_threads');

const WSAENOPROTOOPT = 10042;

const [root, exchange] = process.argv.slice(2);
const resultsFile = path.join(exchange, 'results.jsonl');
const underWine = fs.existsSync('C:\\windows\\system32\\wineboot.exe') && fs.existsSync('Z:\\proc\\version');

const { applyKeepalive, getKeepalive } = require(root);
const { binding } = require(path.join(root, 'dist', 'binding.js'));

const opened = new Set();
let requestCount = 0;

function record(entry) {
  fs.appendFileSync(resultsFile, JSON.stringify(entry) + '\n');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function host(op, args) {
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

async function observe(local, remote) {
  const answer = await host('ss', { local, remote });
  if (!answer.found) throw new Error(`ss does not show a socket ${local} -> ${remote}`);
  return answer;
}

function keepaliveTimer(answer) {
  return answer.timer && answer.timer.name === 'keepalive' ? answer.timer.ms : undefined;
}

async function expectTimer(socket, keepalivetime, what) {
  const answer = await observe(socket.localPort, socket.remotePort);
  const ms = keepaliveTimer(answer);
  const ceiling = Math.ceil(keepalivetime / 1000) * 1000;
  if (ms === undefined || ms > ceiling || ms < ceiling - 2000) {
    throw new Error(`${what}: ss shows ${answer.timerText || 'no timer'}, expected a keepalive timer in [${ceiling - 2000}, ${ceiling}] ms (${keepalivetime} ms rounded up to whole seconds)`);
  }
  return `${what} timer ${answer.timerText} for ${keepalivetime} ms`;
}

async function expectNoKeepalive(socket, what) {
  const answer = await observe(socket.localPort, socket.remotePort);
  if (keepaliveTimer(answer) !== undefined) throw new Error(`${what}: expected no keepalive timer, ss shows ${answer.timerText}`);
  return `${what} has no keepalive timer`;
}

function track(socket) {
  opened.add(socket);
  socket.on('error', () => {});
  socket.on('close', () => opened.delete(socket));
  return socket;
}

function listen(server, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(server));
  });
}

function connectTo(server, host) {
  return new Promise((resolve, reject) => {
    const accepted = new Promise((done) => server.once('connection', done));
    const client = track(net.connect(server.address().port, host));
    client.once('error', reject);
    client.once('connect', async () => resolve({ client, accepted: track(await accepted) }));
  });
}

async function pair(host = '127.0.0.1', listenHost = host) {
  const server = await listen(net.createServer(), listenHost);
  const { client, accepted } = await connectTo(server, host);
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

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function wsaUnsupported(error, syscall) {
  return error.code === 'ERR_KEEPALIVE_UNSUPPORTED' && error.sysErrno === WSAENOPROTOOPT && error.syscall === syscall;
}

const tests = [];
function test(name, fn) {
  tests.push({ name, fn });
}

test('the package loads the win32-x64 N-API prebuild', async () => {
  assert(process.platform === 'win32' && process.arch === 'x64', `platform ${process.platform}-${process.arch}`);
  const file = require(require.resolve('node-gyp-build', { paths: [root] })).path(root);
  assert(/prebuilds[\\/]win32-x64[\\/]tcp-keepalive\.napi\.node$/.test(file), `node-gyp-build chose ${file}`);
  assert(typeof applyKeepalive === 'function' && typeof getKeepalive === 'function', 'exports');
  return `${process.version} loaded ${path.relative(root, file)}`;
});

test('client socket: SIO_KEEPALIVE_VALS shows in ss as the keepalive timer', async () => {
  const { server, client, accepted } = await pair();
  try {
    const before = await expectNoKeepalive(client, 'client before apply');
    applyKeepalive(client, { onoff: true, keepalivetime: 7000, keepaliveinterval: 1000 });
    const after = await expectTimer(client, 7000, 'client');
    const peer = await expectNoKeepalive(accepted, 'the accepted peer');
    return [before, after, peer].join('; ');
  } finally {
    closeAll(server);
  }
});

test('client socket: milliseconds are passed through (4500 ms shows as 5 s under Wine)', async () => {
  const { server, client } = await pair();
  try {
    applyKeepalive(client, { keepalivetime: 4500, keepaliveinterval: 1500 });
    return await expectTimer(client, 4500, 'client');
  } finally {
    closeAll(server);
  }
});

test('server: every accepted socket gets the settings, applied per socket', async () => {
  const server = net.createServer();
  applyKeepalive(server, { keepalivetime: 9000, keepaliveinterval: 1000 });
  await listen(server, '127.0.0.1');
  try {
    const notes = [];
    for (let i = 0; i < 3; i++) {
      const { client, accepted } = await connectTo(server, '127.0.0.1');
      notes.push(await expectTimer(accepted, 9000, `accepted #${i + 1}`));
      await expectNoKeepalive(client, `client #${i + 1}`);
    }
    return notes.join('; ');
  } finally {
    closeAll(server);
  }
});

test('dual-stack server on :: matches an IPv4 client (::ffff:127.0.0.1 normalised)', async () => {
  const server = net.createServer();
  applyKeepalive(server, { keepalivetime: 8000, keepaliveinterval: 1000 });
  await listen(server, '::');
  try {
    const { accepted } = await connectTo(server, '127.0.0.1');
    assert(accepted.remoteAddress === '::ffff:127.0.0.1', `accepted.remoteAddress is ${accepted.remoteAddress}`);
    const listener = binding.resolve(-1, '::', server.address().port, undefined, undefined);
    assert(typeof listener === 'number', 'the listener on :: resolves');
    return `${accepted.localAddress} <- ${accepted.remoteAddress}: ` + (await expectTimer(accepted, 8000, 'accepted'));
  } finally {
    closeAll(server);
  }
});

test('IPv6 loopback client', async () => {
  const { server, client } = await pair('::1');
  try {
    applyKeepalive(client, { keepalivetime: 6000, keepaliveinterval: 1000 });
    return await expectTimer(client, 6000, 'client [::1]');
  } finally {
    closeAll(server);
  }
});

test('onoff false turns keepalive off', async () => {
  const { server, client } = await pair();
  try {
    applyKeepalive(client, { keepalivetime: 7000, keepaliveinterval: 1000 });
    await expectTimer(client, 7000, 'client');
    applyKeepalive(client, { onoff: false });
    return await expectNoKeepalive(client, 'client after onoff false');
  } finally {
    closeAll(server);
  }
});

test('sticky: a later socket.setKeepAlive(true, 60000) does not undo the settings', async () => {
  const { server, client } = await pair();
  const control = (await connectTo(server, '127.0.0.1')).client;
  try {
    control.setKeepAlive(true, 60000);
    const answer = await observe(control.localPort, control.remotePort);
    const controlMs = keepaliveTimer(answer);
    const nodeWorks = controlMs !== undefined && controlMs > 50000;
    applyKeepalive(client, { keepalivetime: 7000, keepaliveinterval: 1000 });
    client.setKeepAlive(true, 60000);
    const after = await expectTimer(client, 7000, 'client after setKeepAlive(true, 60000)');
    const note = nodeWorks ? '' : ` (Node's own setKeepAlive showed ${answer.timerText || 'no timer'} on a control socket, so this proves less here)`;
    return `control socket timer ${answer.timerText}; ${after}${note}`;
  } finally {
    closeAll(server);
  }
});

test('getKeepalive: the values, or (Wine only) ERR_KEEPALIVE_UNSUPPORTED for WSAENOPROTOOPT', async (wine) => {
  const { server, client } = await pair();
  try {
    applyKeepalive(client, { keepalivetime: 7000, keepaliveinterval: 2000 });
    const notes = [];
    for (const [what, target] of [['client', client], ['listening server', server]]) {
      let values;
      try {
        values = getKeepalive(target);
      } catch (error) {
        if (underWine && wsaUnsupported(error, 'getsockopt(TCP_KEEPIDLE)')) {
          wine(`getKeepalive(${what}) -> ${error.code} (${error.syscall} failed with WSAENOPROTOOPT ${error.sysErrno}); accepted only because this is Wine, real Windows 10 1709+ returns the values`);
          notes.push(`${what}: unsupported under Wine (the socket was found)`);
          continue;
        }
        throw error;
      }
      if (what === 'client') {
        assert(values.onoff === true && values.keepalivetime === 7000 && values.keepaliveinterval === 2000, `getKeepalive(client) = ${JSON.stringify(values)}`);
      }
      notes.push(`${what}: ${JSON.stringify(values)}`);
    }
    return notes.join('; ');
  } finally {
    closeAll(server);
  }
});

test('keepalivecount: applied, or (Wine only) ERR_KEEPALIVE_UNSUPPORTED with nothing applied', async (wine) => {
  const { server, client } = await pair();
  try {
    try {
      applyKeepalive(client, { keepalivetime: 7000, keepaliveinterval: 1000, keepalivecount: 3 });
    } catch (error) {
      if (!(underWine && wsaUnsupported(error, 'setsockopt(TCP_KEEPCNT)'))) throw error;
      assert(Array.isArray(error.applied) && error.applied.length === 0, `error.applied = ${JSON.stringify(error.applied)}`);
      assert(!client.destroyed, 'a failed apply on a connected socket must not destroy it');
      await expectNoKeepalive(client, 'client after the failed apply');
      wine(`keepalivecount -> ${error.code} (setsockopt(TCP_KEEPCNT) WSAENOPROTOOPT ${error.sysErrno}), nothing applied; real Windows 10 1703+ sets it`);
      return `${error.code}: ${error.message}`;
    }
    return await expectTimer(client, 7000, 'client with keepalivecount 3');
  } finally {
    closeAll(server);
  }
});

test('usertimeout: TCP_MAXRT, or (Wine only) ERR_KEEPALIVE_UNSUPPORTED with nothing applied', async (wine) => {
  const { server, client } = await pair();
  try {
    try {
      applyKeepalive(client, { keepalivetime: 7000, keepaliveinterval: 1000, usertimeout: 4500 });
    } catch (error) {
      if (!(underWine && wsaUnsupported(error, 'setsockopt(TCP_MAXRT)'))) throw error;
      assert(Array.isArray(error.applied) && error.applied.length === 0, `error.applied = ${JSON.stringify(error.applied)}`);
      wine(`usertimeout -> ${error.code} (setsockopt(TCP_MAXRT) WSAENOPROTOOPT ${error.sysErrno}); real Windows sets TCP_MAXRT`);
      return `${error.code}: ${error.message}`;
    }
    return await expectTimer(client, 7000, 'client with usertimeout');
  } finally {
    closeAll(server);
  }
});

test('destroyed socket: ERR_SOCKET_CLOSED for apply and get, before and after a first apply', async () => {
  const { server, client, accepted } = await pair();
  try {
    applyKeepalive(client, { keepalivetime: 7000, keepaliveinterval: 1000 });
    client.destroy();
    accepted.destroy();
    const options = { keepalivetime: 7000, keepaliveinterval: 1000 };
    for (const [what, fn] of [
      ['apply after a first apply', () => applyKeepalive(client, options)],
      ['apply, never applied before', () => applyKeepalive(accepted, options)],
      ['getKeepalive', () => getKeepalive(client)],
    ]) {
      expectThrow(fn, (error) => assert(error.code === 'ERR_SOCKET_CLOSED', `${what}: ${error.code} ${error.message}`));
    }
    return 'ERR_SOCKET_CLOSED x3';
  } finally {
    closeAll(server);
  }
});

test('native lookup: an unknown or closed endpoint is ERR_KEEPALIVE_SOCKET_NOT_FOUND, never a guess', async () => {
  const { server, client } = await pair();
  try {
    const tuple = [client.localAddress, client.localPort, client.remoteAddress, client.remotePort];
    const sock = binding.resolve(-1, ...tuple);
    assert(binding.resolve(-1, ...tuple) === sock, 'a second resolve gives the same SOCKET');
    const listener = binding.resolve(-1, server.address().address, server.address().port, undefined, undefined);
    assert(listener !== sock, 'the listener resolves to its own SOCKET');
    const notFound = (error) => assert(error.code === 'ERR_KEEPALIVE_SOCKET_NOT_FOUND', `${error.code} ${error.message}`);
    expectThrow(() => binding.resolve(-1, '127.0.0.1', client.localPort, '127.0.0.1', 1), notFound);
    expectThrow(() => binding.resolve(-1, '127.0.0.2', client.localPort, client.remoteAddress, client.remotePort), notFound);
    expectThrow(() => binding.resolve(-1, 'not an address', 1, undefined, undefined), (error) => assert(error.code === 'EINVAL', `${error.code}`));
    client.destroy();
    await new Promise((resolve) => client.once('close', resolve));
    expectThrow(() => binding.resolve(-1, ...tuple), notFound);
    return `SOCKET ${sock}, listener ${listener}; closed socket no longer found`;
  } finally {
    closeAll(server);
  }
});

test('worker thread: its own event loop, its own lookup; the main loop cannot see its sockets', async () => {
  const source = `
    const { parentPort, workerData } = require('worker_threads');
    const net = require('net');
    const { applyKeepalive } = require(workerData.root);
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const client = net.connect(server.address().port, '127.0.0.1', () => {
        applyKeepalive(client, { keepalivetime: 5000, keepaliveinterval: 1000 });
        parentPort.postMessage({ localAddress: client.localAddress, localPort: client.localPort, remoteAddress: client.remoteAddress, remotePort: client.remotePort });
      });
      parentPort.once('message', () => { client.destroy(); server.close(); parentPort.close(); });
    });`;
  const worker = new Worker(source, { eval: true, workerData: { root } });
  try {
    const tuple = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const shown = await expectTimer(tuple, 5000, 'worker client');
    expectThrow(() => binding.resolve(-1, tuple.localAddress, tuple.localPort, tuple.remoteAddress, tuple.remotePort),
      (error) => assert(error.code === 'ERR_KEEPALIVE_SOCKET_NOT_FOUND', `main loop: ${error.code}`));
    return `${shown}; main loop: not found`;
  } finally {
    worker.postMessage('stop');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
});

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
});

test('dead peer: keepalivetime 3000 / interval 1000 ends in ETIMEDOUT once packets are dropped', async (wine) => {
  const { server, client } = await pair();
  try {
    applyKeepalive(client, { keepalivetime: 3000, keepaliveinterval: 1000 });
    const failed = new Promise((resolve) => client.once('error', resolve));
    const start = Date.now();
    const { probes } = await host('drop', { port: server.address().port });
    const expected = 3000 + 1000 * probes;
    const error = await Promise.race([failed, sleep(expected + 15000).then(() => undefined)]);
    const elapsed = Date.now() - start;
    assert(error !== undefined, `no error ${elapsed} ms after the peer went silent`);
    assert(error.code === 'ETIMEDOUT', `error ${error.code} ${error.message}`);
    assert(elapsed >= expected - 2000 && elapsed <= expected + 5000, `ETIMEDOUT after ${elapsed} ms, expected about ${expected} ms`);
    if (underWine) wine(`dead peer: ${probes} probes (Linux tcp_keepalive_probes, since Wine cannot set TCP_KEEPCNT)`);
    return { detail: `ETIMEDOUT after ${elapsed} ms (expected ${expected} ms: 3000 + ${probes} probes x 1000)`, metrics: { elapsed, expected } };
  } finally {
    await host('undrop', {});
    closeAll(server);
  }
});

async function main() {
  fs.writeFileSync(resultsFile, '');
  record({ event: 'start', node: process.version, underWine });
  const only = process.env.KA_CONTRACT_ONLY ? new RegExp(process.env.KA_CONTRACT_ONLY) : null;
  for (const { name, fn } of tests) {
    if (only && !only.test(name)) continue;
    const notes = [];
    const start = Date.now();
    try {
      const result = await fn((note) => notes.push(note));
      const { detail, metrics } = typeof result === 'object' && result !== null ? result : { detail: result };
      record({ name, ok: true, ms: Date.now() - start, detail, metrics, wine: notes });
    } catch (error) {
      record({ name, ok: false, ms: Date.now() - start, detail: error && error.stack ? error.stack : String(error), wine: notes });
    }
  }
  record({ event: 'end' });
}

setTimeout(() => {
  record({ name: 'contract run finished in time', ok: false, detail: 'timed out after 240 s' });
  process.exit(2);
}, 240000).unref();

main().then(() => process.exit(0), (error) => {
  record({ name: 'contract run', ok: false, detail: String(error && error.stack) });
  process.exit(1);
});
