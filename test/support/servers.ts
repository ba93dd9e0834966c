import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Netns } from './netns';
import { hasCommand } from './has-command.js';

/**
 * Real servers for the driver suite, each started by the test with a data directory of its own under a
 * temp dir, inside one private network namespace on 127.0.0.1: PostgreSQL 15, Redis 7 and MariaDB 10.11
 * from Debian's packages, and a Node HTTP/HTTPS/WebSocket server (servers-node.js).
 *
 * Every client scenario gets addresses of its own in 127.1.0.0/16, DNAT-ed to 127.0.0.1 by nftables, so one
 * set of servers serves many scenarios at once and "pulling the cable" of one scenario (dropping every
 * packet whose connection was opened to its address, both ways, new connections included) touches no other.
 */

export const PORTS = { postgres: 5432, redis: 6379, redisTls: 6380, mariadb: 3306, http: 8080, https: 8443 } as const;

const FIXTURES = join(__dirname, '..', 'fixtures');
const NODE_SERVER = join(__dirname, 'servers-node.js');
const TABLE = 'lab';
const PG_BIN = '/usr/lib/postgresql/15/bin';

function userExists(name: string): boolean {
  return spawnSync('id', [name], { stdio: 'ignore' }).status === 0;
}

/** Why the real servers cannot run here, or undefined when they can (the packages .ci/steps/30-servers.sh installs). */
export function serversUnavailable(): string | undefined {
  const missing: string[] = [];
  if (!hasCommand(`${PG_BIN}/postgres`) || !userExists('postgres')) missing.push('postgresql (15)');
  if (!hasCommand('redis-server')) missing.push('redis-server');
  if (!hasCommand('mariadbd') || !hasCommand('mariadb-install-db') || !userExists('mysql')) missing.push('mariadb-server');
  if (!hasCommand('setpriv')) missing.push('util-linux (setpriv)');
  return missing.length ? `needs Debian packages: ${missing.join(', ')} (.ci/steps/30-servers.sh installs them)` : undefined;
}

function run(command: string, args: string[], options: { input?: string } = {}): string {
  const result = spawnSync(command, args, { input: options.input, encoding: 'utf8' });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr.trim() || result.stdout.trim()}`);
  return result.stdout;
}

function runAsync(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed (${code}): ${stderr.trim()}`))));
  });
}

/** Runs a command as a system user, replacing the process (no forking wrapper), so its pid is the server's. */
function asUser(user: string, command: string, args: string[]): [string, string[]] {
  return ['setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', command, ...args]];
}

interface Started {
  name: string;
  child: ChildProcess;
  log: string[];
  /** Signal that stops it and its children cleanly (PostgreSQL: SIGQUIT, immediate shutdown). */
  stopSignal: NodeJS.Signals;
}

const labs = new Set<ServerLab>();

/** A network namespace holding PostgreSQL, Redis, MariaDB and a Node HTTP/HTTPS/WS server on 127.0.0.1. */
export class ServerLab {
  readonly netns = new Netns();
  readonly dir = mkdtempSync(join(tmpdir(), 'tcpka-servers-'));
  private readonly started: Started[] = [];
  private nextHost = 0;
  private stopped = false;

  constructor() {
    labs.add(this);
    chmodSync(this.dir, 0o755);
    this.netns.nft(
      `add table inet ${TABLE}\n` +
        `add chain inet ${TABLE} nat_out { type nat hook output priority -100; }\n` +
        `add chain inet ${TABLE} input { type filter hook input priority 0; policy accept; }\n` +
        `add rule inet ${TABLE} nat_out ip daddr 127.1.0.0/16 dnat ip to 127.0.0.1\n`,
    );
  }

  /** A fresh address for one client scenario, in 127.1.0.0/16, reaching every server here. */
  host(): string {
    const n = this.nextHost++;
    if (n >= 250 * 250) throw new Error('out of scenario addresses');
    return `127.1.${Math.floor(n / 250) + 1}.${(n % 250) + 1}`;
  }

  /** The nft command that pulls the cable of every connection opened to `host` (run inside the namespace). */
  cutScript(host: string): string {
    return `add rule inet ${TABLE} input ct original ip daddr ${host} drop\n`;
  }

  /** Pulls the cable of every connection opened to `host`: its packets are dropped both ways, from now on. */
  cut(host: string): void {
    this.netns.nft(this.cutScript(host));
  }

  /** Spawns a command inside the namespace. */
  spawn(command: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.netns.name, command, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
  }

  private exec(command: string, args: string[]): string {
    return run('ip', ['netns', 'exec', this.netns.name, command, ...args]);
  }

  private tls(owner: string): { cert: string; key: string } {
    const dir = join(this.dir, `tls-${owner}`);
    mkdirSync(dir);
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    copyFileSync(join(FIXTURES, 'cert.pem'), cert);
    copyFileSync(join(FIXTURES, 'key.pem'), key);
    chmodSync(key, 0o600);
    const { uid, gid } = idOf(owner);
    for (const path of [dir, cert, key]) chownSync(path, uid, gid);
    return { cert, key };
  }

  private launch(name: string, command: string, args: string[], stopSignal: NodeJS.Signals = 'SIGTERM'): Started {
    const child = this.spawn(command, args);
    const log: string[] = [];
    const keep = (chunk: Buffer): void => {
      log.push(chunk.toString('utf8'));
      if (log.length > 200) log.shift();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const started = { name, child, log, stopSignal };
    this.started.push(started);
    return started;
  }

  private async until(what: Started, ready: () => boolean, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (what.child.exitCode !== null || what.child.signalCode !== null) throw new Error(`${what.name} exited (${what.child.exitCode ?? what.child.signalCode}):\n${what.log.join('').slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`${what.name} not ready after ${timeoutMs / 1000} s:\n${what.log.join('').slice(-3000)}`);
      await sleep(100);
    }
  }

  private listening(port: number): boolean {
    return spawnSync('ip', ['netns', 'exec', this.netns.name, 'ss', '-Htln', `( sport = :${port} )`], { encoding: 'utf8' }).stdout.trim() !== '';
  }

  private async postgres(): Promise<void> {
    const data = join(this.dir, 'postgres');
    const sockets = join(this.dir, 'postgres-sockets');
    const { uid, gid } = idOf('postgres');
    for (const path of [data, sockets]) {
      mkdirSync(path);
      chownSync(path, uid, gid);
    }
    const { cert, key } = this.tls('postgres');
    await runAsync(...asUser('postgres', `${PG_BIN}/initdb`, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']));
    const server = this.launch(
      'postgres',
      ...asUser('postgres', `${PG_BIN}/postgres`, [
        '-D', data,
        '-c', 'listen_addresses=127.0.0.1',
        '-c', `port=${PORTS.postgres}`,
        '-c', `unix_socket_directories=${sockets}`,
        '-c', 'ssl=on',
        '-c', `ssl_cert_file=${cert}`,
        '-c', `ssl_key_file=${key}`,
        '-c', 'fsync=off',
        '-c', 'max_connections=300',
        '-c', 'shared_buffers=16MB',
      ]),
      'SIGQUIT',
    );
    await this.until(server, () => spawnSync('ip', ['netns', 'exec', this.netns.name, `${PG_BIN}/pg_isready`, '-q', '-h', '127.0.0.1', '-p', String(PORTS.postgres)]).status === 0);
  }

  private async redis(): Promise<void> {
    const data = join(this.dir, 'redis');
    mkdirSync(data);
    const { uid, gid } = idOf('redis');
    chownSync(data, uid, gid);
    const { cert, key } = this.tls('redis');
    const server = this.launch(
      'redis',
      ...asUser('redis', 'redis-server', [
        '--bind', '127.0.0.1',
        '--port', String(PORTS.redis),
        '--tls-port', String(PORTS.redisTls),
        '--tls-cert-file', cert,
        '--tls-key-file', key,
        '--tls-ca-cert-file', cert,
        '--tls-auth-clients', 'no',
        '--dir', data,
        '--save', '',
        '--appendonly', 'no',
        '--protected-mode', 'no',
        '--daemonize', 'no',
        '--logfile', '',
        '--maxclients', '1000',
      ]),
    );
    await this.until(server, () => this.listening(PORTS.redis) && this.listening(PORTS.redisTls));
  }

  private async mariadb(): Promise<void> {
    const data = join(this.dir, 'mariadb');
    const { uid, gid } = idOf('mysql');
    mkdirSync(data);
    chownSync(data, uid, gid);
    const { cert, key } = this.tls('mysql');
    const init = join(this.dir, 'mariadb-init.sql');
    writeFileSync(init, "CREATE USER IF NOT EXISTS 'test'@'%';\nGRANT ALL PRIVILEGES ON *.* TO 'test'@'%';\n");
    chmodSync(init, 0o644);
    await runAsync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve']);
    const server = this.launch('mariadb', 'mariadbd', [
      '--no-defaults',
      `--datadir=${data}`,
      '--user=mysql',
      '--bind-address=127.0.0.1',
      `--port=${PORTS.mariadb}`,
      `--socket=${join(data, 'mariadb.sock')}`,
      `--pid-file=${join(data, 'mariadb.pid')}`,
      `--ssl-cert=${cert}`,
      `--ssl-key=${key}`,
      '--skip-name-resolve',
      `--init-file=${init}`,
      '--innodb-buffer-pool-size=16M',
      '--skip-log-bin',
      '--max-connections=300',
    ]);
    await this.until(server, () => this.listening(PORTS.mariadb));
  }

  private async node(env: Record<string, string>): Promise<void> {
    const server = this.launch('node servers', 'env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, NODE_SERVER, join(__dirname, '..', '..', 'dist', 'index.js')]);
    await this.until(server, () => server.log.join('').includes('ready'));
  }

  /** The pid of a server started here ('postgres', 'redis', 'mariadb', 'node servers'). */
  pid(name: string): number {
    const found = this.started.find((s) => s.name === name);
    if (!found?.child.pid) throw new Error(`${name} not started`);
    return found.child.pid;
  }

  /**
   * Starts every server (in parallel) and waits until each accepts connections. `nodeServerEnv` goes to
   * the Node HTTP/WS server, e.g. `{ LAB_DEFAULT_KEEPALIVE: JSON.stringify(options) }`.
   */
  async start(nodeServerEnv: Record<string, string> = {}): Promise<this> {
    await Promise.all([this.postgres(), this.redis(), this.mariadb(), this.node(nodeServerEnv)]);
    return this;
  }

  /** Stops every server, kills anything left that ran from its directory, deletes the namespace and the files. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    labs.delete(this);
    for (const s of this.started) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill(s.stopSignal);
    const deadline = Date.now() + 10_000;
    while (this.started.some((s) => s.child.exitCode === null && s.child.signalCode === null) && Date.now() < deadline) await sleep(50);
    this.killLeftovers();
    this.netns.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort (process exit): SIGKILL for every process started here or running from the directory. */
  killLeftovers(): void {
    for (const s of this.started) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    for (const pid of processesUsing(this.dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

function idOf(user: string): { uid: number; gid: number } {
  return { uid: Number(run('id', ['-u', user]).trim()), gid: Number(run('id', ['-g', user]).trim()) };
}

/** Processes whose command line mentions `dir` (server processes and their children, e.g. PostgreSQL backends). */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

process.once('exit', () => {
  for (const lab of labs) {
    lab.killLeftovers();
    lab.netns.destroy();
    rmSync(lab.dir, { recursive: true, force: true });
  }
});
