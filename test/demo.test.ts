import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import type { ExpectStatic } from 'vitest';
import { mustRunInCi } from './support/kernel';
import { run as runChild } from './support/run';

/**
 * `npm run demo` pulls the cable on a stock machine: with nft and iptables gone it falls back to
 * iproute2 policy routing, as root and as an unprivileged user (user + network namespace), and still
 * shows the tcp-keepalive socket failing within its 6 s bound and the setKeepAlive-only one at ~13 s.
 * Each run happens in a private mount namespace (where the firewall commands are hidden) and the demo
 * makes its own private network namespace; both vanish with the process.
 */

const REPO = join(__dirname, '..');
const DEMO = join('examples', 'demo.js');
const BOUND_S = 6;
const NODE_BOUND_S = 13;
/** The demo's own limits: kernel timers fire late, never early; the rest is a busy 2-core machine. */
const LATE_MS = 1500;
const EARLY_RATIO = 0.9;
const RUN_TIMEOUT_MS = 45_000;
const FIREWALLS = ['nft', 'iptables'];

const PATH_DIRS = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir.startsWith('/'));
/** Where the demo's which() looks: PATH, then the sbin directories a non-root PATH often lacks. */
const DEMO_DIRS = [...PATH_DIRS, '/usr/local/sbin', '/usr/sbin', '/sbin'];

function locations(name: string, dirs = DEMO_DIRS): string[] {
  return dirs.map((dir) => join(dir, name)).filter((path) => existsSync(path));
}

function commandPath(name: string): string | undefined {
  return locations(name, [...PATH_DIRS, '/usr/sbin', '/sbin'])[0];
}

function realDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

function quote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The real files behind every nft/iptables the demo could find (symlinks and alternatives resolved). */
const firewallFiles = [...new Set(FIREWALLS.flatMap((name) => locations(name)).map((path) => realpathSync(path)))];
/** The directories holding them, as the demo reaches them: emptying these makes the commands absent. */
const firewallDirs = [...new Set(FIREWALLS.flatMap((name) => locations(name)).map((path) => realDir(dirname(path))))];
const covered = (path: string): boolean => firewallDirs.some((dir) => realDir(dirname(path)) === dir);

const tools = { unshare: commandPath('unshare'), setpriv: commandPath('setpriv'), mount: commandPath('mount'), sh: commandPath('sh'), false: commandPath('false') };

function nobody(): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

const user = nobody();

function sysctl(name: string): string {
  try {
    return spawnSync('cat', [`/proc/sys/${name.replace(/\./g, '/')}`], { encoding: 'utf8' }).stdout.trim() || 'absent';
  } catch {
    return 'absent';
  }
}

function asNobody(): string[] {
  return [tools.setpriv!, `--reuid=${user!.uid}`, `--regid=${user!.gid}`, '--clear-groups', '--'];
}

/** Why the demo cannot be run here under the given conditions, or undefined. */
function rootUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux (mount and network namespaces)';
  if (process.getuid?.() !== 0) return 'needs root (a private mount namespace to hide nft and iptables in)';
  for (const [name, path] of Object.entries(tools)) if (!path) return `needs the \`${name}\` command (util-linux)`;
  if (!commandPath('ip')) return 'needs ip (Debian package iproute2)';
  const probe = spawnSync(tools.unshare!, ['-m', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) return `cannot create a mount namespace: ${probe.stderr.trim()}`;
  return undefined;
}

/** With the firewall directories emptied the demo must still find ip and unshare, and the wrapper node. */
function absentUnavailable(): string | undefined {
  for (const name of ['ip', 'unshare']) {
    if (!locations(name).some((path) => !covered(path))) return `${name} lives only beside nft/iptables (${firewallDirs.join(', ')}), so they cannot be hidden alone`;
  }
  for (const path of [process.execPath, ...Object.values(tools)]) if (covered(path!)) return `${path} lives beside nft/iptables, so they cannot be hidden alone`;
  return undefined;
}

function nobodyUnavailable(staged: string): string | undefined {
  if (!user) return 'needs the user nobody';
  const userns = spawnSync(tools.setpriv!, [...asNobody().slice(1), tools.unshare!, '-rn', 'true'], { encoding: 'utf8' });
  if (userns.status !== 0) {
    return `nobody cannot create a user + network namespace (${userns.stderr.trim()}; user.max_user_namespaces=${sysctl('user.max_user_namespaces')}, kernel.unprivileged_userns_clone=${sysctl('kernel.unprivileged_userns_clone')})`;
  }
  const load = spawnSync(tools.setpriv!, [...asNobody().slice(1), process.execPath, '-e', 'require(process.argv[1])', staged], { encoding: 'utf8', cwd: staged });
  if (load.status !== 0) return `nobody cannot run ${process.execPath} with the package: ${load.stderr.trim()}`;
  return undefined;
}

/**
 * A copy of what `npm run demo` loads (package.json, dist, the native binary, node-gyp-build, the demo)
 * in a directory nobody can read, wherever the clone lives (CI may clone under /root).
 */
function stage(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcp-keepalive-demo-'));
  chmodSync(dir, 0o755);
  for (const path of ['package.json', 'dist', DEMO, join('node_modules', 'node-gyp-build'), join('build', 'Release', 'tcp_keepalive.node'), 'prebuilds']) {
    if (existsSync(join(REPO, path))) cpSync(join(REPO, path), join(dir, path), { recursive: true });
  }
  return dir;
}

type Hide = 'nothing' | 'absent' | 'failing';

interface DemoRun {
  code: number | null;
  output: string;
  method?: string;
  /** Seconds from the last packet to the tcp-keepalive socket's ETIMEDOUT, as the demo printed them. */
  ours?: number;
  bound?: number;
  /** Seconds from the last packet to the setKeepAlive-only socket's error. */
  theirs?: number;
  nodeBound?: number;
}

/** The shell commands, run as root in the private mount namespace, that hide nft and iptables. */
function hiding(hide: Hide): string[] {
  if (hide === 'absent') return firewallDirs.map((dir) => `${quote(tools.mount!)} -t tmpfs -o size=64k,mode=755 tcp-keepalive-demo ${quote(dir)}`);
  if (hide === 'failing') return firewallFiles.map((file) => `${quote(tools.mount!)} --bind ${quote(tools.false!)} ${quote(file)}`);
  return [];
}

/** Runs the demo in a private mount namespace, optionally as nobody and with the firewall commands hidden. */
function runDemo(options: { hide: Hide; as: 'root' | 'nobody'; cwd: string; env?: NodeJS.ProcessEnv; setup?: string[] }): Promise<DemoRun> {
  const command = [...(options.as === 'nobody' ? asNobody() : []), process.execPath, DEMO].map(quote).join(' ');
  const script = ['set -e', ...hiding(options.hide), ...(options.setup ?? []), `exec ${command}`].join('\n');
  const env = { ...(options.env ?? process.env) };
  delete env.TCP_KEEPALIVE_DEMO_INSIDE;
  const child = spawn(tools.unshare!, ['-m', '--propagation', 'private', tools.sh!, '-c', script], { cwd: options.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  // Our own process group only: the demo and the namespaced copy of itself it starts.
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), RUN_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      const number = (pattern: RegExp): number | undefined => {
        const match = pattern.exec(output);
        return match ? Number(match[1]) : undefined;
      };
      resolve({
        code,
        output,
        method: /^2\. Pulling the cable, with (.+)$/m.exec(output)?.[1],
        ours: number(/tcp-keepalive noticed the dead peer after ([\d.]+) s of silence/),
        bound: number(/tcp-keepalive socket: 'error' ETIMEDOUT, the peer is declared dead \(bound (\d+) s\)/),
        theirs: number(/Node's setKeepAlive alone took ([\d.]+) s/),
        nodeBound: number(/setKeepAlive-only socket: 'error' ETIMEDOUT, at last \(its bound: (\d+) s\)/),
      });
    });
  });
}

const measured: string[] = [];

function expectPulledAndDetected(expect: ExpectStatic, run: DemoRun, method: string, label: string): void {
  measured.push(`${label}: ${run.method ?? 'no method'}, tcp-keepalive ${run.ours ?? '-'} s (bound ${run.bound ?? '-'} s), setKeepAlive only ${run.theirs ?? '-'} s (bound ${run.nodeBound ?? '-'} s)`);
  expect(run.code, run.output).toBe(0);
  expect(run.method, run.output).toBe(method);
  expect(run.bound, run.output).toBe(BOUND_S);
  expect(run.ours, run.output).toBeGreaterThanOrEqual(BOUND_S * EARLY_RATIO);
  expect(run.ours, run.output).toBeLessThanOrEqual(BOUND_S + LATE_MS / 1000);
  expect(run.nodeBound, run.output).toBe(NODE_BOUND_S);
  expect(run.theirs, run.output).toBeGreaterThanOrEqual(NODE_BOUND_S * EARLY_RATIO);
  expect(run.theirs, run.output).toBeLessThanOrEqual(NODE_BOUND_S + LATE_MS / 1000);
}

const rootReason = rootUnavailable();
const absentReason = rootReason ?? absentUnavailable();
const staged = rootReason ? undefined : stage();
const nobodyReason = rootReason ?? nobodyUnavailable(staged!);
const nobodyAbsentReason = nobodyReason ?? absentReason;
const nftReason = nobodyReason ?? (locations('nft').length > 0 ? undefined : 'needs nft (Debian package nftables)');

afterAll(() => {
  if (staged) rmSync(staged, { recursive: true, force: true });
  if (measured.length > 0) console.log(`npm run demo, measured (seconds after the last packet):\n  ${measured.sort().join('\n  ')}`);
});

mustRunInCi('the demo as root with nft and iptables absent', absentReason);
mustRunInCi('the demo as root with nft and iptables failing', rootReason);
mustRunInCi('the demo as nobody with nft and iptables absent', nobodyAbsentReason);
mustRunInCi('the demo as nobody with nftables', nftReason);

describe.concurrent('npm run demo pulls the cable with what the machine has', () => {
  it.skipIf(absentReason)('as root, nft and iptables not installed: iproute2 policy routing, detected within the bound', async ({ expect }) => {
    const run = await runDemo({ hide: 'absent', as: 'root', cwd: REPO });
    expectPulledAndDetected(expect, run, 'iproute2 policy routing', 'root, iproute2 (nft, iptables absent)');
    expect(run.output).toContain('Tried first: nft: not installed; iptables: not installed.');
  }, RUN_TIMEOUT_MS + 5000);

  it.skipIf(rootReason)('as root, nft and iptables installed but failing: falls through to iproute2 policy routing', async ({ expect }) => {
    const run = await runDemo({ hide: 'failing', as: 'root', cwd: REPO });
    expectPulledAndDetected(expect, run, 'iproute2 policy routing', 'root, iproute2 (nft, iptables failing)');
    expect(run.output).toMatch(/Tried first: nft: `[^`]*nft -f -` said: exit 1;/);
  }, RUN_TIMEOUT_MS + 5000);

  it.skipIf(nobodyAbsentReason)('as nobody (user + network namespace), nft and iptables not installed: iproute2 policy routing', async ({ expect }) => {
    const run = await runDemo({ hide: 'absent', as: 'nobody', cwd: staged! });
    expectPulledAndDetected(expect, run, 'iproute2 policy routing', 'nobody, iproute2 (nft, iptables absent)');
    expect(run.output).toContain('Tried first: nft: not installed; iptables: not installed.');
  }, RUN_TIMEOUT_MS + 5000);

  it.skipIf(nftReason)('as nobody (user + network namespace), with nftables', async ({ expect }) => {
    const run = await runDemo({ hide: 'nothing', as: 'nobody', cwd: staged! });
    expectPulledAndDetected(expect, run, 'nftables', 'nobody, nftables');
    expect(run.output).not.toContain('Tried first');
  }, RUN_TIMEOUT_MS + 5000);
});

describe('where the demo cannot pull the cable it says why and names the one package', () => {
  it.skipIf(absentReason)('without iproute2: names iproute2, exits 0 (1 under TCP_KEEPALIVE_STRICT=1)', async ({ expect }) => {
    // PATH holds only unshare; the sbin directories are emptied: no ip anywhere the demo looks.
    const bin = mkdtempSync(join(tmpdir(), 'tcp-keepalive-demo-path-'));
    try {
      symlinkSync(tools.unshare!, join(bin, 'unshare'));
      const sbin = ['/usr/local/sbin', '/usr/sbin', '/sbin'].filter(existsSync).map(realDir);
      const setup = [...new Set(sbin)].map((dir) => `${quote(tools.mount!)} -t tmpfs -o size=64k,mode=755 tcp-keepalive-demo ${quote(dir)}`);
      for (const strictValue of ['0', '1']) {
        const run = await runDemo({ hide: 'nothing', as: 'root', cwd: REPO, setup, env: { ...process.env, PATH: bin, TCP_KEEPALIVE_STRICT: strictValue } });
        expect(run.output).toContain('2. Pulling the cable: not done.');
        expect(run.output).toContain('apt-get install iproute2');
        expect(run.output).toContain('the kernel now holds: keepalive on, idle 3000 ms, then 3 probes 1000 ms apart');
        expect(run.code, run.output).toBe(strictValue === '1' ? 1 : 0);
      }
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  }, RUN_TIMEOUT_MS);

  it.skipIf(rootReason)('without network namespaces (user.max_net_namespaces=0 in a user namespace): says what it could not do', async ({ expect }) => {
    // The limits are per user namespace: 0 inside one of our own, the machine's stay as they are.
    const script = 'echo 0 > /proc/sys/user/max_user_namespaces && echo 0 > /proc/sys/user/max_net_namespaces && exec "$@"';
    const env = { ...process.env, TCP_KEEPALIVE_STRICT: '0' };
    const result = await runChild(tools.unshare!, ['-U', '-r', tools.sh!, '-c', script, 'sh', process.execPath, DEMO], { cwd: REPO, env, timeout: RUN_TIMEOUT_MS });
    expect(result.stdout).toContain('2. Pulling the cable: not done. I could not create a private network namespace:');
    expect(result.stdout).toContain('user.max_net_namespaces');
    expect(result.status, result.stdout + result.stderr).toBe(0);
  }, RUN_TIMEOUT_MS);
});
