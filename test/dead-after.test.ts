import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ExpectStatic, OnTestFinishedHandler } from 'vitest';
import { applyKeepalive, limits } from '../dist/index.js';
import { mapDeadAfter } from '../dist/dead-after.js';
import { kernelOptions, mustRunInCi, observerUnavailable } from './support/kernel';
import { closeAll, connectedPair } from './support/net';
import { Agent, Netns, netnsUnavailable, removeAllNetns } from './support/netns';

/**
 * deadAfter on Linux, as root: what the kernel holds (read from another process), and a pulled cable reported
 * within 1.1 × deadAfter (+ 1 s: Linux fires keepalive and checks usertimeout on its own timers), idle and in
 * flight. The mapping itself, its errors and getKeepalive's view are in the fast tier (test/fast/dead-after.test.ts).
 */

describe('deadAfter, read from another process', () => {
  afterAll(closeAll);

  describe.skipIf(observerUnavailable)('the kernel observer', () => {
    it('the kernel holds 5 s / 1 s / 5 probes and TCP_USER_TIMEOUT 9500 for deadAfter 10 s', async () => {
      const { client: a } = await connectedPair();
      applyKeepalive(a, { deadAfter: 10_000 });
      expect(kernelOptions(a)).toEqual({ so_keepalive: 1, tcp_keepidle: 5, tcp_keepintvl: 1, tcp_keepcnt: 5, tcp_user_timeout: 9500 });
    });
  });
});

/** Time from the reference to the error may exceed deadAfter by 10 %, plus 1 s where the kernel's own timers round. */
const bound = (deadAfter: number): number => 1.1 * deadAfter + (process.platform === 'linux' ? 1000 : 0);
const measured: string[] = [];

mustRunInCi('the deadAfter dead-peer suite (private network namespaces, nftables)', netnsUnavailable);
mustRunInCi('the deadAfter kernel observer (pidfd_getfd)', observerUnavailable);

function namespace(onTestFinished: (fn: OnTestFinishedHandler) => void): Netns {
  const netns = new Netns();
  onTestFinished(() => netns.destroy());
  return netns;
}

async function expectReported(expect: ExpectStatic, what: string, agent: Agent, sock: string, from: number, deadAfter: number, cut: number): Promise<void> {
  const limit = bound(deadAfter);
  const error = await agent.errorOf(sock, limit + 2000);
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  measured.push(`${what}: ${error ? `${error.code} at ${s(error.t - from)} (${((error.t - from) / deadAfter).toFixed(2)} × deadAfter; ${s(error.t - cut)} after the cut)` : `no error within ${s(limit + 2000)}`}`);
  expect(error?.code, `${what}: no error`).toBe('ETIMEDOUT');
  expect(error!.t - from, `${what}: within 1.1 × deadAfter (+1 s)`).toBeLessThanOrEqual(limit);
}

const { nodeVersions, unsupported: versionsUnavailable } = createRequire(__filename)('./support/node-versions.js') as {
  unsupported: string | undefined;
  nodeVersions(): Array<{ version: string; node: string }>;
};
const bunVersion = (JSON.parse(readFileSync(join(__dirname, 'runtimes', 'versions.json'), 'utf8')) as { bun: { version: string } }).bun.version;
const bunBinary = join(__dirname, '..', '.cache', 'runtimes', `bun-${bunVersion}`, 'bun');
const othersUnavailable = netnsUnavailable ?? versionsUnavailable ?? (existsSync(bunBinary) ? undefined : `bun ${bunVersion} is not installed (bash .ci/steps/35-runtimes.sh)`);
mustRunInCi('deadAfter on Node 22-26 and Bun, with the cable pulled', othersUnavailable);
const otherRuntimes = othersUnavailable
  ? []
  : [...nodeVersions().filter(({ version }) => version !== process.versions.node).map(({ version, node }) => ({ name: `Node ${version}`, binary: node })), { name: `Bun ${bunVersion}`, binary: bunBinary }];

describe.skipIf(netnsUnavailable)('a pulled cable with deadAfter, in a private network namespace', { concurrent: true }, () => {
  afterAll(() => {
    removeAllNetns();
    if (measured.length > 0) console.log(`deadAfter, measured:\n  ${measured.sort().join('\n  ')}`);
  });

  for (const deadAfter of [3000, 5000, 10_000]) {
    it(`deadAfter ${deadAfter / 1000} s, idle: ETIMEDOUT within 1.1 × deadAfter of the last packet`, { timeout: 30_000 }, async ({ expect, onTestFinished }) => {
      const netns = namespace(onTestFinished);
      const agent = netns.agent();
      const { port } = await agent.listen();
      const [client] = await agent.connect(port, { keepalive: { deadAfter } });
      const cut = netns.cut(port);
      expect(cut - client.t, 'the cable was pulled before the first probe was due').toBeLessThan(mapDeadAfter(deadAfter, limits, process.platform).keepalivetime);
      await expectReported(expect, `deadAfter ${String(deadAfter / 1000).padStart(2)} s, idle`, agent, client.sock, client.t, deadAfter, cut);
    });

    it(`deadAfter ${deadAfter / 1000} s, data in flight: ETIMEDOUT within 1.1 × deadAfter of the write`, { timeout: 30_000 }, async ({ expect, onTestFinished }) => {
      const netns = namespace(onTestFinished);
      const agent = netns.agent();
      const { port } = await agent.listen();
      const [client] = await agent.connect(port, { keepalive: { deadAfter } });
      const cut = netns.cut(port);
      const wrote = await agent.write([client.sock], 1000);
      await expectReported(expect, `deadAfter ${String(deadAfter / 1000).padStart(2)} s, in flight`, agent, client.sock, wrote, deadAfter, cut);
    });
  }

  // The same mapping on the other runtimes the package supports: deadAfter 3 s, idle and in flight.
  for (const { name, binary } of otherRuntimes) {
    for (const inFlight of [false, true]) {
      it(`${name}: deadAfter 3 s, ${inFlight ? 'data in flight' : 'idle'}: ETIMEDOUT within 1.1 × deadAfter`, { timeout: 30_000 }, async ({ expect, onTestFinished }) => {
        if (!existsSync(binary)) throw new Error(`${binary} is missing`);
        const netns = namespace(onTestFinished);
        const agent = netns.agent(binary);
        const { port } = await agent.listen();
        const [client] = await agent.connect(port, { keepalive: { deadAfter: 3000 } });
        const cut = netns.cut(port);
        const from = inFlight ? await agent.write([client.sock], 1000) : client.t;
        await expectReported(expect, `${name.padEnd(12)} deadAfter  3 s, ${inFlight ? 'in flight' : 'idle'}`, agent, client.sock, from, 3000, cut);
      });
    }
  }

  it('deadAfter 3 s on the server: the accepted socket reports a vanished client within the bound', { timeout: 30_000 }, async ({ expect, onTestFinished }) => {
    const netns = namespace(onTestFinished);
    const agent = netns.agent();
    const { server, port } = await agent.listen({ deadAfter: 3000 });
    await agent.connect(port);
    const accepted = await agent.accepted(server);
    const cut = netns.cut(port);
    await expectReported(expect, 'deadAfter  3 s, idle, accepted socket', agent, accepted.sock!, accepted.t, 3000, cut);
  });
});
