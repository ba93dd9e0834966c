#!/usr/bin/env node
'use strict';
// `npm run bench`: what tcp-keepalive costs, measured side by side with Node itself and with net-keepalive.
// `node bench/run.js --quick` (or BENCH_QUICK=1) runs fewer iterations for CI: it exits non-zero only when
// something breaks (a section throws, a result is wrong), never because a number missed its target.
// Each section runs in a process of its own; see the files next to this one.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { quick, scratch, parseResult } = require('./support');
const netKeepalive = require('./net-keepalive');

const SECTION_TIMEOUT_MS = quick ? 60_000 : 300_000;
const root = path.join(__dirname, '..');
/**
 * The Windows harness's hook: `bash test/windows/run-js.sh FILE.js RESULT_FILE [ARGS...]` runs FILE.js in
 * node.exe under Wine 10 (its own prefix, in a private network namespace, PREBUILDS_ONLY=1), passes the other
 * arguments through and exits with node.exe's status. It is used once `npm run test:windows` has left what it
 * needs (node.exe, prebuilds/win32-x64); BENCH_WINE_NODE=/path/to/node.exe instead runs that node.exe under the
 * system's Wine directly, with a Wine prefix of the bench's own.
 */
const WINDOWS_HOOK = path.join(root, 'test', 'windows', 'run-js.sh');
const HOOK_NODE_EXE = path.join(root, '.cache', 'windows', `node-${process.env.KA_WINDOWS_NODE_VERSION || '24.21.0'}`, 'node.exe');

/**
 * Runs one section in a process of its own and reads its result. Output goes to files, not pipes: node.exe
 * under Wine cannot open a pipe as its stderr.
 */
function runSection(name, { nodeArgs = [], env = {}, command, raw = false, timeoutMs = SECTION_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    const args = command ? command.slice(1) : [...nodeArgs, path.join(__dirname, name), ...(quick ? ['--quick'] : [])];
    const childEnv = { ...process.env, ...env, ...(quick ? { BENCH_QUICK: '1' } : {}) };
    for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
    fs.mkdirSync(scratch, { recursive: true });
    const base = path.join(scratch, `out-${name.replace(/[^\w.-]+/g, '_')}`);
    const outFd = fs.openSync(`${base}.stdout`, 'w');
    const errFd = fs.openSync(`${base}.stderr`, 'w');
    const child = spawn(command ? command[0] : process.execPath, args, { env: childEnv, stdio: ['ignore', outFd, errFd] });
    fs.closeSync(outFd);
    fs.closeSync(errFd);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let finished = false;
    const finish = (code, signal, spawnError) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const stdout = fs.readFileSync(`${base}.stdout`, 'utf8');
      const stderr = fs.readFileSync(`${base}.stderr`, 'utf8');
      let result;
      try {
        result = parseResult(stdout);
      } catch {}
      if (code === 0 && (result || raw)) return resolve({ result });
      const why = spawnError ? spawnError.message : signal === 'SIGKILL' ? `timed out after ${timeoutMs / 1000} s` : `exited with ${code}${signal ? ` (${signal})` : ''}${result ? '' : ', no result'}`;
      resolve({ error: `${name} ${why}\n${(stderr || stdout).trim().split('\n').slice(-15).join('\n')}` });
    };
    child.on('error', (error) => finish(null, null, error));
    child.on('exit', (code, signal) => finish(code, signal));
  });
}

const ns = (x) => `${Math.round(x).toLocaleString('en-US')} ns/call`;
const times = (x) => `${x.toFixed(x >= 10 ? 0 : 2)}×`;

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() || 'unknown CPU',
    cores: os.availableParallelism ? os.availableParallelism() : cpus.length,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    libuv: process.versions.uv,
    load: os.loadavg()[0],
  };
}

function addonPath() {
  try {
    return path.relative(root, require('node-gyp-build').resolve(root));
  } catch (error) {
    return `not found (${error.message.split('\n')[0]})`;
  }
}

/** One row: [section, operation, measured, compared, target, verdict]. */
function applyRows(out) {
  if (out.error) return [['1', 'apply cost', 'ERROR', '', '', 'error']];
  const r = out.result.results;
  const floor = r.floor.best;
  const rows = [
    ['1', "floor: Node's socket._handle.setKeepAlive(true, s) (libuv, 4 setsockopt)", ns(floor), 'baseline', '', ''],
    ['1', 'applyKeepalive(socket, {onoff, keepalivetime, keepaliveinterval, keepalivecount})', ns(r.apply.best), `${times(r.apply.best / floor)} floor`, '≤ 1.50× floor', r.apply.best <= 1.5 * floor ? 'pass' : 'MISS'],
  ];
  if (r.native) rows.push(['1', '  of which the native call alone (binding.apply)', ns(r.native.best), `${times(r.native.best / floor)} floor`, '', 'info']);
  if (r.netKeepalive) {
    const speedup = r.netKeepalive.best / r.apply.best;
    rows.push([
      '1',
      `net-keepalive ${out.result.netKeepalive.version}: setKeepAlive + setKeepAliveInterval + setKeepAliveProbes`,
      ns(r.netKeepalive.best),
      `applyKeepalive ${speedup.toFixed(1)}× faster`,
      '≥ 10× faster',
      speedup >= 10 ? 'pass' : 'MISS',
    ]);
  } else {
    rows.push(['1', 'net-keepalive 4.x', `not measured: ${out.result.netKeepalive.error}`, '', '≥ 10× faster', 'not measured']);
  }
  rows.push(['1', 'getKeepalive(socket) (5 getsockopt)', ns(r.get.best), `${times(r.get.best / floor)} floor`, '', 'info']);
  return rows;
}

function serverRows(out) {
  if (out.error) return [['2', 'server accept rate', 'ERROR', '', '', 'error']];
  const { without, with: withKa, node, client } = out.result;
  const capacity = (s) => 1e6 / s.cpuUsPerConn;
  const ratio = capacity(withKa) / capacity(without);
  const describe = (s) => `${Math.round(capacity(s)).toLocaleString('en-US')} conn/s (${s.cpuUsPerConn.toFixed(1)} µs CPU/conn)`;
  return [
    ['2', 'net.Server accepts per second of server CPU, without keepalive', describe(without), 'baseline', '', ''],
    ['2', 'net.Server accepts per second of server CPU, with applyKeepalive(server, …)', describe(withKa), `${(ratio * 100).toFixed(1)}%`, '≥ 97%', ratio >= 0.97 ? 'pass' : 'MISS'],
    ['2', "  for reference: Node's own createServer({ keepAlive: true }) (idle time only)", describe(node), `${((capacity(node) / capacity(without)) * 100).toFixed(1)}%`, '', 'info'],
    [
      '2',
      `  wall clock, ${client === 'c' ? 'C' : 'Node'} client: without / with / Node's keepAlive`,
      `${[without, withKa, node].map((s) => Math.round(s.connPerSec).toLocaleString('en-US')).join(' / ')} conn/s`,
      `${((withKa.connPerSec / without.connPerSec) * 100).toFixed(1)}%, server busy ${Math.round(without.serverBusy * 100)}%`,
      '',
      'info',
    ],
  ];
}

function windowsRows(out) {
  const label = 'Windows (node.exe under Wine): applyKeepalive with 20 / 200 / 2000 open connections';
  if (out.notMeasured) return [['3', label, `not measured here: ${out.notMeasured}`, '', '2000 ≤ 3× 20', 'not measured']];
  if (out.error) return [['3', label, 'ERROR', '', '', 'error']];
  const { levels } = out.result;
  const first = levels[0];
  const last = levels[levels.length - 1];
  const us = (x) => (x / 1000).toFixed(1);
  return [
    ['first apply on a fresh socket (finds its SOCKET)', 'first'],
    ['repeated apply on one socket', 'repeat'],
  ].map(([what, kind]) => {
    const ratio = last[kind] / first[kind];
    return ['3', `Windows, ${what}, ${levels.map((l) => l.open).join(' / ')} open connections`, `${levels.map((l) => us(l[kind])).join(' / ')} µs/call`, `${last.open}: ${times(ratio)} ${first.open}`, `≤ 3× ${first.open}`, ratio <= 3 ? 'pass' : 'MISS'];
  }).concat(first.floor === undefined ? [] : [[
    '3',
    "  for reference: Node's own socket._handle.setKeepAlive(true, s) there (no SIO_KEEPALIVE_VALS)",
    `${levels.map((l) => us(l.floor)).join(' / ')} µs/call`,
    `repeated apply ${times(last.repeat / last.floor)} this`,
    '',
    'info',
  ]]);
}

function lookupRows(out) {
  const label = 'POSIX lookup by address (Deno, Bun HTTP sockets): 20 / 2000 open descriptors';
  if (out.notMeasured) return [['5', label, `not measured here: ${out.notMeasured}`, '', '2000 ≤ 3× 20', 'not measured']];
  if (out.error) return [['5', label, 'ERROR', '', '', 'error']];
  const { levels } = out.result;
  const first = levels[0];
  const last = levels[levels.length - 1];
  const us = (x) => (x / 1000).toFixed(1);
  const calls = (l, kind) => `${l[`${kind}Calls`].toFixed(0)}`;
  return [
    ['a new connection, each end looked up as it opens (amortised)', 'fresh', true],
    ['a known socket again (cache hit, verified by getsockname + getpeername)', 'hit', true],
    ['a new connection on a number closed since (one fstat per known descriptor)', 'reused', false],
  ].map(([what, kind, targeted]) => {
    const ratio = last[kind] / first[kind];
    return [
      '5',
      `lookup by address, ${what}, ${levels.map((l) => l.open).join(' / ')} descriptors`,
      `${levels.map((l) => us(l[kind])).join(' / ')} µs (${levels.map((l) => calls(l, kind)).join(' / ')} socket calls)`,
      `${last.open}: ${times(ratio)} ${first.open}`,
      targeted ? `≤ 3× ${first.open}` : '',
      targeted ? (ratio <= 3 ? 'pass' : 'MISS') : 'info',
    ];
  });
}

function defaultRows(out) {
  if (out.error) return [['6', 'setDefaultKeepalive', 'ERROR', '', '', 'error']];
  const { client, server, loadClient } = out.result;
  const capacity = (s) => 1e6 / s.cpuUsPerConn;
  const describe = (s) => `${Math.round(capacity(s)).toLocaleString('en-US')} conn/s (${s.cpuUsPerConn.toFixed(1)} µs CPU/conn)`;
  const pct = (s, base) => `${((capacity(s) / capacity(base)) * 100).toFixed(1)}%`;
  const verdict = (s, base) => (capacity(s) / capacity(base) >= 0.97 ? 'pass' : 'MISS');
  const filterCost = client.filtered.cpuUsPerConn - client.without.cpuUsPerConn;
  return [
    ['6', 'client connects per second of client CPU, no default', describe(client.without), 'baseline', '', ''],
    ['6', 'client connects per second of client CPU, with setDefaultKeepalive(all four options)', describe(client.default), pct(client.default, client.without), '≥ 97%', verdict(client.default, client.without)],
    ['6', '  with a default whose filter returns false', describe(client.filtered), pct(client.filtered, client.without), '', 'info'],
    ['6', '  with the default and a subscriber on tcp-keepalive:configure', describe(client.subscribed), `${pct(client.subscribed, client.default)} of the default alone, ${(client.subscribed.cpuUsPerConn - client.default.cpuUsPerConn >= 0 ? '+' : '')}${(client.subscribed.cpuUsPerConn - client.default.cpuUsPerConn).toFixed(2)} µs/conn`, '', 'info'],
    ['6', '  per-socket cost of a filter returning false', `${filterCost >= 0 ? '+' : ''}${(filterCost * 1000).toFixed(0)} ns/socket${filterCost <= 0 ? ' (below the noise)' : ''}`, `${((filterCost / client.without.cpuUsPerConn) * 100).toFixed(1)}% of a connect`, '≈ none', 'info'],
    ['6', `server accepts per second of server CPU (${loadClient === 'c' ? 'C' : 'Node'} client), no default`, describe(server.without), 'baseline', '', ''],
    ['6', 'server accepts per second of server CPU, with setDefaultKeepalive(all four options)', describe(server.default), pct(server.default, server.without), '≥ 97%', verdict(server.default, server.without)],
  ];
}

function defaultProcessRows(out) {
  const label = 'setDefaultKeepalive, a client process with it against one without';
  if (out.notMeasured) return [['7', label, `not measured here: ${out.notMeasured}`, '', '≤ 2 µs above its system calls', 'not measured']];
  if (out.error) return [['7', label, 'ERROR', '', '', 'error']];
  const { runs, other, pairs, block, blocks, warmup } = out.result;
  const us = (x) => `${x.toFixed(1)} µs`;
  const signed = (x) => `${x >= 0 ? '+' : '−'}${us(Math.abs(x))}`;
  const n = (x) => x.toLocaleString('en-US');
  const rows = [];
  for (const r of runs) {
    const p = r.pairDifferences;
    rows.push(
      ['7', `Node ${r.version}: client process without the default, CPU per connection (best of ${blocks} blocks of ${n(block)} after ${n(warmup)}, median of ${pairs} pairs)`, us(r.without), 'baseline', '', ''],
      ['7', `Node ${r.version}: client process with setDefaultKeepalive(all five options), taking turns with it`, us(r.with), `${signed(r.difference)} (median of pair differences, ${signed(p.min)} to ${signed(p.max)})`, '', 'info'],
    );
    if (r.syscalls === undefined) {
      rows.push(['7', '  of which the five setsockopt calls (from C)', 'not measured: no C compiler (or BENCH_NODE_CLIENT=1)', '', '', 'not measured']);
    } else {
      rows.push(
        ['7', `  of which the five setsockopt calls (timed from C in the same run, best of ${pairs})`, us(r.syscalls), `C loop with them ${signed(r.c.difference)}`, '', 'info'],
        ['7', '  the rest: what the default adds above its system calls', us(r.rest), '', '≤ 2 µs', r.rest <= 2 ? 'pass' : 'MISS'],
      );
    }
    rows.push(['7', `  for reference, the first ${n(warmup)} connections of a process (warm-up): without / with`, `${us(r.warmup.without)} / ${us(r.warmup.with)}`, signed(r.warmup.with - r.warmup.without), '', 'info']);
    const extra = r.strace.error ? `not measured: ${r.strace.error}` : Object.entries(r.strace.perConnection).map(([k, v]) => `${k} ${v > 0 ? '+' : ''}${v}`).join(', ') || 'none';
    rows.push(['7', '  strace -f -c: extra system calls per connection', extra, '', '', r.strace.error ? 'not measured' : 'info']);
  }
  if (other) rows.push(['7', `Node ${other.major}: the same`, `not measured: ${other.error}`, '', '', 'not measured']);
  return rows;
}

function registerRows(out) {
  if (out.error) return [['8', 'tcp-keepalive/register start-up', 'ERROR', '', '', 'error']];
  const r = out.result.results;
  const b = r.baseline;
  const ms = (s) => `${s.cpuMedian.toFixed(1)} ms CPU median (wall best ${s.best.toFixed(1)} ms)`;
  const vs = (s) => `CPU +${(s.cpuMedian - b.cpuMedian).toFixed(1)} ms (${times(s.cpuMedian / b.cpuMedian)}), wall best +${(s.best - b.best).toFixed(1)} ms`;
  const verdict = (s) => (s.cpuMedian <= 1.05 * b.cpuMedian ? 'pass' : 'MISS');
  return [
    ['8', `process start-up, node -e (${b.rounds} starts each, interleaved): CPU used when -e runs`, ms(b), 'baseline', '', ''],
    ['8', 'node --require tcp-keepalive/register (TCP_KEEPALIVE unset: the default)', ms(r.require), vs(r.require), '≤ 1.05× baseline', verdict(r.require)],
    ['8', 'node --import tcp-keepalive/register', ms(r.import), vs(r.import), '≤ 1.05× baseline', verdict(r.import)],
    ['8', '  with TCP_KEEPALIVE=off (the parse alone: the package is not loaded)', ms(r.off), vs(r.off), '', 'info'],
    ['8', 'a process that loads node:net (as every TCP service does), without the entry', ms(r.netBaseline), 'baseline', '', ''],
    ['8', '  the same with --require tcp-keepalive/register', ms(r.netRequire), `CPU +${(r.netRequire.cpuMedian - r.netBaseline.cpuMedian).toFixed(1)} ms (${times(r.netRequire.cpuMedian / r.netBaseline.cpuMedian)})`, '', 'info'],
  ];
}

function memoryRows(out) {
  if (out.error) return [['4', 'memory', 'ERROR', '', '', 'error']];
  const m = out.result;
  return [['4', `RSS growth over ${m.applies.toLocaleString('en-US')} applies on one socket (after GC)`, `${m.rssGrowthMB >= 0 ? '+' : ''}${m.rssGrowthMB.toFixed(2)} MB (${m.rssBeforeMB.toFixed(1)} → ${m.rssAfterMB.toFixed(1)} MB)`, '', '< 5 MB', m.rssGrowthMB < 5 ? 'pass' : 'MISS']];
}

function table(rows) {
  const head = ['#', 'operation', 'measured', 'vs baseline', 'target', 'verdict'];
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The node.exe and prebuild that `npm run test:windows` leaves behind, when Wine is here to run them. */
function defaultWineNode() {
  const nodeExe = path.join(root, '.cache', 'windows', 'node-20.20.2', 'node.exe');
  const prebuild = path.join(root, 'prebuilds', 'win32-x64');
  const hasWine = require('node:child_process').spawnSync('sh', ['-c', 'command -v wine'], { stdio: 'ignore' }).status === 0;
  return hasWine && fs.existsSync(nodeExe) && fs.existsSync(prebuild) ? nodeExe : undefined;
}

function windowsCommand(resultFile) {
  const args = [path.join(__dirname, 'windows.js'), resultFile, ...(quick ? ['--quick'] : [])];
  if (!process.env.BENCH_WINE_NODE && fs.existsSync(HOOK_NODE_EXE) && fs.existsSync(path.join(root, 'prebuilds', 'win32-x64'))) return { command: ['bash', WINDOWS_HOOK, ...args] };
  const nodeExe = process.env.BENCH_WINE_NODE || defaultWineNode();
  if (!nodeExe) return undefined;
  const prefix = path.join(scratch, 'wine-prefix');
  const env = { WINEPREFIX: prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=', PREBUILDS_ONLY: '1', DISPLAY: undefined, WAYLAND_DISPLAY: undefined };
  const windowsPath = (p) => 'Z:' + path.resolve(p).replace(/\//g, '\\');
  return { command: ['wine', path.resolve(nodeExe), windowsPath(args[0]), ...args.slice(1)], env, prefix };
}

async function windowsSection() {
  if (process.env.BENCH_WINDOWS === '0') return { notMeasured: 'skipped (BENCH_WINDOWS=0)' };
  const resultFile = path.join(scratch, 'windows-result.txt');
  const how = windowsCommand(resultFile);
  if (!how) return { notMeasured: 'needs the Windows harness (npm run test:windows, then test/windows/run-js.sh; or BENCH_WINE_NODE=path/to/node.exe)' };
  fs.mkdirSync(scratch, { recursive: true });
  fs.rmSync(resultFile, { force: true });
  if (how.prefix && !fs.existsSync(path.join(how.prefix, 'system.reg'))) {
    for (const command of [['wineboot', '-i'], ['wine', 'winecfg', '-v', 'win10']]) {
      const step = await runSection(command.join(' '), { command, env: how.env, raw: true });
      if (step.error) return { error: `setting up Wine failed: ${step.error}` };
    }
  }
  const out = await runSection('windows.js', { command: how.command, env: how.env });
  if (!out.error) return out;
  // Under Wine, node.exe's stdout may not reach us; windows.js writes its result to a file as well.
  const result = fs.existsSync(resultFile) ? parseResult(fs.readFileSync(resultFile, 'utf8')) : undefined;
  return result ? { result } : out;
}

async function main() {
  const started = Date.now();
  const m = machine();
  console.log(`tcp-keepalive bench${quick ? ' (quick: few iterations, the verdicts are indicative only)' : ''}`);
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.os}, Node ${m.node} (libuv ${m.libuv}), load average ${m.load.toFixed(2)} at start`);
  console.log(`addon: ${addonPath()}\n`);

  const nk = netKeepalive.prepare();
  const nkEnv = nk.error ? { BENCH_NET_KEEPALIVE_ERROR: nk.error } : { BENCH_NET_KEEPALIVE: nk.dir };

  const sections = [];
  const step = async (name, run) => {
    const t = Date.now();
    process.stdout.write(`  ${name} … `);
    const out = await run();
    console.log(out.error ? 'ERROR' : out.notMeasured ? 'not measured' : `${((Date.now() - t) / 1000).toFixed(1)} s`);
    sections.push(out);
    return out;
  };
  const apply = await step('1 apply cost', () => runSection('apply.js', { env: nkEnv }));
  const server = await step('2 server accept rate', () => runSection('server.js'));
  const windows = await step('3 Windows lookup', windowsSection);
  const memory = await step('4 memory', () => runSection('memory.js', { nodeArgs: ['--expose-gc'] }));
  const lookup = await step('5 POSIX lookup by address', () => (process.platform === 'win32' ? { notMeasured: 'POSIX only' } : runSection('lookup.js')));
  const byDefault = await step('6 setDefaultKeepalive', () => runSection('default.js'));
  const byProcess = await step('7 setDefaultKeepalive, process against process', () => (process.platform === 'linux' ? runSection('default-process.js', { timeoutMs: 2 * SECTION_TIMEOUT_MS }) : { notMeasured: 'Linux only' }));
  const register = await step('8 tcp-keepalive/register start-up', () => runSection('register.js'));

  const rows = [...applyRows(apply), ...serverRows(server), ...windowsRows(windows), ...memoryRows(memory), ...lookupRows(lookup), ...defaultRows(byDefault), ...defaultProcessRows(byProcess), ...registerRows(register)];
  console.log('\n' + table(rows));
  console.log(`\nmachine: ${m.cpu}, ${m.cores} cores, ${m.os}, Node ${m.node}; ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const errors = sections.filter((s) => s.error);
  for (const s of errors) console.error(`\nbench error: ${s.error}`);
  const missed = rows.filter((r) => r[5] === 'MISS').length;
  if (missed > 0) console.log(`${missed} target(s) missed. A benchmark, not a test: a missed target does not fail the run${quick ? ' (and quick mode is too short to judge)' : ''}.`);
  process.exitCode = errors.length > 0 ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
