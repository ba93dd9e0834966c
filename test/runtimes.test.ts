import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as net from 'node:net';
import { dirname, join, relative } from 'node:path';
import * as readline from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { applyKeepalive, getKeepalive, KeepaliveOptions } from '../dist/index.js';
import { binding } from '../dist/binding.js';
import { KernelOptions, kernelOptions, kernelOptionsOf, mustRunInCi, observerUnavailable } from './support/kernel';
import { closeAll, connectedPair, listening, track } from './support/net';
import { monotonicMs, Netns, netnsUnavailable } from './support/netns';

/**
 * The contract under Bun and Deno (installed from npm by .ci/steps/35-runtimes.sh), each running
 * test/runtimes/contract.mjs from a project that depends on tcp-keepalive as a user's would, inside a private
 * network namespace. Every socket it configures is found by its addresses in /proc/<pid>/net/tcp{,6} and
 * /proc/<pid>/fd, and its options are read through a duplicate of its descriptor (pidfd_getfd), not through
 * the package.
 */

const root = join(__dirname, '..');
const versions = JSON.parse(readFileSync(join(__dirname, 'runtimes', 'versions.json'), 'utf8')) as Record<'bun' | 'deno', { version: string }>;

const contract = createRequire(__filename)('./support/contract.js') as typeof import('./support/contract.js');

/** The contract's cases, run by contract.mjs in the runtime, each checked here by reading the kernel from outside. */
const CASES = contract.casesFor('linux').map((kase) => kase.name);

/** What contract.mjs checks beyond the contract's cases, in order, and what each must give. */
const ERRORS: Record<string, { code: string; type?: string }> = {
  'getKeepalive(http.Server) while listening': { code: 'no error' },
  'Unix-domain net server applied before listen: its client got': { code: 'hello' },
  'Unix-domain http server applied before listen: its client got': { code: 'hello' },
  'applyKeepalive(request socket of an http.Server on a path)': { code: 'ERR_KEEPALIVE_NOT_TCP', type: 'Error' },
  'getKeepalive(request socket of an http.Server on a path)': { code: 'ERR_KEEPALIVE_NOT_TCP', type: 'Error' },
  'Unix-domain servers: TCP_KEEPALIVE_NOT_TCP warnings': { code: '2' },
  'deferred apply, connection refused': { code: 'ECONNREFUSED' },
};

interface Endpoint {
  address: string;
  port: number;
}

interface Report {
  runtime: string;
  pid: number;
  cases: Array<{ name: string; ok: boolean; detail: string }>;
  sockets: Array<{
    name: string;
    what: string;
    local: Endpoint;
    remote: Endpoint;
    expected: Partial<KernelOptions>;
    got: Record<string, unknown>;
    tcp: { state?: string; rtt?: number; bytesSent?: number; bytesReceived?: number; error?: string };
  }>;
  errors: Array<{ name: string; code: string; type?: string; message?: string }>;
}

interface Runtime {
  name: 'bun' | 'deno';
  version: string;
  binary: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

const cache = join(root, '.cache', 'runtimes');

/** How late a dead peer may be noticed on a loaded 2-core machine (as in test/deadpeer.test.ts). */
const LATE_MS = 1500;

function runtime(name: 'bun' | 'deno'): Runtime {
  const { version } = versions[name];
  const binary = join(cache, `${name}-${version}`, name);
  // Deno loads a Node-API addon only with --allow-ffi, and node-gyp-build needs --allow-env and --allow-read;
  // --allow-net and --allow-write (the Unix-domain socket) are for the contract script itself.
  const args = name === 'deno' ? ['run', '--allow-ffi', '--allow-env', '--allow-read', '--allow-net', '--allow-write', '--node-modules-dir=manual'] : [];
  const env = name === 'deno' ? { DENO_DIR: join(cache, 'deno-dir'), DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } : { NO_COLOR: '1' };
  return { name, version, binary, args, env };
}

const notRoot = process.getuid?.() === 0 ? undefined : 'needs root (network namespaces, pidfd_getfd)';

function unavailable(rt: Runtime): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'the runtimes are installed for linux-x64 only';
  if (!existsSync(rt.binary)) return `${rt.name} ${rt.version} is not installed in ${relative(root, cache)} (run bash .ci/steps/35-runtimes.sh)`;
  return notRoot ?? observerUnavailable ?? netnsUnavailable;
}

/**
 * A project whose package.json declares tcp-keepalive and whose node_modules holds a copy of the package as npm
 * installs it (dist/, package.json, the addon node-gyp-build loads here) and node-gyp-build. A copy, not a link:
 * Deno resolves a linked package to its real path outside node_modules and then reads dist/*.js as ES modules.
 */
function userProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcp-keepalive-runtimes-'));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'runtime-contract', private: true, type: 'module', dependencies: { 'tcp-keepalive': pkg.version } }));
  const installed = join(dir, 'node_modules', 'tcp-keepalive');
  mkdirSync(installed, { recursive: true });
  cpSync(join(root, 'package.json'), join(installed, 'package.json'));
  cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true });
  const addon = (createRequire(__filename)('node-gyp-build') as { resolve(dir: string): string }).resolve(root);
  const addonCopy = join(installed, relative(root, addon));
  mkdirSync(dirname(addonCopy), { recursive: true });
  cpSync(addon, addonCopy);
  cpSync(join(root, 'node_modules', 'node-gyp-build'), join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
  cpSync(join(__dirname, 'runtimes', 'contract.mjs'), join(dir, 'contract.mjs'));
  cpSync(join(__dirname, 'support', 'contract.js'), join(dir, 'contract-cases.cjs'));
  return dir;
}

/** 16 bytes of an IPv6 address (IPv4 as IPv4-mapped), from text. */
function ipBytes(text: string): number[] {
  if (!text.includes(':')) return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...text.split('.').map(Number)];
  let words: number[] = [];
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let head = text;
  if (tail) {
    const [a, b, c, d] = tail[1].split('.').map(Number);
    words = [(a << 8) | b, (c << 8) | d];
    head = text.slice(0, -tail[1].length).replace(/:$/, '') || ':';
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').filter(Boolean).map((w) => parseInt(w, 16)) : []);
  const l = parse(left);
  const r = parse(right);
  const fill = right === undefined ? [] : new Array(8 - l.length - r.length - words.length).fill(0);
  return [...l, ...fill, ...r, ...words].flatMap((w) => [w >> 8, w & 0xff]);
}

/** A /proc/net/tcp address: hex, each 32-bit word in host (little-endian) order, then the port. */
function procEndpoint(field: string): string {
  const [hex, port] = field.split(':');
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(hex.slice(w + b, w + b + 2), 16));
  const v6 = bytes.length === 4 ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...bytes] : bytes;
  return `${v6.join('.')}#${parseInt(port, 16)}`;
}

const endpointKey = (e: Endpoint) => `${ipBytes(e.address).join('.')}#${e.port}`;

/** The descriptor of process `pid` that holds the TCP connection local → remote, found by the kernel's tables. */
function descriptorOf(pid: number, local: Endpoint, remote: Endpoint): number {
  const wanted = `${endpointKey(local)} ${endpointKey(remote)}`;
  let inode: string | undefined;
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      if (`${procEndpoint(fields[1])} ${procEndpoint(fields[2])}` === wanted) inode = fields[9];
    }
  }
  if (inode === undefined) throw new Error(`no TCP connection ${local.address}:${local.port} -> ${remote.address}:${remote.port} in /proc/${pid}/net`);
  for (const entry of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${entry}`) === `socket:[${inode}]`) return Number(entry);
    } catch {}
  }
  throw new Error(`no descriptor of process ${pid} holds socket inode ${inode}`);
}

/** A line the contract script printed after READY, with when it arrived (CLOCK_MONOTONIC, ms). */
interface Line {
  text: string;
  t: number;
}

interface Started {
  child: ChildProcess;
  report: Promise<Report>;
  /** Resolves with the next line starting with `prefix` (searching those already printed first), or undefined after `ms`. */
  next(prefix: string, ms: number): Promise<Line | undefined>;
}

/** Starts contract.mjs under the runtime in the namespace and resolves with its report once it is ready. */
function start(rt: Runtime, project: string, netns: Netns): Started {
  const fixtures = join(__dirname, 'fixtures');
  const args = [...rt.args, 'contract.mjs', join(fixtures, 'cert.pem'), join(fixtures, 'key.pem'), join(project, 'contract.sock')];
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^(VITEST|NODE_OPTIONS$)/.test(key)) env[key] = value;
  const child = spawn('ip', ['netns', 'exec', netns.name, rt.binary, ...args], { cwd: project, env: { ...env, ...rt.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const printed: Line[] = [];
  const waiting = new Set<() => void>();
  const report = new Promise<Report>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.startsWith('READY ')) resolve(JSON.parse(line.slice(6)) as Report);
      else printed.push({ text: line, t: monotonicMs() });
      for (const wake of [...waiting]) wake();
    });
    child.once('exit', (code, signal) => reject(new Error(`${rt.name} exited with ${code ?? signal} before it was ready:\n${stderr.trim()}`)));
    child.once('error', reject);
  });
  const next = (prefix: string, ms: number) =>
    new Promise<Line | undefined>((resolve) => {
      const look = () => {
        const index = printed.findIndex((line) => line.text.startsWith(prefix));
        if (index < 0) return false;
        const [line] = printed.splice(index, 1);
        finish(line);
        return true;
      };
      const finish = (line: Line | undefined) => {
        waiting.delete(wake);
        clearTimeout(timer);
        resolve(line);
      };
      const wake = () => void look();
      const timer = setTimeout(() => finish(undefined), ms);
      if (!look()) waiting.add(wake);
    });
  return { child, report, next };
}

for (const name of ['bun', 'deno'] as const) {
  const rt = runtime(name);
  const skip = unavailable(rt);
  mustRunInCi(`the contract under ${name} ${rt.version}`, skip);

  describe.skipIf(skip)(`${name} ${rt.version}: the contract, kernel-observed${skip ? ` (cannot run here: ${skip})` : ''}`, () => {
    let project: string;
    let netns: Netns;
    let child: ChildProcess;
    let report: Report;
    let next: Started['next'];

    beforeAll(async () => {
      project = userProject();
      netns = new Netns();
      const started = start(rt, project, netns);
      child = started.child;
      next = started.next;
      report = await started.report;
      console.log(`${report.runtime} (pid ${report.pid}): ${report.sockets.length} sockets configured, ${report.errors.length} errors provoked`);
    }, 60_000);

    afterAll(async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.stdin!.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      netns?.destroy();
      if (project) rmSync(project, { recursive: true, force: true });
    });

    it(`runs ${name} ${rt.version} itself and reports every case`, () => {
      expect(report.runtime).toBe(`${name} ${rt.version}`);
      expect(report.cases.map((c) => c.name)).toEqual(CASES);
      expect(report.errors.map((e) => e.name)).toEqual(Object.keys(ERRORS));
    });

    it.each(CASES)('%s', (caseName) => {
      const result = report.cases.find((c) => c.name === caseName)!;
      expect(result.ok, result.detail).toBe(true);
      for (const socket of report.sockets.filter((s) => s.name === caseName)) {
        const seen = kernelOptionsOf(report.pid, descriptorOf(report.pid, socket.local, socket.remote));
        expect(contract.differences(seen, socket.expected, 'linux'), `${socket.what}: the kernel holds ${JSON.stringify(seen)}`).toEqual([]);
      }
    });

    it('getTcpInfo read each connection that ss shows', () => {
      const configured = report.sockets.filter((s) => s.expected.so_keepalive === 1);
      expect(configured.length).toBeGreaterThan(20);
      for (const socket of configured) {
        const what = `${socket.name} (${socket.what})`;
        const filter = `( sport = :${socket.local.port} and dport = :${socket.remote.port} )`;
        const line = spawnSync('ip', ['netns', 'exec', netns.name, 'ss', '-tniH', filter], { encoding: 'utf8' }).stdout.replace(/\s+/g, ' ').trim();
        const bytes = (field: string) => Number(new RegExp(`\\b${field}:(\\d+)`).exec(line)?.[1] ?? 0);
        expect(line, `ss shows ${what}`).toMatch(/^ESTAB /);
        expect(socket.tcp, what).toMatchObject({ state: 'ESTABLISHED', rtt: expect.any(Number) });
        // Read when the case ran; ss reads later, and the counters only grow.
        expect(socket.tcp.bytesSent, what).toBeLessThanOrEqual(bytes('bytes_sent'));
        expect(socket.tcp.bytesReceived, what).toBeLessThanOrEqual(bytes('bytes_received'));
        if (/TLS|https/.test(socket.name)) expect(socket.tcp.bytesSent! + socket.tcp.bytesReceived!, `${what}: the TLS handshake went over this connection`).toBeGreaterThan(100);
      }
    });

    it('handle-less servers on a path, and a failed deferred connect, leave the process alive', () => {
      const seen = Object.fromEntries(report.errors.map((e) => [e.name, ERRORS[e.name]?.type ? { code: e.code, type: e.type } : { code: e.code }]));
      expect(seen, JSON.stringify(report.errors, null, 2)).toEqual(ERRORS);
    });

    it('a pulled cable: an idle net.Socket and an idle http.Server request socket give up with ETIMEDOUT within keepalivetime + keepaliveinterval × keepalivecount', async () => {
      child.stdin!.write('deadpeer\n');
      const ready = await next('DEADPEER-READY ', 20_000);
      expect(ready, 'the dead-peer connections were set up').toBeDefined();
      const { ports, options } = JSON.parse(ready!.text.slice('DEADPEER-READY '.length)) as { ports: number[]; options: Required<Pick<KeepaliveOptions, 'keepalivetime' | 'keepaliveinterval' | 'keepalivecount'>> };
      const cut = monotonicMs();
      for (const port of ports) netns.cut(port);
      const bound = options.keepalivetime + options.keepaliveinterval * options.keepalivecount;
      const seen: string[] = [];
      for (const name of ['net.Socket', 'http.Server: request socket']) {
        const line = await next(`DEAD {"name":${JSON.stringify(name)}`, bound + LATE_MS + 2000 - (monotonicMs() - cut));
        const elapsed = line ? line.t - cut : undefined;
        seen.push(`${name}: ${line ? `${JSON.parse(line.text.slice(5)).code} ${(elapsed! / 1000).toFixed(2)} s after the cable was pulled (bound ${bound / 1000} s)` : 'nothing'}`);
        expect(line, `${name} noticed nothing`).toBeDefined();
        expect(JSON.parse(line!.text.slice(5)).code, name).toBe('ETIMEDOUT');
        expect(elapsed!, `${name}: not before the first probe was due`).toBeGreaterThanOrEqual(options.keepalivetime * 0.9);
        expect(elapsed!, `${name}: within the bound`).toBeLessThanOrEqual(bound + LATE_MS);
      }
      console.log(`${report.runtime} dead peer: ${seen.join('; ')}`);
    }, 30_000);

    it('exits cleanly when its sockets close', async () => {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.stdin!.end();
      expect(await exited).toBe(0);
    });
  });
}

/** The descriptor Node's own handle reports (the lookup below must find the same one by addresses alone). */
function nodeFd(socket: net.Socket | net.Server): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

function resolveByAddress(socket: net.Socket): number {
  return binding.resolve(-1, socket.localAddress, socket.localPort, socket.remoteAddress, socket.remotePort);
}

const socketCalls = (): number => binding.stats()[2];

async function closed(socket: net.Socket): Promise<void> {
  if (!socket.closed) {
    socket.destroy();
    await once(socket, 'close');
  }
}

describe.skipIf(process.platform === 'win32')('the lookup by address that Deno and Bun\'s HTTP sockets take, exercised from Node (which also reports the descriptor)', () => {
  afterEach(closeAll);

  it('finds the descriptor of a client, its accepted end, and the listener', async () => {
    const { server, client, accepted } = await connectedPair();
    expect(resolveByAddress(client)).toBe(nodeFd(client));
    expect(resolveByAddress(accepted)).toBe(nodeFd(accepted));
    const { address, port } = server.address() as net.AddressInfo;
    expect(binding.resolve(-1, address, port, undefined, undefined)).toBe(nodeFd(server));
  });

  it('matches IPv4-mapped addresses on a dual-stack listener, and not a UDP socket on the same port', async () => {
    const server = net.createServer();
    const port = await listening(server, '::');
    const udp = dgram.createSocket('udp6');
    udp.bind(port, '::');
    await once(udp, 'listening');
    try {
      const acceptedP = once(server, 'connection') as Promise<[net.Socket]>;
      const client = track(net.connect(port, '127.0.0.1'));
      await once(client, 'connect');
      const accepted = track((await acceptedP)[0]);
      expect(accepted.localAddress).toBe('::ffff:127.0.0.1');
      expect(resolveByAddress(accepted)).toBe(nodeFd(accepted));
      expect(binding.resolve(-1, '::ffff:127.0.0.1', accepted.localPort, '127.0.0.1', accepted.remotePort)).toBe(nodeFd(accepted));
      expect(binding.resolve(-1, '::', port, undefined, undefined)).toBe(nodeFd(server));
    } finally {
      udp.close();
    }
  });

  it('finds a new socket on a number a closed one held, and never hands out the closed one', async () => {
    const old = await connectedPair();
    const oldAddresses = [old.client.localAddress, old.client.localPort, old.client.remoteAddress, old.client.remotePort] as const;
    const oldFds = [nodeFd(old.client), nodeFd(old.accepted)];
    expect(resolveByAddress(old.client)).toBe(oldFds[0]);
    expect(resolveByAddress(old.accepted)).toBe(oldFds[1]);
    await Promise.all([closed(old.client), closed(old.accepted)]);

    const { client, accepted } = await connectedPair();
    const reused = [nodeFd(client), nodeFd(accepted)].filter((fd) => oldFds.includes(fd));
    expect(reused.length, 'the new connection took at least one of the closed numbers').toBeGreaterThan(0);
    expect(resolveByAddress(client)).toBe(nodeFd(client));
    expect(resolveByAddress(accepted)).toBe(nodeFd(accepted));
    expect(() => binding.resolve(-1, ...oldAddresses)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_SOCKET_NOT_FOUND' }));
  });

  it('costs the same socket calls for a new connection with 20 or 1000 descriptors open (counted, not timed)', async () => {
    const server = net.createServer((s) => track(s));
    const port = await listening(server);
    const connection = async (): Promise<[net.Socket, net.Socket]> => {
      const acceptedP = once(server, 'connection') as Promise<[net.Socket]>;
      const client = track(net.connect(port, '127.0.0.1'));
      await once(client, 'connect');
      return [client, (await acceptedP)[0]];
    };
    const callsForNew = async (): Promise<number> => {
      const [client, accepted] = await connection();
      const before = socketCalls();
      expect(resolveByAddress(client)).toBe(nodeFd(client));
      expect(resolveByAddress(accepted)).toBe(nodeFd(accepted));
      return socketCalls() - before;
    };
    const held: net.Socket[] = [];
    for (let i = 0; i < 4; i++) held.push(...(await connection()));
    for (const socket of held) resolveByAddress(socket);
    const few = [await callsForNew(), await callsForNew(), await callsForNew()];
    while (readdirSync('/proc/self/fd').length < 1000) held.push(...(await connection()));
    resolveByAddress(held[held.length - 1]);
    const many = [await callsForNew(), await callsForNew(), await callsForNew()];
    const hitBefore = socketCalls();
    resolveByAddress(held[held.length >> 1]);
    const hit = socketCalls() - hitBefore;
    console.log(`lookup by address: socket calls for a new connection's two ends ${few.join('/')} with few descriptors, ${many.join('/')} with 1000; a verified hit ${hit}`);
    expect(Math.max(...many)).toBeLessThanOrEqual(Math.max(...few) + 4);
    expect(hit).toBe(2);
  }, 60_000);
});

/** A server shaped like Bun's http.Server: an EventEmitter with the server methods, no `_handle`, not a net.Server. */
function serverShaped(real: net.Server | undefined) {
  return Object.assign(new EventEmitter(), {
    listen() {},
    close() {},
    address: () => (real ? real.address() : null),
    getConnections() {},
    listening: real !== undefined,
  });
}

/** A socket shaped like one Bun's http.Server accepted: a net.Socket with `_handle === null` that carries a real connection's addresses. */
function handleLess(real: net.Socket): net.Socket {
  const socket = new net.Socket();
  for (const name of ['localAddress', 'localPort', 'remoteAddress', 'remotePort'] as const) {
    Object.defineProperty(socket, name, { get: () => real[name] });
  }
  return socket;
}

describe.skipIf(process.platform !== 'linux' || observerUnavailable)("Bun's handle-less servers and sockets, imitated in Node, seen by the kernel", () => {
  afterEach(closeAll);
  const options: KeepaliveOptions = { keepalivetime: 4000, keepaliveinterval: 2000, keepalivecount: 5, usertimeout: 9000 };
  const inKernel = { so_keepalive: 1, tcp_keepidle: 4, tcp_keepintvl: 2, tcp_keepcnt: 5, tcp_user_timeout: 9000 };

  it('a handle-less socket that carries its addresses is configured through the descriptor those addresses name', async () => {
    const { accepted } = await connectedPair();
    const shaped = handleLess(accepted);
    expect(applyKeepalive(shaped, options)).toBe(shaped);
    expect(kernelOptions(accepted)).toEqual(inKernel);
    expect(getKeepalive(shaped)).toEqual({ onoff: true, ...options });
  });

  it('a server-shaped object is a target: read by its listening address, and not listening is ERR_KEEPALIVE_NOT_CONNECTED', async () => {
    const real = net.createServer();
    await listening(real);
    applyKeepalive(real, options);
    expect(getKeepalive(serverShaped(real) as unknown as net.Server)).toEqual(getKeepalive(real));
    const idle = serverShaped(undefined) as unknown as net.Server;
    expect(applyKeepalive(idle, options)).toBe(idle);
    expect(() => getKeepalive(idle)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_CONNECTED' }));
  });

  it('anything missing part of the shape is not a target (ERR_INVALID_ARG_TYPE)', () => {
    const { listening: _listening, ...withoutFlag } = serverShaped(undefined);
    for (const target of [new EventEmitter(), Object.assign(new EventEmitter(), withoutFlag), { listen() {}, close() {}, address() {}, getConnections() {}, listening: false }]) {
      expect(() => applyKeepalive(target as unknown as net.Server, options)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
      expect(() => getKeepalive(target as unknown as net.Server)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
  });
});
