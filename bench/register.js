'use strict';
// Section 7: what `tcp-keepalive/register` adds to a process's start-up: `node --require tcp-keepalive/register
// -e 0` (TCP_KEEPALIVE unset: the default is installed) against `node -e 0`, the same with --import, and with
// TCP_KEEPALIVE=off, interleaved in a rotating order so a neighbour's load falls on all of them alike. Two
// figures per start: the wall clock until the process exited, and the CPU time the process had used when its
// -e script ran (after every preload), which a neighbour's load on the shared cores hardly moves.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { quick, emit, median } = require('./support');

const ROUNDS = quick ? 10 : 60;
const root = path.join(__dirname, '..');
const env = { ...process.env, NODE_OPTIONS: '' };
delete env.TCP_KEEPALIVE;

const CPU = ['-e', 'const u = process.cpuUsage(); process.stdout.write(String((u.user + u.system) / 1000))'];
/** A service that talks TCP loads node:net anyway (the register entry has to, to hook it). */
const NET = ['-e', "require('node:net'); const u = process.cpuUsage(); process.stdout.write(String((u.user + u.system) / 1000))"];
const contenders = [
  { name: 'baseline', args: CPU },
  { name: 'netBaseline', args: NET },
  { name: 'netRequire', args: ['--require', 'tcp-keepalive/register', ...NET] },
  { name: 'require', args: ['--require', 'tcp-keepalive/register', ...CPU] },
  { name: 'import', args: ['--import', 'tcp-keepalive/register', ...CPU] },
  { name: 'off', args: ['--require', 'tcp-keepalive/register', ...CPU], env: { TCP_KEEPALIVE: 'off' } },
];

function startMs(contender) {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, contender.args, { cwd: root, env: { ...env, ...contender.env }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`node ${contender.args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return { ms, cpuMs: Number(result.stdout) };
}

const samples = new Map(contenders.map((c) => [c.name, []]));
for (let round = 0; round <= ROUNDS; round++) {
  for (let k = 0; k < contenders.length; k++) {
    const contender = contenders[(round + k) % contenders.length];
    const sample = startMs(contender);
    if (round > 0) samples.get(contender.name).push(sample);
  }
}
const out = {};
for (const [name, list] of samples) {
  const wall = list.map((s) => s.ms);
  const cpu = list.map((s) => s.cpuMs);
  out[name] = { best: Math.min(...wall), median: median(wall), cpuBest: Math.min(...cpu), cpuMedian: median(cpu), rounds: list.length };
}
emit({ section: 'register', results: out });
