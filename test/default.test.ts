import { ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { KernelOptions, mustRunInCi, observerUnavailable } from './support/kernel';
import { Netns, netnsUnavailable, removeAllNetns } from './support/netns';

/**
 * setDefaultKeepalive on every path a socket can take, on every Node version: net.connect, new Socket().connect
 * (Node 20 publishes no diagnostics message for it), tls.connect (nor for it), TLS over a connected socket,
 * http/https agents, http2, global fetch, accepted sockets of net/tls/http/https/http2 servers; the filter,
 * explicit applyKeepalive winning, stickiness against a driver's setKeepAlive, non-TCP sockets, a failing
 * socket (one warning), and null. Each socket is read from outside the process (ss + the pidfd observer).
 */

const root = join(__dirname, '..');
const DIST = join(root, 'dist', 'index.js');
const SCRIPT = join(__dirname, 'support', 'default-paths.js');
const DEFAULT: KernelOptions = { so_keepalive: 1, tcp_keepidle: 2, tcp_keepintvl: 1, tcp_keepcnt: 2, tcp_user_timeout: 3000 };
const UNTOUCHED = { so_keepalive: 0, tcp_user_timeout: 0 };
/** What a new socket holds in a new network namespace (the kernel's defaults: 7200 s, 75 s, 9 probes). */
const PRISTINE: KernelOptions = { so_keepalive: 0, tcp_keepidle: 7200, tcp_keepintvl: 75, tcp_keepcnt: 9, tcp_user_timeout: 0 };
const ADOPTED: Record<string, KernelOptions> = {
  default: DEFAULT,
  second: { so_keepalive: 1, tcp_keepidle: 4, tcp_keepintvl: 2, tcp_keepcnt: 4, tcp_user_timeout: 5000 },
  explicit: { so_keepalive: 1, tcp_keepidle: 8, tcp_keepintvl: 3, tcp_keepcnt: 6, tcp_user_timeout: 9000 },
  untouched: PRISTINE,
};

interface NodeVersions {
  unsupported: string | undefined;
  nodeVersions(majors?: number[]): Array<{ version: string; node: string }>;
}
const { unsupported: versionsUnavailable, nodeVersions } = createRequire(__filename)(join(__dirname, 'support', 'node-versions.js')) as NodeVersions;

const unavailable = netnsUnavailable ?? observerUnavailable ?? versionsUnavailable;
mustRunInCi('setDefaultKeepalive on every connect/accept path, Node 20/22/24/26 (namespaces, pidfd observer)', unavailable);

interface Ports {
  local: number;
  peer: number;
}

interface Observation {
  pid: number;
  port: Record<string, number>;
  connections: Record<string, Ports>;
  filtered: Array<{ side: 'client' | 'server'; serverPort: number; known: boolean }>;
  warnings: Array<{ name: string; code: string; message: string }>;
  rejected: string;
  unix: string;
  fetched: string;
  stillWorks?: boolean;
  inListener: Record<string, number>;
  expected?: Record<string, keyof typeof ADOPTED>;
}


/** Runs default-paths.js under `node` in a namespace; returns what it reported and the observed sockets, per phase. */
function runPaths(node: string): Promise<Array<{ report: Observation; sockets: Map<string, KernelOptions> }>> {
  const netns = new Netns();
  const child: ChildProcess = spawn('ip', ['netns', 'exec', netns.name, node, SCRIPT, DIST], { stdio: ['pipe', 'pipe', 'pipe'] });
  const phases: Array<{ report: Observation; sockets: Map<string, KernelOptions> }> = [];
  let stderr = '';
  let failure = '';
  let pid = 0;
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as { ev: string; error?: string } & Observation;
    if (message.ev === 'failed') failure = message.error!;
    if (message.ev !== 'observe') return;
    pid ||= message.pid;
    phases.push({ report: message, sockets: netns.socketsOf(pid) });
    child.stdin!.write('go\n');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      netns.destroy();
      if (code === 0 && phases.length === 3) resolve(phases);
      else reject(new Error(`default-paths.js exited ${code}: ${failure || stderr}`));
    });
  });
}

const CONFIGURED = [
  'net.connect',
  'new net.Socket().connect',
  'net.createConnection',
  'tls.connect',
  'tls.connect over a connected socket',
  "a driver's setKeepAlive(true, 60000) afterwards (sticky)",
  'http.get (http.Agent keepAlive)',
  'https.get (https.Agent keepAlive)',
  'http2.connect',
  'the same net.Socket connected again after close',
];
const EXPLICIT: Record<string, Partial<KernelOptions>> = {
  'applyKeepalive before connect() (explicit wins)': { so_keepalive: 1, tcp_keepidle: 5, tcp_keepintvl: 5 },
  'applyKeepalive while connecting (explicit wins)': { so_keepalive: 1, tcp_keepidle: 6, tcp_keepintvl: 6 },
  'applyKeepalive after connect (explicit wins)': { so_keepalive: 1, tcp_keepidle: 7, tcp_keepintvl: 7 },
};

afterAll(() => removeAllNetns());

describe.skipIf(unavailable)('setDefaultKeepalive on every path, seen from outside the process', { concurrent: true }, () => {
  for (const { version, node } of unavailable ? [] : nodeVersions()) {
    it(`Node ${version}: every client and accepted socket gets the default; filter, explicit, sticky, non-TCP, failure and null behave`, async () => {
      const [first, second, third] = await runPaths(node);
      const { report, sockets } = first;
      const clientEnd = (p: Ports): KernelOptions | undefined => sockets.get(`${p.local}>${p.peer}`);
      const serverEnd = (p: Ports): KernelOptions | undefined => sockets.get(`${p.peer}>${p.local}`);

      for (const name of CONFIGURED) {
        const p = report.connections[name];
        expect(clientEnd(p), `${name}: client end`).toEqual(DEFAULT);
        expect(serverEnd(p), `${name}: the end its server accepted`).toEqual(DEFAULT);
      }
      for (const [name, values] of Object.entries(EXPLICIT)) {
        const p = report.connections[name];
        expect(clientEnd(p), `${name}: client end`).toMatchObject(values);
        expect(serverEnd(p), `${name}: the end its server accepted`).toEqual(DEFAULT);
      }
      for (const name of ['filter returns false', 'filter throws (warning, socket works)', 'filter throws, again (one warning)']) {
        const p = report.connections[name];
        expect(clientEnd(p), `${name}: client end`).toMatchObject(UNTOUCHED);
        expect(serverEnd(p), `${name}: the end its server accepted`).toMatchObject(UNTOUCHED);
      }
      expect(report.inListener, "the user's own connect/secureConnect listener already sees the default").toEqual({
        'net.connect(port, host, listener)': 2000,
        'new net.Socket().connect(port, host, listener)': 2000,
        'tls.connect(options, secureConnect listener)': 2000,
      });
      expect(report.warnings, 'a failure is reported once, as a coded warning').toEqual([
        expect.objectContaining({ name: 'TcpKeepaliveWarning', code: 'TCP_KEEPALIVE_DEFAULT_FAILED', message: expect.stringContaining('a filter that throws') }),
      ]);
      expect(report.filtered.length).toBeGreaterThan(0);
      expect(report.filtered.every((f) => f.known), 'the filter runs once the addresses are known').toBe(true);
      expect(new Set(report.filtered.map((f) => f.side))).toEqual(new Set(['client', 'server']));
      expect(report.rejected, 'bad options throw at the call').toBe('ERR_OUT_OF_RANGE');
      expect(report.unix, 'a Unix-domain socket is left alone and works').toBe('ping');
      expect(report.fetched, 'global fetch works').toBe('ok');
      const webPort = report.port.web;
      const fetchEnds = [...sockets.entries()].filter(([k]) => k.endsWith(`>${webPort}`));
      expect(fetchEnds.length, 'http.get and fetch connections to the HTTP server').toBeGreaterThanOrEqual(2);
      for (const [k, options] of fetchEnds) expect(options, `fetch/http client ${k}`).toEqual(DEFAULT);

      const after = second.report.connections;
      const clientAfter = (p: Ports): KernelOptions | undefined => second.sockets.get(`${p.local}>${p.peer}`);
      const serverAfter = (p: Ports): KernelOptions | undefined => second.sockets.get(`${p.peer}>${p.local}`);
      for (const name of ['net.connect after setDefaultKeepalive(null)', 'tls.connect after setDefaultKeepalive(null)']) {
        expect(clientAfter(after[name]), name).toMatchObject(UNTOUCHED);
        expect(serverAfter(after[name]), `${name}: accepted end`).toMatchObject(UNTOUCHED);
      }
      expect(clientAfter(after['net.connect (configured before null)']), 'configured before null: kept').toEqual(DEFAULT);
      expect(second.report.stillWorks, 'the socket whose filter threw still works').toBe(true);

      // Servers the default took over: every accepted end as expected, seen from outside; the client ends
      // hold the default in force when they connected (the same, except after an explicit server apply).
      const adoptedReport = third.report;
      const names = Object.keys(adoptedReport.expected!);
      expect(names.length).toBeGreaterThan(30);
      for (const name of names) {
        const p = adoptedReport.connections[name];
        const wanted = ADOPTED[adoptedReport.expected![name]];
        expect(third.sockets.get(`${p.peer}>${p.local}`), `${name}: the end its server accepted`).toEqual(wanted);
        const clientWanted = adoptedReport.expected![name] === 'explicit' ? (/after null/.test(name) ? PRISTINE : DEFAULT) : wanted;
        expect(third.sockets.get(`${p.local}>${p.peer}`), `${name}: client end`).toEqual(clientWanted);
      }
      expect(adoptedReport.inListener.second, "a taken-over server's connection listener already sees the new default").toBe(4000);
    }, 90_000);
  }
});

describe.skipIf(unavailable)('threads and processes: a Worker started after the default, sockets handed over IPC (sticky sessions)', { concurrent: true }, () => {
  const THREADS = join(__dirname, 'support', 'threads-ipc.js');
  const PARENT: KernelOptions = { so_keepalive: 1, tcp_keepidle: 2, tcp_keepintvl: 1, tcp_keepcnt: 9, tcp_user_timeout: 0 };
  const CHILD: KernelOptions = { so_keepalive: 1, tcp_keepidle: 4, tcp_keepintvl: 2, tcp_keepcnt: 4, tcp_user_timeout: 5000 };
  for (const { version, node } of unavailable ? [] : nodeVersions()) {
    for (const childMode of ['child-default', 'child-none']) {
      it(`Node ${version}, ${childMode === 'child-default' ? 'the child sets its own default' : 'the child sets none'}`, async () => {
        const netns = new Netns();
        const child = spawn('ip', ['netns', 'exec', netns.name, node, THREADS, DIST, 'parent', childMode], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        try {
          const report = await new Promise<{ ev: string; pid: number; childPid: number; plainPort: number; workerPort: number; stickyPort: number; clients: number[]; error?: string }>((resolve, reject) => {
            readline.createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
            child.once('close', (code) => reject(new Error(`threads-ipc.js exited ${code}: ${stderr}`)));
          });
          if (report.ev !== 'observe') throw new Error(report.error);
          const parent = netns.socketsOf(report.pid);
          const handedTo = netns.socketsOf(report.childPid);
          expect(parent.get(`${report.workerPort}>${report.plainPort}`), "the worker thread's own connection (it never loaded the package)").toEqual(PARENT);
          expect(parent.get(`${report.plainPort}>${report.workerPort}`), 'its accepted end, in the main thread').toEqual(PARENT);
          for (const port of report.clients) {
            expect(parent.get(`${port}>${report.stickyPort}`), 'sticky-session client end').toEqual(PARENT);
            expect(handedTo.get(`${report.stickyPort}>${port}`), 'the accepted end, handed to the child over IPC').toEqual(childMode === 'child-default' ? CHILD : PARENT);
          }
        } finally {
          child.stdin!.end('go\n');
          await new Promise((resolve) => (child.exitCode === null ? child.once('close', resolve) : resolve(undefined)));
          netns.destroy();
        }
      });
    }
  }
});
