import * as diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { applyKeepalive, CONFIGURE_CHANNEL, ERROR_CHANNEL, getKeepalive, setDefaultKeepalive, SKIP_CHANNEL } from '../dist/index.js';
import { KernelOptions, kernelOptions, mustRunInCi, observerUnavailable } from './support/kernel';
import { closeAll, listening, track } from './support/net';

/**
 * The diagnostics channels, on every path that produces a message: explicit (socket, server, inherited from
 * the listening socket), default, filter, Unix socket, explicit winning over the default, failure. Each
 * configure message's values are checked against what the kernel holds, read by the pidfd observer.
 */
interface Message {
  channel: string;
  socket: net.Socket;
  side: string;
  source?: string;
  reason?: string;
  values?: { onoff: boolean; keepalivetime?: number; keepaliveinterval?: number; keepalivecount?: number; usertimeout?: number };
  error?: Error;
}

const messages: Message[] = [];
const listeners = new Map<string, (message: unknown) => void>();
for (const channel of [CONFIGURE_CHANNEL, SKIP_CHANNEL, ERROR_CHANNEL]) listeners.set(channel, (message) => messages.push({ channel, ...(message as Omit<Message, 'channel'>) }));

/** What the kernel must hold for a configure message's values (Linux: seconds for idle and interval). */
function kernelOf(values: NonNullable<Message['values']>): KernelOptions {
  return {
    so_keepalive: values.onoff ? 1 : 0,
    tcp_keepidle: values.keepalivetime! / 1000,
    tcp_keepintvl: values.keepaliveinterval! / 1000,
    tcp_keepcnt: values.keepalivecount!,
    tcp_user_timeout: values.usertimeout!,
  };
}

const A = { keepalivetime: 2000, keepaliveinterval: 1000, keepalivecount: 2, usertimeout: 3000 };
const S = { keepalivetime: 5000, keepaliveinterval: 2000 };
const X = { keepalivetime: 7000, keepaliveinterval: 3000, keepalivecount: 4 };

async function pair(server: net.Server, before?: (socket: net.Socket) => void): Promise<{ client: net.Socket; accepted: net.Socket }> {
  const port = await listening(server);
  const acceptedP = once(server, 'connection') as Promise<[net.Socket]>;
  const client = new net.Socket();
  before?.(client);
  track(client.connect(port, '127.0.0.1'));
  await once(client, 'connect');
  const [accepted] = await acceptedP;
  return { client, accepted: track(accepted) };
}

/** `server` listening on a Unix path of its own, one client connected to it, and the socket it accepted. */
async function unixPair(server: net.Server): Promise<{ client: net.Socket; accepted: net.Socket }> {
  server.listen(join(mkdtempSync(join(tmpdir(), 'tcpka-channels-')), 'unix.sock'));
  await once(server, 'listening');
  const acceptedP = once(server, 'connection') as Promise<[net.Socket]>;
  const client = track(net.connect(server.address() as string));
  await once(client, 'connect');
  const [accepted] = await acceptedP;
  return { client, accepted: track(accepted) };
}

const of = (socket: net.Socket): Message[] => messages.filter((m) => m.socket === socket);

/** Runs `check` with the process's warnings collected into the array it is given. */
async function withWarnings(check: (warnings: Error[]) => Promise<void>): Promise<void> {
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning);
  process.on('warning', onWarning);
  try {
    await check(warnings);
  } finally {
    process.off('warning', onWarning);
  }
}

mustRunInCi('the diagnostics channel suite', process.platform === 'linux' ? observerUnavailable : 'Linux-only (pidfd observer)');

describe.skipIf(process.platform !== 'linux' || observerUnavailable)('diagnostics channels: a message for every decision, values as the kernel holds them', () => {
  beforeAll(() => {
    for (const [channel, listener] of listeners) diagnosticsChannel.subscribe(channel, listener);
  });
  afterAll(() => {
    for (const [channel, listener] of listeners) diagnosticsChannel.unsubscribe(channel, listener);
  });
  afterEach(async () => {
    setDefaultKeepalive(null);
    messages.length = 0;
    await closeAll();
  });

  it('explicit: a connected socket, a socket still connecting, a server (its listening socket, then inherited)', async () => {
    const server = net.createServer();
    applyKeepalive(server, S);
    const first = await pair(server, (client) => applyKeepalive(client, X));
    const second = await pair(server);
    applyKeepalive(second.client, A);
    for (const [socket, side, source] of [
      [first.client, 'client', 'socket'],
      [first.accepted, 'server', 'server'],
      [second.accepted, 'server', 'server'],
      [second.client, 'client', 'socket'],
    ] as const) {
      const [message, ...more] = of(socket);
      expect(more, `${side} ${source}: one message`).toEqual([]);
      expect(message).toMatchObject({ channel: CONFIGURE_CHANNEL, side, source });
      expect(message.values).toEqual(getKeepalive(socket));
      expect(kernelOptions(socket)).toEqual(kernelOf(message.values!));
    }
  });

  it('default: both ends configured; the filter, a Unix socket and explicit settings each skip with their reason', async () => {
    setDefaultKeepalive(A);
    const plain = await pair(net.createServer());
    for (const [socket, side] of [
      [plain.client, 'client'],
      [plain.accepted, 'server'],
    ] as const) {
      expect(of(socket)).toEqual([expect.objectContaining({ channel: CONFIGURE_CHANNEL, side, source: 'default' })]);
      expect(kernelOptions(socket)).toEqual(kernelOf(of(socket)[0].values!));
    }

    const explicitServer = net.createServer();
    applyKeepalive(explicitServer, S);
    const withOwn = await pair(explicitServer, (client) => applyKeepalive(client, X));
    expect(of(withOwn.client).map((m) => [m.channel, m.reason ?? m.source])).toEqual([
      [SKIP_CHANNEL, 'explicit'],
      [CONFIGURE_CHANNEL, 'socket'],
    ]);
    expect(of(withOwn.accepted).map((m) => [m.channel, m.reason ?? m.source])).toEqual([
      [SKIP_CHANNEL, 'explicit'],
      [CONFIGURE_CHANNEL, 'server'],
    ]);

    setDefaultKeepalive(A, { filter: (_socket, { side }) => side === 'server' });
    const filtered = await pair(net.createServer());
    expect(of(filtered.client)).toEqual([expect.objectContaining({ channel: SKIP_CHANNEL, side: 'client', reason: 'filter' })]);
    expect(of(filtered.accepted)).toEqual([expect.objectContaining({ channel: CONFIGURE_CHANNEL, side: 'server', source: 'default' })]);
    expect(kernelOptions(filtered.client).so_keepalive, 'the filtered end is left alone').toBe(0);

    const { client: unixClient, accepted: unixAccepted } = await unixPair(track(net.createServer()));
    expect(of(unixClient)).toEqual([expect.objectContaining({ channel: SKIP_CHANNEL, side: 'client', reason: 'not-tcp' })]);
    expect(of(unixAccepted)).toEqual([expect.objectContaining({ channel: SKIP_CHANNEL, side: 'server', reason: 'not-tcp' })]);
  });

  it('failure: a filter that throws is an error message (and the one warning), the connection left alone', async () => {
    await withWarnings(async (warnings) => {
      setDefaultKeepalive(A, {
        filter: () => {
          throw new Error('a filter that throws');
        },
      });
      const { client } = await pair(net.createServer());
      expect(of(client).map((m) => [m.channel, m.source ?? m.reason])).toEqual([
        [ERROR_CHANNEL, 'default'],
        [SKIP_CHANNEL, 'filter'],
      ]);
      expect(of(client)[0].error?.message).toBe('a filter that throws');
      expect(kernelOptions(client).so_keepalive).toBe(0);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((w) => (w as { code?: string }).code)).toContain('TCP_KEEPALIVE_DEFAULT_FAILED');
    });
  });

  it('a server the default configured that listens again on a Unix path: its connections skipped as not TCP, and no warning (nobody called applyKeepalive)', async () => {
    await withWarnings(async (warnings) => {
      setDefaultKeepalive(A);
      const server = net.createServer();
      const first = await pair(server);
      expect(of(first.accepted)[0]).toMatchObject({ channel: CONFIGURE_CHANNEL, source: 'default' });
      first.client.destroy();
      first.accepted.destroy();
      await new Promise((resolve) => server.close(resolve));
      const { accepted } = await unixPair(server);
      await new Promise((resolve) => setImmediate(resolve));
      expect(of(accepted)).toEqual([expect.objectContaining({ channel: SKIP_CHANNEL, side: 'server', reason: 'not-tcp' })]);
      expect(warnings).toEqual([]);
    });
  });

  it('a re-assert after a driver setKeepAlive is a configure message too, and setKeepAlive(false) one with onoff false', async () => {
    const { client } = await pair(net.createServer());
    applyKeepalive(client, A);
    messages.length = 0;
    client.setKeepAlive(true, 60000);
    client.setKeepAlive(false);
    expect(of(client).map((m) => [m.channel, m.values?.onoff])).toEqual([
      [CONFIGURE_CHANNEL, true],
      [CONFIGURE_CHANNEL, false],
    ]);
    expect(kernelOptions(client).so_keepalive).toBe(0);
  });
});
