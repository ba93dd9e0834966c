'use strict';

// Runs the portable contract (test/portable/contract.js) in real Windows node.exe builds under Wine 10, then in
// this Linux Node, inside a private network namespace (run.sh starts this file with `unshare --net`). It
// answers the contract's requests for what only Linux can see or do: `ss` for a socket's keepalive timer, the
// kernel observer (test/support/sockopt-observer.c: pidfd_getfd on the descriptor `ss -p` names, then
// getsockopt; Wine keeps a Windows SOCKET as a Linux socket) and `nft` to make a peer go silent. All traffic
// stays on this namespace's loopback.

const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '../..');
const cache = path.join(root, '.cache', 'windows');
const run = path.join(cache, 'run');
const prefix = path.join(run, 'prefix');
const versions = (process.env.KA_WINDOWS_NODE_VERSIONS || '20.20.2 22.23.3 24.21.0 26.10.0').split(/\s+/).filter(Boolean);
const contract = path.join(root, 'test', 'portable', 'contract.js');
const observerBinary = path.join(cache, 'sockopt-observer');
const NFT_TABLE = 'tcp_keepalive_test';
const CONTRACT_TIMEOUT_MS = 300000;

const wineEnv = {
  ...process.env,
  WINEPREFIX: prefix,
  WINEDEBUG: '-all',
  WINEDLLOVERRIDES: 'mscoree,mshtml=',
  PREBUILDS_ONLY: '1',
};
delete wineEnv.DISPLAY;
delete wineEnv.WAYLAND_DISPLAY;

function log(line) {
  process.stdout.write(line + '\n');
}

function sh(file, args, options = {}) {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

function windowsPath(p) {
  return 'Z:' + path.resolve(p).replace(/\//g, '\\');
}

function assertPrivateNetns() {
  const outside = process.env.KA_OUTER_NETNS;
  if (!outside || fs.readlinkSync('/proc/self/ns/net') === outside) {
    throw new Error('driver.js must run in its own network namespace (test/windows/run.sh starts it with unshare --net)');
  }
  sh('ip', ['link', 'set', 'lo', 'up']);
}

function checkExports(nodeExe) {
  const def = fs.readFileSync(path.join(cache, 'build', 'node.def'), 'utf8').split('\n').slice(2).filter(Boolean);
  const table = sh('x86_64-w64-mingw32-objdump', ['-p', nodeExe], { maxBuffer: 64 << 20 });
  const exported = new Set([...table.matchAll(/^\s*\[\s*\d+\] (\S+)$/gm)].map((m) => m[1]));
  const missing = def.filter((name) => !exported.has(name));
  if (missing.length > 0) throw new Error(`${nodeExe} does not export ${missing.join(', ')}`);
  return def.length;
}

function wineTool(file, args) {
  const output = fs.openSync(path.join(run, 'wine-setup.log'), 'a');
  try {
    execFileSync(file, args, { env: wineEnv, stdio: ['ignore', output, output] });
  } finally {
    fs.closeSync(output);
  }
}

function setUpWine() {
  fs.rmSync(run, { recursive: true, force: true });
  fs.mkdirSync(prefix, { recursive: true });
  const start = Date.now();
  wineTool('wineserver', ['-p']);
  wineTool('wineprefix-init', []);
  return Date.now() - start;
}

function tearDownWine() {
  try {
    wineTool('wineserver', ['-k']);
  } catch {}
  fs.rmSync(prefix, { recursive: true, force: true });
}

function parseSsTimer(text) {
  const m = /^(?:(\d+)min)?(?:(\d+)(sec|\.))?(?:(\d+)ms)?$/.exec(text);
  if (!m) return undefined;
  return Number(m[1] || 0) * 60000 + Number(m[2] || 0) * 1000 + Number(m[4] || 0);
}

function observe({ local, remote }) {
  const filter = ['sport', '=', `:${local}`, 'and', 'dport', '=', `:${remote}`];
  const output = sh('ss', ['-tnoiH', 'state', 'established', ...filter]);
  const found = output.trim().length > 0;
  const m = /timer:\((\w+),([^,]+),(\d+)\)/.exec(output);
  if (!m) return { found, timer: null, timerText: '', raw: output };
  return { found, timer: { name: m[1], ms: parseSsTimer(m[2]), retransmits: Number(m[3]) }, timerText: `${m[1]},${m[2]}`, raw: output };
}

function buildObserver() {
  sh('cc', ['-O2', '-Wall', '-o', observerBinary, path.join(root, 'test', 'support', 'sockopt-observer.c')]);
}

/** The socket options the kernel holds for the connection local -> remote, read through a process that owns it. */
function kernel({ local, remote }) {
  const filter = ['sport', '=', `:${local}`, 'and', 'dport', '=', `:${remote}`];
  const output = sh('ss', ['-tnpH', 'state', 'established', ...filter]);
  const owners = [...output.matchAll(/\("([^"]+)",pid=(\d+),fd=(\d+)\)/g)].map((m) => ({ name: m[1], pid: m[2], fd: m[3] }));
  const owner = owners.find((o) => o.name !== 'wineserver') || owners[0];
  if (!owner) throw new Error(`ss -p names no process for ${local} -> ${remote}: ${output.trim() || 'no socket'}`);
  const options = JSON.parse(sh(observerBinary, [owner.pid, owner.fd]));
  return { owner: `${owner.name} fd ${owner.fd}`, options };
}

function drop({ port }) {
  const script = [
    `add table inet ${NFT_TABLE}`,
    `add chain inet ${NFT_TABLE} input { type filter hook input priority 0; policy accept; }`,
    `add rule inet ${NFT_TABLE} input iifname "lo" tcp sport ${port} drop`,
    `add rule inet ${NFT_TABLE} input iifname "lo" tcp dport ${port} drop`,
  ].join('\n');
  sh('nft', ['-f', '-'], { input: script, stdio: ['pipe', 'pipe', 'pipe'] });
  const probes = Number(fs.readFileSync('/proc/sys/net/ipv4/tcp_keepalive_probes', 'utf8'));
  return { probes };
}

function undrop() {
  try {
    sh('nft', ['delete', 'table', 'inet', NFT_TABLE]);
  } catch {}
  return {};
}

const handlers = { ss: observe, kernel, drop, undrop };

function serveRequests(exchange) {
  for (const name of fs.readdirSync(exchange)) {
    const m = /^req-(\d+)\.json$/.exec(name);
    if (!m) continue;
    const reply = path.join(exchange, `res-${m[1]}.json`);
    if (fs.existsSync(reply)) continue;
    let answer;
    try {
      const request = JSON.parse(fs.readFileSync(path.join(exchange, name), 'utf8'));
      answer = handlers[request.op](request);
    } catch (error) {
      answer = { error: String(error.message || error) };
    }
    fs.writeFileSync(reply + '.tmp', JSON.stringify(answer));
    fs.renameSync(reply + '.tmp', reply);
  }
}

function runContract(target) {
  const exchange = path.join(run, target.name);
  fs.mkdirSync(exchange, { recursive: true });
  const output = fs.openSync(path.join(exchange, 'stdout.txt'), 'w');
  const child = target.wine
    ? spawn('wine', [target.exe, '--expose-gc', windowsPath(contract), windowsPath(root), windowsPath(exchange)], { env: wineEnv, stdio: ['ignore', output, output] })
    : spawn(target.exe, ['--expose-gc', contract, root, exchange], { stdio: ['ignore', output, output] });
  fs.closeSync(output);
  return new Promise((resolve) => {
    const poll = setInterval(() => serveRequests(exchange), 10);
    const timer = setTimeout(() => child.kill('SIGKILL'), CONTRACT_TIMEOUT_MS);
    const done = (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      undrop();
      resolve({ code, signal, exchange });
    };
    child.on('exit', done);
    child.on('error', (error) => {
      fs.appendFileSync(path.join(exchange, 'stdout.txt'), `driver: could not start ${target.exe}: ${error.message}\n`);
      done(null, error.code);
    });
  });
}

function readResults(exchange) {
  const file = path.join(exchange, 'results.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

async function main() {
  assertPrivateNetns();
  buildObserver();
  let passed = 0;
  let failed = 0;
  const wineNotes = new Set();
  const summary = [];

  const fail = (name, detail) => {
    failed++;
    log(`  FAIL ${name}\n       ${String(detail).split('\n').join('\n       ')}`);
  };

  const wineVersion = sh('wine', ['--version']).trim();
  log(`wine: ${wineVersion}, prefix ${path.relative(root, prefix)}`);
  const setupMs = setUpWine();
  log(`wine: prefix ready in ${(setupMs / 1000).toFixed(1)} s (wineserver -p, wineprefix-init: wineboot -i, winecfg -v win10)`);

  const targets = [
    ...versions.map((version) => ({ name: `node-${version}`, label: `node.exe ${version} under ${wineVersion}`, exe: path.join(cache, `node-${version}`, 'node.exe'), wine: true })),
    { name: 'linux', label: `Linux Node ${process.version} (the same contract, as a check that it is live code)`, exe: process.execPath, wine: false },
  ];
  try {
    for (const target of targets) {
      log(`\n${target.label}`);
      const before = passed;
      const failedBefore = failed;
      if (target.wine) {
        try {
          const count = checkExports(target.exe);
          passed++;
          log(`  ok   node.exe exports all ${count} napi_/uv_ symbols the prebuild imports`);
        } catch (error) {
          fail('node.exe exports the symbols the prebuild imports', error.message);
        }
      }

      const start = Date.now();
      const { code, signal, exchange } = await runContract(target);
      const results = readResults(exchange);
      const begin = results.find((r) => r.event === 'start');
      const end = results.find((r) => r.event === 'end');
      for (const r of results.filter((r) => r.name)) {
        for (const note of r.wine || []) wineNotes.add(note);
        if (r.ok) {
          passed++;
          log(`  ok   ${r.name} (${r.ms} ms)\n       ${r.detail}`);
        } else {
          fail(r.name, r.detail);
        }
      }
      if (!begin || begin.underWine !== target.wine) fail(`${target.label} started${target.wine ? ' and saw Wine' : ''}`, `no start record; see ${path.relative(root, exchange)}/stdout.txt`);
      const missing = begin ? begin.plan.filter((name) => !results.some((r) => r.name === name)) : [];
      if (missing.length > 0) fail(`${target.label} ran every test it planned`, `no result for: ${missing.join('; ')}`);
      if (!end || code !== 0) {
        const stdout = fs.readFileSync(path.join(exchange, 'stdout.txt'), 'utf8').slice(-2000);
        fail(`${target.label} ran the contract to the end`, `exit ${code} ${signal || ''}\n${stdout}`);
      }
      const seconds = ((Date.now() - start) / 1000).toFixed(1);
      summary.push(`${target.label.split(' (')[0]}: ${passed - before} passed, ${failed - failedBefore} failed, ${seconds} s`);
      log(`  ${target.label.split(' (')[0]}: ${seconds} s`);
    }
  } finally {
    tearDownWine();
  }

  if (wineNotes.size > 0) {
    log(`\n!!! Accepted ONLY because this is ${wineVersion}, not Windows (real Windows must pass these for real, in the GitHub job):`);
    for (const note of wineNotes) log(`!!!   ${note}`);
  }
  log(`\n${summary.join('\n')}`);
  log(`\n${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    tearDownWine();
    process.exit(1);
  });
}

main().catch((error) => {
  tearDownWine();
  log(`driver: ${error.stack || error}`);
  log('0 passed, 1 failed');
  process.exitCode = 1;
});
