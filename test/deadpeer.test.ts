import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, it } from 'vitest';
import type { ExpectStatic, OnTestFinishedHandler } from 'vitest';
import type { KeepaliveOptions } from '../dist/index.js';
import { mustRunInCi } from './support/kernel';
import { Agent, AgentEvent, Connected, monotonicMs, Netns, netnsUnavailable, removeAllNetns } from './support/netns';

/**
 * A peer that vanishes without a FIN or RST, for real: each test gets a private network namespace with
 * only 127.0.0.1, its sockets live in an agent process inside it, and nftables drops the connection's
 * packets. Times are measured from the last packet the socket received (the kernel's reference for
 * keepalive) or, with data in flight, from the write; the cable is pulled before the first probe is due.
 */

const IDLE: KeepaliveOptions = { keepalivetime: 2000, keepaliveinterval: 1000, keepalivecount: 3 };
const IN_FLIGHT: KeepaliveOptions = { ...IDLE, usertimeout: 3000 };
const SHORT: KeepaliveOptions = { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 2 };

/** Linux counts keepalive in whole seconds (ms rounded up): the time a silent peer is given. */
function keepaliveBound(options: KeepaliveOptions): number {
  const whole = (ms: number): number => Math.ceil(ms / 1000) * 1000;
  return whole(options.keepalivetime!) + whole(options.keepaliveinterval!) * options.keepalivecount!;
}

/** How late detection may be on a loaded 2-core machine (timer slack, scheduling, the agent's event loop). */
const LATE_MS = 1500;
/** Kernel timers fire late, never early; this slack covers only how late the agent's JS saw the last packet. */
const EARLY_RATIO = 0.9;

mustRunInCi('the dead-peer suite (private network namespaces, nftables)', netnsUnavailable);

/** Measured times, printed together at the end: concurrent tests' console lines would be tagged with the wrong test. */
const measured: string[] = [];

afterAll(() => {
  removeAllNetns();
  if (measured.length > 0) console.log(`dead-peer detection, measured:\n  ${measured.sort().join('\n  ')}`);
});

function namespace(onTestFinished: (fn: OnTestFinishedHandler) => void): Netns {
  const netns = new Netns();
  onTestFinished(() => netns.destroy());
  return netns;
}

const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

const ratio = (elapsed: number, bound: number): string => `${s(elapsed)} against a bound of ${s(bound)} (ratio ${(elapsed / bound).toFixed(2)})`;

/**
 * Waits for the socket's error, records how long after `from` (its last packet, or the write) it came,
 * and checks it is ETIMEDOUT, not before the bound and within it.
 */
async function expectTimeoutWithin(expect: ExpectStatic, what: string, agent: Agent, sock: string, from: number, bound: number, cut: number): Promise<void> {
  const waited = bound + LATE_MS + 1000;
  const error = await agent.errorOf(sock, waited);
  measured.push(`${what}: ${error ? `${error.code} ${ratio(error.t - from, bound)}, ${s(error.t - cut)} after the cable was pulled` : `no error within ${s(waited)}`}`);
  expect(error?.code, `no error within ${s(waited)}`).toBe('ETIMEDOUT');
  expect(error!.t - from, `${what}: not before the bound`).toBeGreaterThanOrEqual(bound * EARLY_RATIO);
  expect(error!.t - from, `${what}: within the bound`).toBeLessThanOrEqual(bound + LATE_MS);
}

/** Pulls the cable on `port` and checks it happened before the first keepalive probe was due. */
function cutBeforeFirstProbe(expect: ExpectStatic, netns: Netns, port: number, lastPacket: number, options: KeepaliveOptions): number {
  const cut = netns.cut(port);
  expect(cut - lastPacket, 'the cable was pulled before the first probe was due (machine too slow?)').toBeLessThan(options.keepalivetime!);
  return cut;
}

const isEnd = (e: AgentEvent): boolean => e.ev === 'error' || e.ev === 'close';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

describe.skipIf(netnsUnavailable)('a pulled cable, in a private network namespace', { concurrent: true }, () => {
  it('an idle client errors ETIMEDOUT at keepalivetime + keepaliveinterval × keepalivecount, not before', async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { port } = await agent.listen();
    const [client] = await agent.connect(port, { keepalive: IDLE });
    const cut = cutBeforeFirstProbe(expect, netns, port, client.t, IDLE);
    await expectTimeoutWithin(expect, '1. idle client {2000, 1000, 3}', agent, client.sock, client.t, keepaliveBound(IDLE), cut);
  });

  it('with unacknowledged data in flight, usertimeout 3000 errors ETIMEDOUT at about 3 s after the write', async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { port } = await agent.listen();
    const [client] = await agent.connect(port, { keepalive: IN_FLIGHT });
    const cut = cutBeforeFirstProbe(expect, netns, port, client.t, IN_FLIGHT);
    const wrote = await agent.write([client.sock], 1000);
    // Linux checks usertimeout when the retransmission timer fires: on loopback it ends about 0.4 s after it.
    await expectTimeoutWithin(expect, '2. data in flight, {2000, 1000, 3, usertimeout 3000}, from the write', agent, client.sock, wrote, IN_FLIGHT.usertimeout!, cut);
  });

  it('applyKeepalive(server): the accepted socket errors ETIMEDOUT within its bound when the client vanishes', async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { server, port } = await agent.listen(IDLE);
    const [client] = await agent.connect(port);
    const accepted = await agent.accepted(server);
    expect(await agent.keepalive(accepted.sock!)).toMatchObject({ onoff: true, keepalivetime: 2000, keepaliveinterval: 1000, keepalivecount: 3 });
    const cut = cutBeforeFirstProbe(expect, netns, port, accepted.t, IDLE);
    await expectTimeoutWithin(expect, '3. server side, accepted socket {2000, 1000, 3}', agent, accepted.sock!, accepted.t, keepaliveBound(IDLE), cut);
    expect(await agent.open([client.sock]), 'the client, without keepalive, never notices').toEqual([client.sock]);
  });

  it('no false positives: connections whose peer answers the probes stay open for twice the bound', async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { port } = await agent.listen(IDLE);
    netns.count(port);
    const clients = await agent.connect(port, { count: 20, keepalive: IDLE });
    const bound = keepaliveBound(IDLE);
    const ended = await agent.until((events) => events.some(isEnd), 2 * bound);
    const packets = netns.packets(port);
    expect(ended, 'a live connection ended').toBe(false);
    expect(await agent.open(clients.map((c) => c.sock))).toHaveLength(clients.length);
    const handshake = 3 * clients.length;
    measured.push(`4. live connections: ${clients.length} open after ${s(2 * bound)} (twice the bound), ${packets - handshake} keepalive packets exchanged beyond the ${handshake} of the handshakes`);
    // Each probe and its answer is two packets; 2 s idle gives at least 4 rounds in 10 s, so 3 a connection is the floor.
    expect(packets - handshake, 'the keepalive probes really went out and were answered').toBeGreaterThanOrEqual(clients.length * 2 * 3);
  });

  it('1000 connections, 500 cut: every cut one errors ETIMEDOUT within its bound, none of the live ones does', { timeout: 40_000 }, async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const cutPort = (await agent.listen()).port;
    const livePort = (await agent.listen()).port;
    netns.count(livePort);
    const live = await agent.connect(livePort, { count: 500, keepalive: SHORT });
    const dead = await agent.connect(cutPort, { count: 500, keepalive: SHORT });
    const firstDead = Math.min(...dead.map((c) => c.t));
    const cut = cutBeforeFirstProbe(expect, netns, cutPort, firstDead, SHORT);
    const bound = keepaliveBound(SHORT);

    const deadSocks = new Set(dead.map((c) => c.sock));
    const lastDead = Math.max(...dead.map((c) => c.t));
    const erroredDead = (events: AgentEvent[]): AgentEvent[] => events.filter((e) => e.ev === 'error' && deadSocks.has(e.sock!));
    await agent.until((events) => erroredDead(events).length === dead.length, lastDead - firstDead + bound + LATE_MS + 2000);
    const lastLive = Math.max(...live.map((c) => c.t));
    await sleep(Math.max(0, lastLive + 2 * bound - monotonicMs()));

    const errors = new Map(erroredDead(agent.events).map((e) => [e.sock!, e]));
    const times = dead.map((c: Connected) => (errors.get(c.sock)?.t ?? Infinity) - c.t).sort((a, b) => a - b);
    const codes = [...new Set([...errors.values()].map((e) => e.code))];
    const liveSocks = new Set(live.map((c) => c.sock));
    const liveEnded = agent.events.filter((e) => isEnd(e) && liveSocks.has(e.sock!));
    const packets = netns.packets(livePort);
    const stat = (p: number): string => `${s(percentile(times, p))} (${(percentile(times, p) / bound).toFixed(2)})`;
    measured.push(
      `5. 1000 connections {1000, 1000, 2}, bound ${s(bound)}: ${errors.size}/500 cut ones errored (${codes.join(', ')}); ` +
        `detection min ${stat(0)}, median ${stat(50)}, p95 ${stat(95)}, max ${stat(100)}; ` +
        `cable pulled ${s(cut - firstDead)} after the first connected; ${500 - liveEnded.length}/500 live ones open after ${s(2 * bound)}, ${packets} packets on them`,
    );

    expect(codes).toEqual(['ETIMEDOUT']);
    expect(errors.size).toBe(500);
    expect(times[0], 'fastest: not before the bound').toBeGreaterThanOrEqual(bound * EARLY_RATIO);
    expect(times[times.length - 1], 'slowest: within the bound').toBeLessThanOrEqual(bound + LATE_MS);
    expect(liveEnded, 'no live connection ended').toEqual([]);
    expect(await agent.open([...liveSocks])).toHaveLength(500);
    expect(packets, 'the live ones were probed and answered').toBeGreaterThanOrEqual(500 * (3 + 2 * 2));
  });

  it('baseline, not asserted: Node\'s own setKeepAlive(true, 2000) (libuv\'s 1 s × 10 probes)', { timeout: 40_000 }, async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { port } = await agent.listen();
    const [client] = await agent.connect(port, { nodeKeepAlive: 2000 });
    const held = await agent.keepalive(client.sock);
    const cut = netns.cut(port);
    const libuvBound = held.keepalivetime! + held.keepaliveinterval! * held.keepalivecount!;
    const error = await agent.errorOf(client.sock, 25_000);
    const what = `6a. baseline, Node setKeepAlive(true, 2000), kernel holds {${held.keepalivetime}, ${held.keepaliveinterval}, ${held.keepalivecount}}`;
    if (error) measured.push(`${what}: ${error.code} ${ratio(error.t - client.t, libuvBound)}, ${s(error.t - cut)} after the cable was pulled`);
    else measured.push(`${what}: still open ${s(25_000)} after the cable was pulled`);
    expect(held.onoff).toBe(true);
  });

  it('without usertimeout, keepalive never fires while data is in flight: still open at twice the keepalive bound', { timeout: 40_000 }, async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { port } = await agent.listen();
    const [client] = await agent.connect(port, { keepalive: IDLE });
    cutBeforeFirstProbe(expect, netns, port, client.t, IDLE);
    const wrote = await agent.write([client.sock], 1000);
    const bound = keepaliveBound(IDLE);
    const error = await agent.errorOf(client.sock, 2 * bound);
    const retries = netns.sysctl('net/ipv4/tcp_retries2');
    measured.push(
      `6b. data in flight, {2000, 1000, 3} without usertimeout: ${error ? `${error.code} after ${s(error.t - wrote)}` : `still open ${s(2 * bound)} after the write`} ` +
        `(keepalive bound ${s(bound)}; Linux retransmits until tcp_retries2=${retries}, about 15 min at the default 15)`,
    );
    expect(error, 'keepalive does not fire while data is unacknowledged').toBeUndefined();
  });
});

describe.skipIf(netnsUnavailable)('tcp-keepalive:dead: a vanished peer is told apart from a reset and a clean close', { concurrent: true }, () => {
  const deadOf = (agent: Agent, sock: string): AgentEvent | undefined => agent.events.find((e) => e.ev === 'dead' && e.sock === sock);

  it('idle: after the socket\'s own ETIMEDOUT, with nothing unacknowledged and the peer silent for about the keepalive bound', async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { port } = await agent.listen();
    const [client] = await agent.connect(port, { keepalive: IDLE });
    const cut = cutBeforeFirstProbe(expect, netns, port, client.t, IDLE);
    await expectTimeoutWithin(expect, '6. dead channel, idle', agent, client.sock, client.t, keepaliveBound(IDLE), cut);
    await agent.until((events) => deadOf(agent, client.sock) !== undefined, 2000);
    const dead = deadOf(agent, client.sock);
    measured.push(`6. dead channel, idle: idleMs ${dead?.idleMs}, unacked ${dead?.unacked}`);
    expect(dead).toMatchObject({ side: 'client', source: 'socket', code: 'ETIMEDOUT', unacked: 0, afterError: true });
    expect(dead!.idleMs!).toBeGreaterThanOrEqual(IDLE.keepalivetime!);
    expect(dead!.idleMs!).toBeLessThanOrEqual(keepaliveBound(IDLE) + LATE_MS);
  });

  it('in flight: unacknowledged bytes, though Linux has zeroed tcpi_unacked by then', async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { server, port } = await agent.listen(IN_FLIGHT);
    await agent.connect(port);
    const accepted = await agent.accepted(server);
    const cut = cutBeforeFirstProbe(expect, netns, port, accepted.t, IN_FLIGHT);
    const wrote = await agent.write([accepted.sock!], 1000);
    await expectTimeoutWithin(expect, '7. dead channel, in flight (server side)', agent, accepted.sock!, wrote, IN_FLIGHT.usertimeout!, cut);
    await agent.until((events) => deadOf(agent, accepted.sock!) !== undefined, 2000);
    const dead = deadOf(agent, accepted.sock!);
    measured.push(`7. dead channel, in flight: idleMs ${dead?.idleMs}, unacked ${dead?.unacked}`);
    expect(dead).toMatchObject({ side: 'server', source: 'server', code: 'ETIMEDOUT', unacked: 1000, afterError: true });
  });

  it('no dead message for a reset or a clean close', async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { server, port } = await agent.listen();
    const clients = await agent.connect(port, { count: 2, keepalive: IDLE });
    await agent.until((events) => events.filter((e) => e.ev === 'accept' && e.server === server).length === 2, 2000);
    const acceptedSocks = agent.events.filter((e) => e.ev === 'accept' && e.server === server).map((e) => e.sock!);
    await agent.close(acceptedSocks[0], 'reset');
    await agent.close(acceptedSocks[1], 'end');
    const ended = await agent.until((events) => clients.every((c) => events.some((e) => e.ev === 'close' && e.sock === c.sock)), 3000);
    await sleep(200);
    expect(ended, 'both clients closed').toBe(true);
    expect(agent.events.filter((e) => e.ev === 'error').map((e) => e.code)).toEqual(['ECONNRESET']);
    expect(agent.events.filter((e) => e.ev === 'dead')).toEqual([]);
  });
});
