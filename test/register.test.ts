import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import * as readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_TCP_KEEPALIVE } from '../dist/env.js';
import { KernelOptions, kernelOptionsOf, mustRunInCi, observerUnavailable } from './support/kernel';
import { Netns, netnsUnavailable, removeAllNetns } from './support/netns';
import { BAD_TCP_KEEPALIVE as BAD } from './support/env-cases';
import { run } from './support/run';

/**
 * tcp-keepalive/register and TCP_KEEPALIVE: the parser (pure), the exit code 9 and its one line for every bad
 * form, and an app that knows nothing of the package (support/register-app.js) started with only NODE_OPTIONS
 * and TCP_KEEPALIVE: every TCP connection of it, both ends, its worker thread's and its child process's, read
 * from outside the process; the ports and side filters; off. Bun's --preload and Deno's --preload too.
 */

const root = join(__dirname, '..');
const APP = join(__dirname, 'support', 'register-app.js');

describe('a bad TCP_KEEPALIVE: exit code 9 and one line naming TCP_KEEPALIVE, the bad part and what is expected', () => {
  /** One line, no stack trace, exit code 9, nothing run after the preload. */
  function expectRefused(result: Awaited<ReturnType<typeof run>>, value: string, mentions: RegExp): void {
    expect(result.status, result.stderr).toBe(9);
    expect(result.stdout).toBe('');
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^tcp-keepalive/register: TCP_KEEPALIVE=${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid: `));
    expect(lines[0]).toMatch(mentions);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }

  const env = (value: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...process.env, NODE_OPTIONS: '', TCP_KEEPALIVE: value, ...extra });

  it.concurrent.each(BAD)('%j: node --require tcp-keepalive/register', async (value, mentions) => {
    expectRefused(await run(process.execPath, ['--require', 'tcp-keepalive/register', '-e', 'console.log("ran")'], { cwd: root, env: env(value) }), value, mentions);
  });

  it.concurrent.each(BAD.slice(0, 6))('%j: node --import tcp-keepalive/register', async (value, mentions) => {
    expectRefused(await run(process.execPath, ['--import', 'tcp-keepalive/register', '-e', 'console.log("ran")'], { cwd: root, env: env(value) }), value, mentions);
  });

  it.concurrent.each(BAD.slice(0, 6))('%j: NODE_OPTIONS=--require tcp-keepalive/register', async (value, mentions) => {
    expectRefused(await run(process.execPath, ['-e', 'console.log("ran")'], { cwd: root, env: env(value, { NODE_OPTIONS: '--require tcp-keepalive/register' }) }), value, mentions);
  });

  it('a good value runs the app; the entry loads the package only (dist/ and its binary loader), nothing else', async () => {
    const script = 'console.log(JSON.stringify(Object.keys(require.cache)))';
    const result = await run(process.execPath, ['--require', 'tcp-keepalive/register', '-e', script], { cwd: root, env: env('10s') });
    expect(result.status, result.stderr).toBe(0);
    const loaded = (JSON.parse(result.stdout) as string[]).map((file) => relative(root, file));
    const ours = (file: string): boolean => file === 'package.json' || file.startsWith('dist/') || file.startsWith('node_modules/node-gyp-build/') || /^(build|prebuilds)\/.*\.node$/.test(file);
    expect(loaded.filter((file) => !ours(file))).toEqual([]);
  });
});

describe('a package that cannot load its binary', () => {
  it('stops the process with one line and exit code 1 rather than start without its safety net', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcp-keepalive-nobinary-'));
    try {
      const installed = join(dir, 'node_modules', 'tcp-keepalive');
      mkdirSync(installed, { recursive: true });
      cpSync(join(root, 'package.json'), join(installed, 'package.json'));
      cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true });
      cpSync(join(root, 'node_modules', 'node-gyp-build'), join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
      const result = await run(process.execPath, ['--require', 'tcp-keepalive/register', '-e', 'console.log("ran")'], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '', TCP_KEEPALIVE: '10s' } });
      expect(result.status).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tcp-keepalive\/register: cannot load tcp-keepalive, so no connection would be watched: No native build was found/)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- the real app, observed from outside ----

interface NodeVersions {
  unsupported: string | undefined;
  nodeVersions(majors?: number[]): Array<{ version: string; node: string }>;
}
const { unsupported: versionsUnavailable, nodeVersions } = createRequire(__filename)(join(__dirname, 'support', 'node-versions.js')) as NodeVersions;

const unavailable = netnsUnavailable ?? observerUnavailable ?? versionsUnavailable;
mustRunInCi('the register suite (an app in a private network namespace, read by the pidfd observer)', unavailable);

const SERVER_PORTS = [5432, 6379, 8080];

interface Seen {
  pid: number;
  origin: 'main' | 'worker' | 'child' | 'server';
  side: 'client' | 'server';
  local: number;
  peer: number;
  options: KernelOptions;
}

interface Ready {
  pid: number;
  child: number;
  main: number[];
  worker: number[];
  childPorts: number[];
}

/** Starts the app in a namespace of its own with this environment, reads every connection of it and of its child. */
async function observeApp(extraEnv: NodeJS.ProcessEnv, node = process.execPath): Promise<Seen[]> {
  const netns = new Netns();
  let child: ChildProcess | undefined;
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
    for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
    child = spawn('ip', ['netns', 'exec', netns.name, node, APP], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const ready = await new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`app not ready in 15 s: ${stderr}`)), 15_000);
      child!.once('exit', (code) => reject(new Error(`app exited ${code}: ${stderr}`)));
      readline.createInterface({ input: child!.stdout! }).on('line', (line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Ready);
      });
    });
    const out = execFileSync('ip', ['netns', 'exec', netns.name, 'ss', '-tnpH', 'state', 'established'], { encoding: 'utf8' });
    const seen: Seen[] = [];
    for (const line of out.split('\n')) {
      const columns = line.trim().split(/\s+/);
      if (columns.length < 5) continue;
      const local = Number(columns[2].split(':').pop());
      const peer = Number(columns[3].split(':').pop());
      for (const match of line.matchAll(/pid=(\d+),fd=(\d+)/g)) {
        const pid = Number(match[1]);
        if (pid !== ready.pid && pid !== ready.child) continue;
        const side = SERVER_PORTS.includes(local) ? 'server' : 'client';
        const origin = side === 'server' ? 'server' : ready.worker.includes(local) ? 'worker' : ready.childPorts.includes(local) ? 'child' : 'main';
        seen.push({ pid, origin, side, local, peer, options: kernelOptionsOf(pid, Number(match[2])) });
      }
    }
    return seen;
  } finally {
    child?.stdin?.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (child && child.exitCode === null) child.kill('SIGKILL');
    netns.destroy();
  }
}

/** deadAfter 10 s on Linux, and the default's 60 s. */
const TEN_S: KernelOptions = { so_keepalive: 1, tcp_keepidle: 5, tcp_keepintvl: 1, tcp_keepcnt: 5, tcp_user_timeout: 9500 };
const SIXTY_S: KernelOptions = { so_keepalive: 1, tcp_keepidle: 30, tcp_keepintvl: 6, tcp_keepcnt: 5, tcp_user_timeout: 59_500 };
const FIELDS: KernelOptions = { so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 2, tcp_keepcnt: 4, tcp_user_timeout: 11_000 };

const port = (s: Seen): number => (s.side === 'client' ? s.peer : s.local);
const label = (s: Seen): string => `${s.origin} ${s.side} :${s.local} → :${s.peer}`;

/** 18 connections ends: 3 servers' accepted sockets × 3 clients (main, worker, child), and the 9 clients. */
function expectAll(seen: Seen[], expected: (s: Seen) => KernelOptions | 'untouched'): void {
  expect(seen.map((s) => s.origin).sort()).toEqual([...Array(3).fill('child'), ...Array(3).fill('main'), ...Array(9).fill('server'), ...Array(3).fill('worker')]);
  const wrong = seen.filter((s) => {
    const want = expected(s);
    // Untouched: as without the package (the http.Agent calls setKeepAlive(true, 1000) on its own sockets).
    if (want === 'untouched') return s.options.tcp_user_timeout !== 0 || (port(s) !== 8080 && s.options.so_keepalive !== 0);
    return JSON.stringify(s.options) !== JSON.stringify(want);
  });
  expect(wrong.map((s) => `${label(s)}: ${JSON.stringify(s.options)} instead of ${JSON.stringify(expected(s))}`)).toEqual([]);
}

describe.skipIf(unavailable)('an app started with only NODE_OPTIONS and TCP_KEEPALIVE, observed from outside', { timeout: 40_000 }, () => {
  afterAll(removeAllNetns);

  it('NODE_OPTIONS=--require tcp-keepalive/register, TCP_KEEPALIVE=10s: every connection, both ends, the worker thread\'s and the child process\'s', async () => {
    expectAll(await observeApp({ NODE_OPTIONS: '--require tcp-keepalive/register', TCP_KEEPALIVE: '10s' }), () => TEN_S);
  });

  it('NODE_OPTIONS=--import tcp-keepalive/register with the four fields: every connection, the worker thread\'s too', async () => {
    // Node 20-26 run no --import preload in worker threads; the default set in the main thread is carried there.
    expectAll(await observeApp({ NODE_OPTIONS: '--import tcp-keepalive/register', TCP_KEEPALIVE: 'keepalivetime=3s,keepaliveinterval=2s,keepalivecount=4,usertimeout=11s' }), () => FIELDS);
  });

  it(`TCP_KEEPALIVE unset: the default, ${DEFAULT_TCP_KEEPALIVE}`, async () => {
    expectAll(await observeApp({ NODE_OPTIONS: '--require tcp-keepalive/register', TCP_KEEPALIVE: undefined }), () => SIXTY_S);
  });

  it('TCP_KEEPALIVE=off: nothing is touched', async () => {
    expectAll(await observeApp({ NODE_OPTIONS: '--require tcp-keepalive/register', TCP_KEEPALIVE: 'off' }), () => 'untouched');
  });

  it('ports=5432: the clients of port 5432 and the connections accepted on it, nothing else', async () => {
    expectAll(await observeApp({ NODE_OPTIONS: '--require tcp-keepalive/register', TCP_KEEPALIVE: '10s,ports=5432' }), (s) => (port(s) === 5432 ? TEN_S : 'untouched'));
  });

  it('side=server: accepted connections only', async () => {
    expectAll(await observeApp({ NODE_OPTIONS: '--require tcp-keepalive/register', TCP_KEEPALIVE: '10s,side=server' }), (s) => (s.side === 'server' ? TEN_S : 'untouched'));
  });

  it.each(['22', '24', '26'])('Node %s: NODE_OPTIONS=--require tcp-keepalive/register, TCP_KEEPALIVE=10s: every connection', async (major) => {
    const [{ node }] = nodeVersions([Number(major)]);
    expectAll(await observeApp({ NODE_OPTIONS: '--require tcp-keepalive/register', TCP_KEEPALIVE: '10s' }, node), () => TEN_S);
  });

  it('side=client,ports=6379,8080: clients of those ports only', async () => {
    expectAll(await observeApp({ NODE_OPTIONS: '--require tcp-keepalive/register', TCP_KEEPALIVE: 'side=client,ports=6379,8080,deadAfter=10s' }), (s) => (s.side === 'client' && port(s) !== 5432 ? TEN_S : 'untouched'));
  });
});

// ---- Bun and Deno ----

const versions = JSON.parse(readFileSync(join(__dirname, 'runtimes', 'versions.json'), 'utf8')) as Record<'bun' | 'deno', { version: string }>;
const binaryOf = (name: 'bun' | 'deno'): string => join(root, '.cache', 'runtimes', `${name}-${versions[name].version}`, name);
const runtimesUnavailable = process.platform !== 'linux' || process.arch !== 'x64'
  ? 'Bun and Deno are installed for linux-x64 only'
  : (['bun', 'deno'] as const).filter((name) => !existsSync(binaryOf(name))).map((name) => `${name} is not installed (bash .ci/steps/35-runtimes.sh)`)[0];
mustRunInCi('the register entry under Bun and Deno', runtimesUnavailable);

const RUNTIME_APP = `
import net from 'node:net';
import { getKeepalive } from 'tcp-keepalive';
const server = net.createServer((s) => setTimeout(() => { console.log(JSON.stringify({ side: 'server', ...getKeepalive(s) })); s.destroy(); server.close(); }, 100));
server.listen(0, '127.0.0.1', () => {
  const c = net.connect(server.address().port, '127.0.0.1', () => console.log(JSON.stringify({ side: 'client', ...getKeepalive(c) })));
  c.on('error', () => {});
});
`;

/** A project that depends on tcp-keepalive as a user's does (a copy in node_modules, as npm installs it). */
function userProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcp-keepalive-register-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'register-app', private: true, type: 'module', dependencies: { 'tcp-keepalive': '*' } }));
  const installed = join(dir, 'node_modules', 'tcp-keepalive');
  mkdirSync(installed, { recursive: true });
  cpSync(join(root, 'package.json'), join(installed, 'package.json'));
  cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true });
  const addon = (createRequire(__filename)('node-gyp-build') as { resolve(dir: string): string }).resolve(root);
  mkdirSync(dirname(join(installed, relative(root, addon))), { recursive: true });
  cpSync(addon, join(installed, relative(root, addon)));
  cpSync(join(root, 'node_modules', 'node-gyp-build'), join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
  writeFileSync(join(dir, 'app.mjs'), RUNTIME_APP);
  return dir;
}

describe.skipIf(runtimesUnavailable)('Bun (--preload) and Deno (--preload)', { timeout: 60_000 }, () => {
  let project: string | undefined;
  afterAll(() => project && rmSync(project, { recursive: true, force: true }));
  const projectDir = (): string => (project ??= userProject());
  const TEN = { onoff: true, keepalivetime: 5000, keepaliveinterval: 1000, keepalivecount: 5, usertimeout: 9500 };
  const command = (name: 'bun' | 'deno'): string[] =>
    name === 'bun' ? ['--preload', 'tcp-keepalive/register', 'app.mjs'] : ['run', '--allow-ffi', '--allow-env', '--allow-read', '--allow-net', '--node-modules-dir=manual', '--preload', 'npm:tcp-keepalive/register', 'app.mjs'];
  const runtimeEnv = (name: 'bun' | 'deno', value: string): NodeJS.ProcessEnv => ({
    ...process.env,
    NODE_OPTIONS: '',
    NO_COLOR: '1',
    TCP_KEEPALIVE: value,
    ...(name === 'deno' ? { DENO_DIR: join(root, '.cache', 'runtimes', 'deno-dir'), DENO_NO_UPDATE_CHECK: '1' } : {}),
  });

  it.each([
    ['bun', { client: TEN, server: TEN }],
    ['deno', { client: TEN, server: TEN }],
  ] as const)('%s: TCP_KEEPALIVE=10s configures the app\'s client socket and the one its net.Server accepted', async (name, expected) => {
    const result = await run(binaryOf(name), command(name), { cwd: projectDir(), env: runtimeEnv(name, '10s'), timeout: 50_000 });
    expect(result.status, result.stderr).toBe(0);
    const sides = Object.fromEntries(result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { side: string }).map(({ side, ...values }) => [side, values]));
    expect(sides.client).toEqual(expected.client);
    expect(sides.server).toMatchObject(expected.server);
  });

  it.each(['bun', 'deno'] as const)('%s: a bad TCP_KEEPALIVE exits 9 with one line', async (name) => {
    const result = await run(binaryOf(name), command(name), { cwd: projectDir(), env: runtimeEnv(name, '10x'), timeout: 50_000 });
    expect(result.status, result.stderr).toBe(9);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tcp-keepalive\/register: TCP_KEEPALIVE="10x" is not valid: "10x" is not a duration/)]);
  });
});
