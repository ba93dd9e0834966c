import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeepaliveOptions } from '../dist/index.js';
import { KernelOptions, kernelOptionsOf, mustRunInCi, observerUnavailable } from './support/kernel';
import { netnsUnavailable } from './support/netns';
import { ServerLab, serversUnavailable } from './support/servers';

/**
 * The clients people run, against real servers, with one line at the top: setDefaultKeepalive(OPTIONS).
 * PostgreSQL 15, Redis 7 and MariaDB 10.11 from Debian and Node's HTTP/HTTPS/WS servers run in one private
 * namespace (support/servers.ts); each client scenario (support/drivers-client.js) runs in it too, as its
 * own process, under Node 20, 22, 24 and 26. Checked from outside the process:
 *  - every TCP socket the client process holds (found with `ss -tnp`, read with the pidfd_getfd observer),
 *    pooled and reconnected, plain and TLS, holds OPTIONS; so does every socket the Node server accepted;
 *  - a pulled cable fails a call made on an idle connection right after the cut within usertimeout, and a
 *    call in flight (pg_sleep, SLEEP, BLPOP, a slow HTTP response, an unanswered WS message) within the
 *    keepalive bound; the same clients without the package (baseline, Node 20) are still pending at twice it.
 */

const OPTIONS = { keepalivetime: 2000, keepaliveinterval: 1000, keepalivecount: 2, usertimeout: 3000 } satisfies KeepaliveOptions;
const KERNEL: KernelOptions = { so_keepalive: 1, tcp_keepidle: 2, tcp_keepintvl: 1, tcp_keepcnt: 2, tcp_user_timeout: 3000 };
/** A call in flight has been acknowledged: keepalive probes from then on. */
const FLIGHT_BOUND = OPTIONS.keepalivetime + OPTIONS.keepaliveinterval * OPTIONS.keepalivecount;
/** A call made after the cut is unacknowledged data: usertimeout drops it (keepalive never probes then). */
const IDLE_BOUND = OPTIONS.usertimeout;
/** How late detection may be seen on a loaded 2-core machine (timer slack, a driver's own event-loop turn). */
const LATE_MS = 1500;
/** The baseline must still be pending this long after its call: twice the larger bound. */
const BASELINE_MS = 2 * Math.max(FLIGHT_BOUND, IDLE_BOUND);

const ALL_CLIENTS = ['pg', 'postgres', 'mysql2', 'ioredis', 'redis', 'undici', 'fetch', 'http', 'ws'] as const;
type Client = (typeof ALL_CLIENTS)[number];
const SERVER_PORT: Record<Client, number[]> = {
  pg: [5432],
  postgres: [5432],
  mysql2: [3306],
  ioredis: [6379, 6380],
  redis: [6379, 6380],
  undici: [8080, 8443],
  fetch: [8080, 8443],
  http: [8080, 8443],
  ws: [8080, 8443],
};
const HAS_RECONNECT = (client: Client): boolean => client !== 'ws';
const CALLS = ['idle', 'idleTls', 'flight', 'flightTls'] as const;
type Call = (typeof CALLS)[number];

interface Observed {
  local: string;
  peer: string;
  options: KernelOptions;
}

interface Outcome {
  pending: boolean;
  ok?: boolean;
  code?: string;
  message?: string;
  afterSentMs: number;
  afterCutMs?: number;
}

interface Scenario {
  client: Client;
  mode: 'default' | 'baseline';
  version: string;
  hosts: Record<Call, string>;
  observed: Record<string, Observed[]>;
  outcome?: Record<Call, Outcome>;
  error?: string;
}

const root = join(__dirname, '..');
const DIST = join(root, 'dist', 'index.js');
const SCRIPT = join(__dirname, 'support', 'drivers-client.js');

interface NodeVersions {
  unsupported: string | undefined;
  nodeVersions(majors?: number[]): Array<{ version: string; node: string }>;
}
const { unsupported: versionsUnavailable, nodeVersions } = createRequire(__filename)(join(__dirname, 'support', 'node-versions.js')) as NodeVersions;

const unavailable = netnsUnavailable ?? observerUnavailable ?? serversUnavailable() ?? versionsUnavailable;
mustRunInCi('the real-server driver suite (PostgreSQL, Redis, MariaDB, Node HTTP/WS; pg, postgres, mysql2, ioredis, redis, undici, fetch, http.Agent, ws)', unavailable);

let lab: ServerLab;
const serverSide: Observed[] = [];
const report: string[] = [];

/** Every established TCP socket of `pid` in the lab's namespace, read by the observer. */
function socketsOf(pid: number): Observed[] {
  const out = execFileSync('ip', ['netns', 'exec', lab.netns.name, 'ss', '-tnpH', 'state', 'established'], { encoding: 'utf8' });
  const found: Observed[] = [];
  for (const line of out.split('\n')) {
    const columns = line.trim().split(/\s+/);
    if (columns.length < 5) continue;
    for (const match of line.matchAll(/pid=(\d+),fd=(\d+)/g)) {
      if (Number(match[1]) !== pid) continue;
      try {
        found.push({ local: columns[2], peer: columns[3], options: kernelOptionsOf(pid, Number(match[2])) });
      } catch {
        // closed between ss and the observer
      }
    }
  }
  return found;
}

function runScenario(client: Client, mode: Scenario['mode'], version: string, node: string): Promise<Scenario> {
  const hosts = Object.fromEntries(CALLS.map((call) => [call, lab.host()])) as Record<Call, string>;
  const scenario: Scenario = { client, mode, version, hosts, observed: {} };
  const config = { client, mode, dist: DIST, options: OPTIONS, hosts, deadlineMs: BASELINE_MS, cutRule: lab.cutScript('HOST') };
  const child = lab.spawn(node, [SCRIPT, JSON.stringify(config)]);
  let stderr = '';
  let stage = 'spawned';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    if (process.env.DRIVERS_DEBUG) console.log(`${client}/${mode}: ${line}`);
    let message: { ev: string; phase?: string; stage?: string; outcome?: Record<Call, Outcome>; error?: string };
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    if (message.ev === 'observe') {
      scenario.observed[message.phase!] = socketsOf(child.pid!).filter((s) => Object.values(hosts).some((h) => s.peer.startsWith(`${h}:`)));
      // The server's side, a few times early on (each read is a process; the suite shares 2 cores).
      if (serverSide.length < 60) serverSide.push(...socketsOf(lab.pid('node servers')));
      child.stdin!.write('go\n');
    } else if (message.ev === 'result') {
      scenario.outcome = message.outcome;
    } else if (message.ev === 'stage') {
      stage = message.stage!;
    } else if (message.ev === 'failed') {
      scenario.error = message.error;
    }
  });
  return new Promise((resolve) => {
    // 'close', not 'exit': the last lines on stdout may still be unread when the process has exited.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (!scenario.outcome && !scenario.error) scenario.error = `exited ${code ?? signal} without a result, during ${stage}: ${stderr}`;
      if (stderr && process.env.DRIVERS_DEBUG) console.log(`${client}/${mode}: ${stderr}`);
      resolve(scenario);
    });
  });
}

const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function describeOutcome(o: Outcome | undefined): string {
  if (!o) return 'no result';
  if (o.pending) return `still pending at ${s(o.afterSentMs)}`;
  return `${o.ok ? 'SUCCEEDED' : `failed (${o.code})`} ${s(o.afterSentMs)} after the call`;
}

/** DRIVERS_NODE=20,22 narrows the Node versions while working on one (ignored under TCP_KEEPALIVE_STRICT=1). */
const narrowed = process.env.DRIVERS_NODE && process.env.TCP_KEEPALIVE_STRICT !== '1' ? process.env.DRIVERS_NODE.split(',').map(Number) : undefined;
// Decided before anything is fetched: where the suite skips, no Node binary is downloaded.
const versions = unavailable ? [] : nodeVersions(narrowed);
/** DRIVERS_CLIENTS=pg,ws likewise narrows the clients. */
const CLIENTS = ALL_CLIENTS.filter((c) => !process.env.DRIVERS_CLIENTS || process.env.TCP_KEEPALIVE_STRICT === '1' || process.env.DRIVERS_CLIENTS.split(',').includes(c));
const results = new Map<string, Scenario>();
const key = (client: Client, mode: Scenario['mode'], version: string): string => `${client}/${mode}/${version}`;

describe.skipIf(unavailable)('one setDefaultKeepalive at startup, real servers and real drivers', () => {
  beforeAll(async () => {
    lab = new ServerLab();
    await lab.start({ LAB_DEFAULT_KEEPALIVE: JSON.stringify(OPTIONS) });
    // Node 20 with and without the package, then each other version with it: a group's scenarios run at once.
    for (const [index, { version, node }] of versions.entries()) {
      const modes: Array<Scenario['mode']> = index === 0 ? ['default', 'baseline'] : ['default'];
      const runs = CLIENTS.flatMap((client) => modes.map((mode) => runScenario(client, mode, version, node)));
      for (const scenario of await Promise.all(runs)) results.set(key(scenario.client, scenario.mode, version), scenario);
    }
  }, 400_000);

  afterAll(async () => {
    await lab?.stop();
    if (report.length > 0) console.log(`driver suite, ${OPTIONS.keepalivetime}/${OPTIONS.keepaliveinterval}/${OPTIONS.keepalivecount} usertimeout ${OPTIONS.usertimeout}; idle = call right after the cut, bound ${s(IDLE_BOUND)}; in flight bound ${s(FLIGHT_BOUND)}:\n  ${report.sort().join('\n  ')}`);
  }, 60_000);

  for (const [index, { version }] of versions.entries()) {
    for (const client of CLIENTS) {
      it(`Node ${version}, ${client}: every connection (pooled, reconnected, plain, TLS) holds the settings; a pulled cable fails idle and in-flight calls within the bound`, () => {
        const scenario = results.get(key(client, 'default', version))!;
        expect(scenario.error, scenario.error).toBeUndefined();
        const phases = HAS_RECONNECT(client) ? ['pooled', 'reconnected'] : ['pooled'];
        for (const phase of phases) {
          const observed = scenario.observed[phase] ?? [];
          for (const host of Object.values(scenario.hosts)) expect(observed.some((o) => o.peer.startsWith(`${host}:`)), `${phase}: a connection to ${host}`).toBe(true);
          for (const o of observed) {
            expect(SERVER_PORT[client]).toContain(Number(o.peer.split(':')[1]));
            expect(o.options, `${phase} ${o.local} -> ${o.peer}`).toEqual(KERNEL);
          }
        }
        const all = new Set(Object.values(scenario.observed).flat().map((o) => o.local));
        if (HAS_RECONNECT(client)) {
          const pooled = new Set(scenario.observed.pooled.map((o) => o.local));
          const fresh = scenario.observed.reconnected.filter((o) => !pooled.has(o.local));
          expect(fresh.length, 'the driver opened new connections on its own').toBeGreaterThanOrEqual(client === 'fetch' ? 2 : 4);
        }
        const o = scenario.outcome!;
        report.push(
          `Node ${version} ${client.padEnd(8)} default:  ${all.size} connections observed, all ${OPTIONS.keepalivetime}/${OPTIONS.keepaliveinterval}/${OPTIONS.keepalivecount}/${OPTIONS.usertimeout}; ` +
            CALLS.map((call) => `${call} ${describeOutcome(o[call])}`).join('; '),
        );
        for (const call of CALLS) {
          const bound = call.startsWith('idle') ? IDLE_BOUND : FLIGHT_BOUND;
          expect(o[call].pending, `${call}: still pending`).toBe(false);
          expect(o[call].ok, `${call}: the call failed`).toBe(false);
          expect(o[call].afterSentMs, `${call}: ${describeOutcome(o[call])}, within ${s(bound)} + ${s(LATE_MS)}`).toBeLessThanOrEqual(bound + LATE_MS);
        }
      });
      if (index === 0) {
        it(`Node ${version}, ${client} without the package (baseline): the same calls still pending at ${s(BASELINE_MS)}`, () => {
          const scenario = results.get(key(client, 'baseline', version))!;
          expect(scenario.error, scenario.error).toBeUndefined();
          const o = scenario.outcome!;
          const seen = Object.values(scenario.observed).flat();
          const own = [...new Set(seen.map((x) => `${x.options.so_keepalive ? `on ${x.options.tcp_keepidle}/${x.options.tcp_keepintvl}/${x.options.tcp_keepcnt}` : 'off'}`))].join(', ');
          report.push(`Node ${version} ${client.padEnd(8)} baseline: driver's own keepalive ${own}; ${CALLS.map((call) => `${call} ${describeOutcome(o[call])}`).join('; ')}`);
          for (const call of CALLS) expect(o[call].pending, `${call}: ${describeOutcome(o[call])}`).toBe(true);
        });
      }
    }
  }

  it('the Node HTTP/HTTPS/WS server with setDefaultKeepalive: every connection it accepted holds the settings', () => {
    expect(serverSide.length).toBeGreaterThan(0);
    for (const o of serverSide) expect(o.options, `${o.local} <- ${o.peer}`).toEqual(KERNEL);
    report.push(`server side (Node http/https/ws with setDefaultKeepalive): ${new Set(serverSide.map((o) => `${o.local}<-${o.peer}`)).size} accepted connections observed, all hold the settings`);
  });
});
