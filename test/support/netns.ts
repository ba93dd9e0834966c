import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as readline from 'node:readline';
import type { KeepaliveOptions, KeepaliveValues, TcpInfo } from '../../dist/index.js';
import { hasCommand } from './has-command.js';
import { KernelOptions, kernelOptionsOf } from './kernel';

/**
 * Private network namespaces for dead-peer tests. Each holds only `lo` (127.0.0.1); an agent process
 * inside it (netns-agent.js) owns the sockets, and the test "pulls the cable" by having nftables drop
 * every packet of a port on the namespace's input hook, so the sender sees no error, only silence.
 */

const PREFIX = 'tcpka';
const TABLE = 'deadpeer';
const AGENT = join(__dirname, 'netns-agent.js');
const DIST = join(__dirname, '..', '..', 'dist', 'index.js');

/** CLOCK_MONOTONIC in ms: the same clock as the agents' `t`, in every process on the machine. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}


function run(command: string, args: string[], input?: string): string {
  const result = spawnSync(command, args, { input, encoding: 'utf8' });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces left by a test process that died before its cleanup ran. */
function removeStale(): void {
  for (const line of run('ip', ['netns', 'list']).split('\n')) {
    const match = new RegExp(`^(${PREFIX}-(\\d+)-\\d+)\\b`).exec(line);
    if (match && !pidAlive(Number(match[2]))) spawnSync('ip', ['netns', 'del', match[1]], { stdio: 'ignore' });
  }
}

function probe(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces and nftables';
  if (process.getuid?.() !== 0) return 'needs root (ip netns add, nft)';
  if (!hasCommand('ip')) return 'needs ip (Debian package iproute2)';
  if (!hasCommand('nft')) return 'needs nft (Debian package nftables)';
  const name = `${PREFIX}-${process.pid}-probe`;
  try {
    removeStale();
    run('ip', ['netns', 'add', name]);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    run('ip', ['netns', 'exec', name, 'nft', 'add', 'table', 'inet', TABLE]);
    return undefined;
  } catch (error) {
    return `cannot create a network namespace with an nftables table here: ${(error as Error).message}`;
  } finally {
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
}

/** Why private namespaces with nftables cannot be used here, or undefined when they can. */
export const netnsUnavailable = probe();

export interface AgentEvent {
  ev: 'ready' | 'accept' | 'error' | 'close' | 'dead';
  sock?: string;
  /** tcp-keepalive:dead */
  side?: string;
  source?: string;
  idleMs?: number;
  unacked?: number;
  afterError?: boolean;
  server?: string;
  code?: string;
  syscall?: string;
  remotePort?: number;
  t: number;
}

export interface Connected {
  sock: string;
  localPort: number;
  /** When the agent saw the connection established: the last packet before the test cuts it. */
  t: number;
}

interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

/** A Node process inside the namespace that opens sockets on command and reports what happens to them. */
export class Agent {
  readonly events: AgentEvent[] = [];
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  private readonly watchers = new Set<() => void>();
  private readonly ready: Promise<void>;
  private nextId = 0;
  private stderr = '';
  private exited: Error | undefined;
  private onReady: () => void = () => {};

  constructor(namespace: string, runtime = process.execPath) {
    this.child = spawn('ip', ['netns', 'exec', namespace, runtime, AGENT, DIST], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.ready = new Promise((resolve, reject) => {
      this.onReady = resolve;
      this.child.once('exit', (code, signal) => {
        this.exited = new Error(`agent in ${namespace} exited (${code ?? signal}): ${this.stderr.trim()}`);
        reject(this.exited);
        for (const { reject: fail } of this.pending.values()) fail(this.exited);
        this.pending.clear();
      });
    });
    this.ready.catch(() => {});
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => this.receive(JSON.parse(line)));
  }

  private receive(message: Reply | AgentEvent): void {
    if ('id' in message) {
      const call = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.ok) call?.resolve(message);
      else call?.reject(new Error(message.error));
      return;
    }
    if (message.ev === 'ready') this.onReady();
    this.events.push(message);
    for (const watcher of this.watchers) watcher();
  }

  private async call<T>(op: string, args: object = {}): Promise<T> {
    await this.ready;
    if (this.exited) throw this.exited;
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    return (await reply) as unknown as T;
  }

  /** A server on 127.0.0.1, optionally with `applyKeepalive(server, keepalive)`. */
  listen(keepalive?: KeepaliveOptions): Promise<{ server: string; port: number }> {
    return this.call('listen', { keepalive });
  }

  /** `count` clients to 127.0.0.1:port, each given `applyKeepalive(socket, keepalive)` before it connects, and/or Node's own `setKeepAlive(true, nodeKeepAlive)`. */
  async connect(port: number, options: { count?: number; keepalive?: KeepaliveOptions; nodeKeepAlive?: number } = {}): Promise<Connected[]> {
    return (await this.call<{ sockets: Connected[] }>('connect', { port, ...options })).sockets;
  }

  /** Writes `bytes` on each socket; returns when the writes were issued. */
  async write(socks: string[], bytes: number): Promise<number> {
    return (await this.call<{ t: number }>('write', { socks, bytes })).t;
  }

  /** `getKeepalive` on the agent's socket. */
  async keepalive(sock: string): Promise<KeepaliveValues> {
    return (await this.call<{ values: KeepaliveValues }>('keepalive', { sock })).values;
  }

  /** `getTcpInfo` on the agent's socket, with when it was read. */
  async tcpInfo(sock: string): Promise<{ info: TcpInfo; t: number }> {
    return this.call<{ info: TcpInfo; t: number }>('tcpInfo', { sock });
  }

  /** Ends the socket with a reset (resetAndDestroy), or cleanly (end). */
  async close(sock: string, how: 'reset' | 'end'): Promise<void> {
    await this.call(how, { sock });
  }

  /** The sockets among `socks` that are not destroyed. */
  async open(socks: string[]): Promise<string[]> {
    return (await this.call<{ open: string[] }>('state', { socks })).open;
  }

  /** Resolves true as soon as `done(events)` holds, or false after `timeoutMs`. */
  until(done: (events: AgentEvent[]) => boolean, timeoutMs: number): Promise<boolean> {
    if (done(this.events)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (result: boolean): void => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
        resolve(result);
      };
      const watcher = (): void => {
        if (done(this.events)) finish(true);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.watchers.add(watcher);
    });
  }

  /** The first `error` event of a socket, waiting up to `timeoutMs` for it; undefined if none came. */
  async errorOf(sock: string, timeoutMs: number): Promise<AgentEvent | undefined> {
    const find = (events: AgentEvent[]): AgentEvent | undefined => events.find((e) => e.ev === 'error' && e.sock === sock);
    await this.until((events) => find(events) !== undefined, timeoutMs);
    return find(this.events);
  }

  /** The `accept` event of a server's next unseen connection. */
  async accepted(server: string, timeoutMs = 5000): Promise<AgentEvent> {
    const find = (events: AgentEvent[]): AgentEvent | undefined => events.find((e) => e.ev === 'accept' && e.server === server);
    if (!(await this.until((events) => find(events) !== undefined, timeoutMs))) throw new Error(`no connection accepted on ${server}`);
    return find(this.events)!;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

const live = new Set<Netns>();
let counter = 0;

/** A private network namespace with `lo` up and an empty nftables input chain. */
export class Netns {
  readonly name = `${PREFIX}-${process.pid}-${counter++}`;
  private readonly agents: Agent[] = [];

  constructor() {
    live.add(this);
    run('ip', ['netns', 'add', this.name]);
    run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
    this.nft(`add table inet ${TABLE}\nadd chain inet ${TABLE} input { type filter hook input priority 0; policy accept; }\n`);
  }

  /** Runs an nft script inside the namespace. */
  nft(script: string): string {
    return run('ip', ['netns', 'exec', this.name, 'nft', '-f', '-'], script);
  }

  /** Every established TCP socket of `pid` in the namespace, by "localPort>peerPort", read by the pidfd observer. */
  socketsOf(pid: number): Map<string, KernelOptions> {
    const out = execFileSync('ip', ['netns', 'exec', this.name, 'ss', '-tnpH', 'state', 'established'], { encoding: 'utf8' });
    const found = new Map<string, KernelOptions>();
    const port = (address: string): string => address.slice(address.lastIndexOf(':') + 1);
    for (const line of out.split('\n')) {
      const columns = line.trim().split(/\s+/);
      const fd = new RegExp(`pid=${pid},fd=(\\d+)`).exec(line);
      if (columns.length < 5 || !fd) continue;
      found.set(`${port(columns[2])}>${port(columns[3])}`, kernelOptionsOf(pid, Number(fd[1])));
    }
    return found;
  }

  /** Starts an agent inside the namespace: this Node, or another runtime's binary (Node 22-26, Bun). */
  agent(runtime?: string): Agent {
    const agent = new Agent(this.name, runtime);
    this.agents.push(agent);
    return agent;
  }

  /**
   * Pulls the cable on every connection to or from `port`: packets are dropped as they arrive, both
   * ways, so neither end gets an error or a reset, only silence. Returns when the rule is in force.
   */
  cut(port: number): number {
    this.nft(`add rule inet ${TABLE} input tcp dport ${port} drop\nadd rule inet ${TABLE} input tcp sport ${port} drop\n`);
    return monotonicMs();
  }

  /** Counts the packets of every connection to or from `port` from now on (read with `packets`). */
  count(port: number): void {
    this.nft(`add rule inet ${TABLE} input tcp dport ${port} counter comment "port-${port}"\nadd rule inet ${TABLE} input tcp sport ${port} counter comment "port-${port}"\n`);
  }

  /** Packets counted for `port` since `count(port)`, both directions. */
  packets(port: number): number {
    const listing = JSON.parse(run('ip', ['netns', 'exec', this.name, 'nft', '-j', 'list', 'chain', 'inet', TABLE, 'input'])) as {
      nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number } }> } }>;
    };
    let packets = 0;
    for (const { rule } of listing.nftables) {
      if (rule?.comment !== `port-${port}`) continue;
      for (const expr of rule.expr) packets += expr.counter?.packets ?? 0;
    }
    return packets;
  }

  /** A net.* sysctl as the namespace sees it (they are per namespace), e.g. `net/ipv4/tcp_retries2`. */
  sysctl(path: string): string {
    return run('ip', ['netns', 'exec', this.name, 'cat', `/proc/sys/${path}`]).trim();
  }

  /** Kills the agents and deletes the namespace, which takes its nftables tables with it. */
  destroy(): void {
    for (const agent of this.agents.splice(0)) agent.kill();
    if (live.delete(this)) spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
  }
}

/** Deletes every namespace this process created that is still there. */
export function removeAllNetns(): void {
  for (const netns of [...live]) netns.destroy();
}

process.once('exit', removeAllNetns);
