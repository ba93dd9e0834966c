'use strict';
// Section 7: what `tcp-keepalive/register` adds to a process's start-up: `node --require tcp-keepalive/register
// -e 0` (TCP_KEEPALIVE unset: the default is installed) against `node -e 0`, the same with --import, and with
// TCP_KEEPALIVE=off, interleaved in a rotating order so a neighbour's load falls on all of them alike.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { quick, emit, median } = require('./support');

const ROUNDS = quick ? 10 : 60;
const root = path.join(__dirname, '..');
const env = { ...process.env, NODE_OPTIONS: '' };
delete env.TCP_KEEPALIVE;

const contenders = [
  { name: 'baseline', args: ['-e', '0'] },
  { name: 'require', args: ['--require', 'tcp-keepalive/register', '-e', '0'] },
  { name: 'import', args: ['--import', 'tcp-keepalive/register', '-e', '0'] },
  { name: 'off', args: ['--require', 'tcp-keepalive/register', '-e', '0'], env: { TCP_KEEPALIVE: 'off' } },
];

function startMs(contender) {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, contender.args, { cwd: root, env: { ...env, ...contender.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`node ${contender.args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return ms;
}

const samples = new Map(contenders.map((c) => [c.name, []]));
for (let round = 0; round <= ROUNDS; round++) {
  for (let k = 0; k < contenders.length; k++) {
    const contender = contenders[(round + k) % contenders.length];
    const ms = startMs(contender);
    if (round > 0) samples.get(contender.name).push(ms);
  }
}
const out = {};
for (const [name, list] of samples) out[name] = { best: Math.min(...list), median: median(list), rounds: list.length };
emit({ section: 'register', results: out });
