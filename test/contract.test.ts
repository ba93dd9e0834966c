import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import * as lib from '../dist/index.js';
import { binding } from '../dist/binding.js';
import { kernelOptions, mustRunInCi, observerUnavailable, ssKeepaliveTimer, ssUnavailable } from './support/kernel';
import { closeAll, connectedPair, listening, tlsCert, tlsKey, track } from './support/net';
import { IN_KERNEL, OPTIONS, runContract, viewOf } from './support/contract.js';

const { applyKeepalive, getKeepalive } = lib;

/**
 * The contract (test/support/contract.js) on this Node, each socket read back twice: through getKeepalive and,
 * on Linux as root, through the kernel observer (pidfd_getfd + getsockopt in another process). Without the
 * observer (macOS, Windows, a normal user) the cases still run, read back through getsockopt alone.
 */
mustRunInCi('the kernel-observed contract suite', observerUnavailable);
mustRunInCi('the ss keepalive-timer check', ssUnavailable);

const platform = process.platform === 'win32' ? 'win32' : process.platform === 'darwin' ? 'darwin' : 'linux';

describe(`the contract${observerUnavailable ? ` (read back through getsockopt only: the kernel observer ${observerUnavailable})` : ', seen by the kernel'}`, () => {
  runContract({
    test: (name: string, fn: () => Promise<unknown>, skip?: string) => it.skipIf(skip !== undefined)(name, async () => void (await fn())),
    lib,
    platform,
    tlsKey,
    tlsCert,
    read: observerUnavailable ? undefined : (socket: net.Socket) => kernelOptions(socket),
  });
});

describe('Node only', () => {
  afterEach(closeAll);

  it('loads as CommonJS and as an ES module in plain Node, one instance for both', () => {
    const root = join(__dirname, '..');
    const script = `
      import { applyKeepalive, getKeepalive, limits } from ${JSON.stringify(join(root, 'dist', 'index.mjs'))};
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)(${JSON.stringify(join(root, 'dist', 'index.js'))});
      console.log(JSON.stringify([typeof applyKeepalive, applyKeepalive === cjs.applyKeepalive, getKeepalive === cjs.getKeepalive, limits.unit]));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['function', true, true, process.platform === 'win32' ? 1 : 1000]);
  });

  it.skipIf(ssUnavailable)('arms the keepalive timer that ss shows, at keepalivetime', async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, { keepalivetime: 5000, keepaliveinterval: 1000 });
    const left = ssKeepaliveTimer(client.localPort!);
    expect(left).toBeDefined();
    expect(left!).toBeGreaterThan(3);
    expect(left!).toBeLessThanOrEqual(5);
  });

  it.skipIf(observerUnavailable || process.platform !== 'linux')('a server applied while listening: the listening socket holds the settings (Linux accepted sockets inherit them)', async () => {
    const server = net.createServer();
    await listening(server);
    applyKeepalive(server, OPTIONS);
    expect(kernelOptions(server)).toEqual(IN_KERNEL);
    expect(viewOf(getKeepalive(server))).toEqual(IN_KERNEL);
  });

  it.skipIf(observerUnavailable)('a TLS socket over a net.Socket that was not connected yet (a JSStreamSocket between them): set on that TCP socket', async () => {
    const port = await listening(tls.createServer({ key: tlsKey, cert: tlsCert }));
    // Node wraps a handle-less socket in a JSStreamSocket: the TLS handle sits on a JSStream, not on the TCP handle.
    const whileConnecting = track(new net.Socket());
    const early = track(tls.connect({ socket: whileConnecting, rejectUnauthorized: false }));
    whileConnecting.connect(port, '127.0.0.1');
    applyKeepalive(early, OPTIONS);
    await once(early, 'secureConnect');
    expect(early.destroyed).toBe(false);
    expect(kernelOptions(whileConnecting)).toEqual(IN_KERNEL);
    expect(getKeepalive(early)).toEqual(OPTIONS);

    const raw = track(new net.Socket());
    const late = track(tls.connect({ socket: raw, rejectUnauthorized: false }));
    raw.connect(port, '127.0.0.1');
    await once(late, 'secureConnect');
    applyKeepalive(late, { ...OPTIONS, keepalivetime: 4000 });
    expect(kernelOptions(raw)).toEqual({ ...IN_KERNEL, tcp_keepidle: 4 });
    raw.destroy();
    await once(raw, 'close');
    expect(() => getKeepalive(late)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });

  it.skipIf(process.platform === 'win32')('an OS failure carries the libuv code, errno and syscall', () => {
    const fd = openSync('/dev/null', 'r');
    try {
      expect(() => binding.apply(fd, 1, 1000, 1000, -1, -1)).toThrow(expect.objectContaining({ code: 'ENOTSOCK', errno: -88, syscall: 'setsockopt(TCP_KEEPINTVL)' }));
      expect(() => binding.resolve(fd, undefined, undefined, undefined, undefined)).toThrow(expect.objectContaining({ code: 'ENOTSOCK', syscall: 'getsockopt(SO_TYPE)' }));
      expect(() => binding.read(fd)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
    } finally {
      closeSync(fd);
    }
  });

  it.skipIf(observerUnavailable)('worker threads (context-aware addon): applies and reads back inside several workers and the main thread at once', async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, OPTIONS);
    const script = `
      const { parentPort } = require('node:worker_threads');
      const net = require('node:net');
      const { applyKeepalive, getKeepalive } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))});
      const server = net.createServer((s) => s.on('error', () => {})).listen(0, '127.0.0.1', () => {
        const client = net.connect(server.address().port, '127.0.0.1');
        applyKeepalive(client, { keepalivetime: 4000, keepaliveinterval: 2000, keepalivecount: 4 });
        client.on('connect', () => {
          parentPort.postMessage(getKeepalive(client));
          client.destroy();
          server.close();
          server.unref();
        });
        client.on('error', (error) => { throw error; });
      });`;
    const results = await Promise.all(
      [1, 2, 3].map(async () => {
        const worker = new Worker(script, { eval: true });
        const exited = once(worker, 'exit');
        const [message] = await once(worker, 'message');
        await worker.terminate();
        await exited;
        return message;
      }),
    );
    for (const values of results) expect(values).toMatchObject({ onoff: true, keepalivetime: 4000, keepaliveinterval: 2000, keepalivecount: 4 });
    expect(kernelOptions(client)).toEqual(IN_KERNEL);
  });
});
