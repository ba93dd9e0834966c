import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tls from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { getTcpInfo, TcpInfo } from '../dist/index.js';
import { mustRunInCi, ssUnavailable } from './support/kernel';
import { closeAll, connectedPair, listening, tlsCert, tlsKey, track } from './support/net';
import { Agent, Netns, netnsUnavailable, removeAllNetns } from './support/netns';

/**
 * getTcpInfo against an observer that does not go through the package: `ss -tnoi` (the kernel's tcp_info over
 * netlink) for the same connection, read between two getTcpInfo calls, so every value ss shows must lie between
 * them. The connections live in an agent process in a private network namespace, where nftables can pull the
 * cable; the error cases need nothing but Linux.
 */

mustRunInCi('getTcpInfo against ss (Linux, ss)', ssUnavailable);
mustRunInCi('getTcpInfo during a pulled cable (private network namespaces, nftables)', netnsUnavailable ?? ssUnavailable);

afterEach(closeAll);
afterAll(removeAllNetns);

/** What `ss -tnoi` prints for one connection; a counter ss leaves out when it is 0 is 0. */
interface Ss {
  state: string;
  rtt: number;
  rttvar: number;
  unacked: number;
  retrans: number;
  totalRetrans: number;
  backoff: number;
  lastsnd: number;
  lastrcv: number;
  lastack: number;
  bytesSent: number;
  bytesRetrans: number;
  bytesAcked: number;
  bytesReceived: number;
  timer?: { name: string; count: number };
  line: string;
}

/** ss for the connection whose local port is `localPort` (run in `netns` when given). */
function ss(localPort: number, netns?: Netns): Ss {
  const args = ['-tnoiH', `( sport = :${localPort} )`];
  const result = netns ? spawnSync('ip', ['netns', 'exec', netns.name, 'ss', ...args], { encoding: 'utf8' }) : spawnSync('ss', args, { encoding: 'utf8' });
  const line = result.stdout.replace(/\s+/g, ' ').trim();
  if (!line) throw new Error(`ss shows no connection from port ${localPort}: ${result.stderr}`);
  const num = (re: RegExp): number => Number(re.exec(line)?.[1] ?? 0);
  const rtt = /\brtt:([\d.]+)\/([\d.]+)/.exec(line);
  const retrans = /\bretrans:(\d+)\/(\d+)/.exec(line);
  const timer = /\btimer:\((\w+),[^,]*,(\d+)\)/.exec(line);
  return {
    state: line.split(' ')[0],
    rtt: Number(rtt?.[1]),
    rttvar: Number(rtt?.[2]),
    unacked: num(/\bunacked:(\d+)/),
    retrans: Number(retrans?.[1] ?? 0),
    totalRetrans: Number(retrans?.[2] ?? 0),
    backoff: num(/\bbackoff:(\d+)/),
    lastsnd: num(/\blastsnd:(\d+)/),
    lastrcv: num(/\blastrcv:(\d+)/),
    lastack: num(/\blastack:(\d+)/),
    bytesSent: num(/\bbytes_sent:(\d+)/),
    bytesRetrans: num(/\bbytes_retrans:(\d+)/),
    bytesAcked: num(/\bbytes_acked:(\d+)/),
    bytesReceived: num(/\bbytes_received:(\d+)/),
    timer: timer ? { name: timer[1], count: Number(timer[2]) } : undefined,
    line,
  };
}

/** The kernel counts time in jiffies (4 ms at HZ=250): how far a time ss prints may stray from ours. */
const JIFFY_SLACK_MS = 10;

/** `value` lies between what getTcpInfo read just before ss and just after. */
function between(what: string, value: number, before: number | undefined, after: number | undefined, slack = 0): void {
  expect(before, `${what}: getTcpInfo reports it`).toBeTypeOf('number');
  expect(after, `${what}: getTcpInfo reports it`).toBeTypeOf('number');
  const low = Math.min(before!, after!) - slack;
  const high = Math.max(before!, after!) + slack;
  expect(value, `${what}: ss shows ${value}, getTcpInfo read ${before} before and ${after} after`).toBeGreaterThanOrEqual(low);
  expect(value, `${what}: ss shows ${value}, getTcpInfo read ${before} before and ${after} after`).toBeLessThanOrEqual(high);
}

/** getTcpInfo, ss, getTcpInfo on the agent's socket `sock` (local port `port`), and every field ss shows checked against the two. */
async function compareWithSs(agent: Agent, netns: Netns, sock: string, port: number): Promise<{ before: TcpInfo; seen: Ss; after: TcpInfo }> {
  const { info: before } = await agent.tcpInfo(sock);
  const seen = ss(port, netns);
  const { info: after } = await agent.tcpInfo(sock);
  expect(seen.state).toBe('ESTAB');
  expect(before.state).toBe('ESTABLISHED');
  between('rtt', seen.rtt, before.rtt, after.rtt);
  between('rttVariance', seen.rttvar, before.rttVariance, after.rttVariance);
  between('totalRetransmits', seen.totalRetrans, before.totalRetransmits, after.totalRetransmits);
  between('unacked', seen.unacked, before.unacked, after.unacked);
  between('lastDataSent', seen.lastsnd, before.lastDataSent, after.lastDataSent, JIFFY_SLACK_MS);
  between('lastDataReceived', seen.lastrcv, before.lastDataReceived, after.lastDataReceived, JIFFY_SLACK_MS);
  between('lastAckReceived', seen.lastack, before.lastAckReceived, after.lastAckReceived, JIFFY_SLACK_MS);
  between('bytesSent', seen.bytesSent, before.bytesSent, after.bytesSent);
  between('bytesAcked', seen.bytesAcked, before.bytesAcked, after.bytesAcked);
  between('bytesRetransmitted', seen.bytesRetrans, before.bytesRetransmitted, after.bytesRetransmitted);
  between('raw.tcpi_bytes_received', seen.bytesReceived, before.raw.tcpi_bytes_received, after.raw.tcpi_bytes_received);
  between('raw.tcpi_backoff', seen.backoff, before.raw.tcpi_backoff, after.raw.tcpi_backoff);
  // ss's timer count is the current backoff for the retransmit timer and the probes sent for the keepalive timer.
  if (seen.timer?.name === 'on') between('retransmits (timer:(on,…,n))', seen.timer.count, before.retransmits, after.retransmits);
  if (seen.timer?.name === 'keepalive') between('probes (timer:(keepalive,…,n))', seen.timer.count, before.probes, after.probes);
  return { before, seen, after };
}

const FIELDS = ['rtt', 'rttVariance', 'retransmits', 'totalRetransmits', 'probes', 'unacked', 'lastDataReceived', 'lastDataSent', 'lastAckReceived', 'bytesSent', 'bytesRetransmitted', 'bytesAcked'] as const;

describe.skipIf(process.platform !== 'linux' || ssUnavailable)('getTcpInfo reads what ss shows (Linux)', () => {
  it('every field is reported on Linux (none undefined), raw holds the kernel struct, times in ms', async () => {
    const { client } = await connectedPair();
    const info = getTcpInfo(client);
    for (const field of FIELDS) expect(info[field], field).toBeTypeOf('number');
    expect(info.state).toBe('ESTABLISHED');
    // rtt in ms from the kernel's µs, fractional on loopback, never rounded to 0 for a measured rtt.
    expect(info.rtt).toBe(info.raw.tcpi_rtt / 1000);
    expect(info.raw).toMatchObject({ tcpi_state: 1, tcpi_unacked: 0 });
    expect(Object.keys(info.raw).length).toBeGreaterThan(30);
  });

  it('a TLS socket, client and accepted, reads the TCP socket underneath (ss by its port)', async () => {
    const server = tls.createServer({ key: tlsKey, cert: tlsCert }, (socket) => {
      track(socket).on('error', () => {});
      socket.write('hello from the server');
    });
    const port = await listening(server);
    const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
    const client = track(tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }));
    await once(client, 'secureConnect');
    const [serverSide] = await accepted;
    await once(client, 'data');
    await sleep(50);
    for (const [what, socket, localPort] of [['client', client, client.localPort!], ['accepted', serverSide, serverSide.localPort!]] as const) {
      const before = getTcpInfo(socket);
      const seen = ss(localPort);
      const after = getTcpInfo(socket);
      expect(before.state, what).toBe('ESTABLISHED');
      between(`${what}: bytesSent`, seen.bytesSent, before.bytesSent, after.bytesSent);
      between(`${what}: raw.tcpi_bytes_received`, seen.bytesReceived, before.raw.tcpi_bytes_received, after.raw.tcpi_bytes_received);
      expect(seen.bytesSent, `${what}: the handshake went over this connection`).toBeGreaterThan(100);
    }
  });

  it('a listening server: LISTEN, and Linux reports the accept queue as unacked', async () => {
    const server = net.createServer();
    await listening(server);
    expect(getTcpInfo(server)).toMatchObject({ state: 'LISTEN', unacked: 0 });
  });
});

describe('getTcpInfo errors, as getKeepalive', () => {
  const expectCode = (fn: () => unknown, code: string, type: ErrorConstructor | TypeErrorConstructor = Error): void => {
    let caught: (Error & { code?: string }) | undefined;
    try {
      fn();
    } catch (error) {
      caught = error as Error & { code?: string };
    }
    expect(caught?.code).toBe(code);
    expect(caught).toBeInstanceOf(type);
  };

  it('not a target: ERR_INVALID_ARG_TYPE (TypeError)', () => {
    for (const target of [{}, null, undefined, 'socket', 3, new net.BlockList()]) expectCode(() => getTcpInfo(target as never), 'ERR_INVALID_ARG_TYPE', TypeError);
  });

  it('a destroyed socket, and a TLS socket over a destroyed one: ERR_SOCKET_CLOSED', async () => {
    const { client, accepted } = await connectedPair();
    client.destroy();
    expectCode(() => getTcpInfo(client), 'ERR_SOCKET_CLOSED');
    const wrapped = track(new tls.TLSSocket(accepted, { isServer: false }));
    wrapped.on('error', () => {});
    accepted.destroy();
    expectCode(() => getTcpInfo(wrapped), 'ERR_SOCKET_CLOSED');
  });

  it('a socket still connecting, one never connected, a server not listening: ERR_KEEPALIVE_NOT_CONNECTED', async () => {
    const server = net.createServer();
    const port = await listening(server);
    const connecting = track(net.connect(port, '127.0.0.1'));
    expectCode(() => getTcpInfo(connecting), 'ERR_KEEPALIVE_NOT_CONNECTED');
    expectCode(() => getTcpInfo(new net.Socket()), 'ERR_KEEPALIVE_NOT_CONNECTED');
    expectCode(() => getTcpInfo(net.createServer()), 'ERR_KEEPALIVE_NOT_CONNECTED');
    await once(connecting, 'connect');
  });

  it.skipIf(process.platform === 'win32')('a Unix-domain socket and server: ERR_KEEPALIVE_NOT_TCP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpka-info-'));
    try {
      const server = track(net.createServer((socket) => track(socket)));
      server.listen(join(dir, 's.sock'));
      await once(server, 'listening');
      const client = track(net.connect(join(dir, 's.sock')));
      await once(client, 'connect');
      expectCode(() => getTcpInfo(client), 'ERR_KEEPALIVE_NOT_TCP');
      expectCode(() => getTcpInfo(server), 'ERR_KEEPALIVE_NOT_TCP');
    } finally {
      await closeAll();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(netnsUnavailable ?? ssUnavailable)('getTcpInfo against ss in a private network namespace', () => {
  it('a live connection with data both ways: every field ss shows lies between two getTcpInfo reads', async ({ onTestFinished }) => {
    const netns = new Netns();
    onTestFinished(() => netns.destroy());
    const agent = netns.agent();
    const { server, port } = await agent.listen();
    const [client] = await agent.connect(port);
    const { sock: acceptedSock } = await agent.accepted(server);
    await agent.write([client.sock], 5000);
    await agent.write([acceptedSock], 700);
    await sleep(300);
    const { after } = await compareWithSs(agent, netns, client.sock, client.localPort);
    expect(after).toMatchObject({ unacked: 0, retransmits: 0, totalRetransmits: 0, probes: 0, bytesSent: 5000, bytesRetransmitted: 0 });
    expect(after.raw.tcpi_bytes_received).toBe(700);
    expect(after.lastDataSent).toBeGreaterThanOrEqual(250);
  });

  it('a pulled cable: probes grow on an idle connection, retransmits and unacked on one with data in flight (checked against ss)', async ({ onTestFinished }) => {
    const netns = new Netns();
    onTestFinished(() => netns.destroy());
    const agent = netns.agent();
    const { port } = await agent.listen();
    // keepalive probes once a second after 1 s idle; 5 probes, so it is still alive when the test ends.
    const [idle] = await agent.connect(port, { keepalive: { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 5 } });
    const [busy] = await agent.connect(port);
    netns.cut(port);
    await agent.write([busy.sock], 3000);

    const samples: Array<{ idle: TcpInfo; busy: TcpInfo }> = [];
    for (let i = 0; i < 6; i++) {
      await sleep(600);
      samples.push({ idle: (await agent.tcpInfo(idle.sock)).info, busy: (await agent.tcpInfo(busy.sock)).info });
    }
    const checked = { idle: await compareWithSs(agent, netns, idle.sock, idle.localPort), busy: await compareWithSs(agent, netns, busy.sock, busy.localPort) };
    const series = (side: 'idle' | 'busy', field: (typeof FIELDS)[number]) => samples.map((s) => s[side][field]!);
    const nonDecreasing = (values: number[]) => values.every((v, i) => i === 0 || v >= values[i - 1]);
    console.log(
      `pulled cable, every 0.6 s: idle probes ${series('idle', 'probes')}; in flight retransmits ${series('busy', 'retransmits')}, totalRetransmits ${series('busy', 'totalRetransmits')}, unacked ${series('busy', 'unacked')}, bytesRetransmitted ${series('busy', 'bytesRetransmitted')}\n  ss: ${checked.idle.seen.line}\n  ss: ${checked.busy.seen.line}`,
    );

    // Idle: nothing in flight, keepalive probes sent and unanswered, growing.
    expect(series('idle', 'unacked').every((v) => v === 0)).toBe(true);
    expect(nonDecreasing(series('idle', 'probes'))).toBe(true);
    expect(samples.at(-1)!.idle.probes).toBeGreaterThanOrEqual(2);
    expect(checked.idle.seen.timer?.name).toBe('keepalive');
    expect(samples.every((s) => s.idle.retransmits === 0)).toBe(true);
    // In flight: the data stays unacknowledged and is retransmitted with a growing backoff; no keepalive probes.
    expect(series('busy', 'unacked').every((v) => v > 0)).toBe(true);
    expect(nonDecreasing(series('busy', 'retransmits'))).toBe(true);
    expect(nonDecreasing(series('busy', 'totalRetransmits'))).toBe(true);
    expect(samples.at(-1)!.busy.retransmits).toBeGreaterThanOrEqual(2);
    expect(samples.at(-1)!.busy.bytesRetransmitted).toBeGreaterThanOrEqual(3000);
    expect(samples.at(-1)!.busy.bytesAcked, 'nothing written after the cut was acknowledged').toBeLessThan(samples.at(-1)!.busy.bytesSent!);
    expect(checked.busy.seen.timer?.name).toBe('on');
    expect(samples.every((s) => s.busy.probes === 0)).toBe(true);
  });
});
