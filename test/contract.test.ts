import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { applyKeepalive, getKeepalive, KeepaliveOptions } from '../dist/index.js';
import { binding } from '../dist/binding.js';
import { kernelOptions, mustRunInCi, observerUnavailable, ssKeepaliveTimer, ssUnavailable } from './support/kernel';
import { closeAll, connectedPair, listening, tlsCert, tlsKey, track } from './support/net';

afterEach(closeAll);

const options: KeepaliveOptions = { onoff: true, keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3, usertimeout: 6000 };
const inKernel = { so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 1, tcp_keepcnt: 3, tcp_user_timeout: 6000 };

mustRunInCi('the kernel-observed contract suite', observerUnavailable);
mustRunInCi('the ss keepalive-timer check', ssUnavailable);

describe('package entry points', () => {
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
});

describe.skipIf(observerUnavailable)('a connected net.Socket, seen by the kernel', () => {
  it('applies every option and getKeepalive reads the same back in ms', async () => {
    const { client } = await connectedPair();
    expect(applyKeepalive(client, options)).toBe(client);
    expect(kernelOptions(client)).toEqual(inKernel);
    expect(getKeepalive(client)).toEqual({ onoff: true, keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3, usertimeout: 6000 });
  });

  it.skipIf(ssUnavailable)('arms the keepalive timer that ss shows, at keepalivetime', async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, { keepalivetime: 5000, keepaliveinterval: 1000 });
    const left = ssKeepaliveTimer(client.localPort!);
    expect(left).toBeDefined();
    expect(left!).toBeGreaterThan(3);
    expect(left!).toBeLessThanOrEqual(5);
  });

  it.each([
    [1500, 2],
    [200, 1],
    [1, 1],
    [1000, 1],
    [1001, 2],
    [32767000, 32767],
  ])('rounds %i ms up to %i s', async (ms, seconds) => {
    const { client } = await connectedPair();
    applyKeepalive(client, { keepalivetime: ms, keepaliveinterval: ms });
    const seen = kernelOptions(client);
    expect(seen.tcp_keepidle).toBe(seconds);
    expect(seen.tcp_keepintvl).toBe(seconds);
    expect(getKeepalive(client).keepalivetime).toBe(seconds * 1000);
  });

  it('an absent keepalivecount or usertimeout is what a new socket holds, whatever this one held before', async () => {
    const { client } = await connectedPair();
    const fresh = kernelOptions((await connectedPair()).client);
    applyKeepalive(client, options);
    client.setKeepAlive(true, 60000); // libuv's 10 probes, which ours re-assert over
    applyKeepalive(client, { keepalivetime: 10000, keepaliveinterval: 2000 });
    expect(kernelOptions(client)).toEqual({ so_keepalive: 1, tcp_keepidle: 10, tcp_keepintvl: 2, tcp_keepcnt: fresh.tcp_keepcnt, tcp_user_timeout: fresh.tcp_user_timeout });
  });

  it('usertimeout 0 restores the system default', async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, options);
    applyKeepalive(client, { ...options, usertimeout: 0 });
    expect(kernelOptions(client).tcp_user_timeout).toBe(0);
  });

  it('onoff false (or 0) turns SO_KEEPALIVE off, every other field at what a new socket holds', async () => {
    const { client } = await connectedPair();
    const fresh = kernelOptions((await connectedPair()).client);
    applyKeepalive(client, options);
    applyKeepalive(client, { onoff: false, keepalivetime: 'ignored' as unknown as number });
    expect(kernelOptions(client)).toEqual({ ...fresh, so_keepalive: 0 });
    applyKeepalive(client, { ...options, onoff: 1 });
    expect(kernelOptions(client).so_keepalive).toBe(1);
    applyKeepalive(client, { onoff: 0 });
    expect(getKeepalive(client).onoff).toBe(false);
  });

  it('works on the accepted side of a connection too', async () => {
    const { accepted } = await connectedPair();
    applyKeepalive(accepted, options);
    expect(kernelOptions(accepted)).toEqual(inKernel);
  });
});

describe.skipIf(observerUnavailable)('a socket still connecting', () => {
  async function seenInFirstConnectListener(socket: net.Socket): Promise<ReturnType<typeof kernelOptions>> {
    track(socket);
    const [seen] = (await new Promise((resolve, reject) => {
      socket.once('connect', () => resolve([kernelOptions(socket)]));
      socket.once('error', reject);
    })) as [ReturnType<typeof kernelOptions>];
    return seen;
  }

  it('by IP: the settings land before the user connect listeners run', async () => {
    const port = await listening(net.createServer());
    const client = net.connect(port, '127.0.0.1');
    expect(client.connecting).toBe(true);
    applyKeepalive(client, options);
    expect(await seenInFirstConnectListener(client)).toEqual(inKernel);
  });

  it('by a hostname still resolving', async () => {
    const port = await listening(net.createServer());
    const client = net.connect({ port, host: 'localhost', family: 4 });
    applyKeepalive(client, options);
    expect(await seenInFirstConnectListener(client)).toEqual(inKernel);
  });

  it('a new net.Socket connected later, even when the user listener came first', async () => {
    const port = await listening(net.createServer());
    const client = track(new net.Socket());
    const seen = new Promise((resolve) => client.once('connect', () => resolve(kernelOptions(client))));
    applyKeepalive(client, options);
    client.connect(port, '127.0.0.1');
    expect(await seen).toEqual(inKernel);
  });

  it('applying twice while connecting keeps the last settings', async () => {
    const port = await listening(net.createServer());
    const client = net.connect(port, '127.0.0.1');
    applyKeepalive(client, options);
    applyKeepalive(client, { ...options, keepalivetime: 7000 });
    expect(await seenInFirstConnectListener(client)).toEqual({ ...inKernel, tcp_keepidle: 7 });
    expect(client.listenerCount('connect')).toBe(0);
  });

  it('setKeepAlive(false) before connect is honoured', async () => {
    const port = await listening(net.createServer());
    const client = net.connect(port, '127.0.0.1');
    applyKeepalive(client, options);
    client.setKeepAlive(false);
    expect((await seenInFirstConnectListener(client)).so_keepalive).toBe(0);
    client.setKeepAlive(true, 60000);
    expect(kernelOptions(client)).toEqual(inKernel);
  });

  it('getKeepalive says the socket is not connected yet', async () => {
    const port = await listening(net.createServer());
    const client = track(net.connect(port, '127.0.0.1'));
    expect(() => getKeepalive(client)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_CONNECTED' }));
    await once(client, 'connect');
  });

  it('a failure at connect destroys the socket with the error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcp-keepalive-'));
    const path = join(dir, 'ipc.sock');
    const server = track(net.createServer());
    server.listen(path);
    await once(server, 'listening');
    const client = track(new net.Socket());
    applyKeepalive(client, options);
    const userConnect = new Promise((resolve) => client.once('connect', () => resolve(client.destroyed)));
    client.connect(path);
    const [error] = await once(client, 'error');
    expect(error.code).toBe('ERR_KEEPALIVE_NOT_TCP');
    expect(client.destroyed).toBe(true);
    expect(await userConnect).toBe(true);
  });
});

describe.skipIf(observerUnavailable)('TLS', () => {
  it('a tls.TLSSocket gets the settings on its TCP socket', async () => {
    const port = await listening(tls.createServer({ key: tlsKey, cert: tlsCert }));
    const client = track(tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }));
    applyKeepalive(client, options);
    await once(client, 'secureConnect');
    expect(kernelOptions(client)).toEqual(inKernel);
    expect(getKeepalive(client).keepalivecount).toBe(3);
  });

  it('a TLS socket over a net.Socket that was not connected yet (a JSStreamSocket between them): set on that TCP socket', async () => {
    const port = await listening(tls.createServer({ key: tlsKey, cert: tlsCert }));
    // Node wraps a handle-less socket in a JSStreamSocket: the TLS handle sits on a JSStream, not on the TCP handle.
    const whileConnecting = track(new net.Socket());
    const early = track(tls.connect({ socket: whileConnecting, rejectUnauthorized: false }));
    whileConnecting.connect(port, '127.0.0.1');
    applyKeepalive(early, options);
    await once(early, 'secureConnect');
    expect(early.destroyed).toBe(false);
    expect(kernelOptions(whileConnecting)).toEqual(inKernel);
    expect(getKeepalive(early)).toEqual({ onoff: true, keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3, usertimeout: 6000 });

    const raw = track(new net.Socket());
    const late = track(tls.connect({ socket: raw, rejectUnauthorized: false }));
    raw.connect(port, '127.0.0.1');
    await once(late, 'secureConnect');
    applyKeepalive(late, { ...options, keepalivetime: 4000 });
    expect(kernelOptions(raw)).toEqual({ ...inKernel, tcp_keepidle: 4 });
    raw.destroy();
    await once(raw, 'close');
    expect(() => getKeepalive(late)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });

  it('a TLS socket over a stream that is not TCP is refused', async () => {
    const duplex = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    const client = track(tls.connect({ socket: duplex, rejectUnauthorized: false }));
    client.on('error', () => {});
    expect(() => applyKeepalive(client, options)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_TCP' }));
  });
});

describe.skipIf(observerUnavailable)('servers: every accepted connection, before the connection listeners', () => {
  async function firstConnection(server: net.Server, event = 'connection'): Promise<ReturnType<typeof kernelOptions>> {
    const seen = new Promise<ReturnType<typeof kernelOptions>>((resolve) => server.once(event, (socket: net.Socket) => resolve(kernelOptions(socket))));
    const port = await listening(server);
    const client = track(net.connect(port, '127.0.0.1'));
    client.on('error', () => {});
    return seen;
  }

  it('net.Server applied before listen', async () => {
    const server = net.createServer();
    server.on('connection', (s) => track(s));
    applyKeepalive(server, options);
    expect(await firstConnection(server)).toEqual(inKernel);
  });

  it('net.Server applied while listening; the listener itself holds them (accepted sockets inherit on Linux)', async () => {
    const server = net.createServer();
    server.on('connection', (s) => track(s));
    await listening(server);
    applyKeepalive(server, options);
    if (process.platform === 'linux') expect(kernelOptions(server)).toEqual(inKernel);
    expect(await firstConnection(server)).toEqual(inKernel);
  });

  it('a server with Node\'s own keepAlive option still ends up with ours', async () => {
    const server = net.createServer({ keepAlive: true, keepAliveInitialDelay: 60000 });
    server.on('connection', (s) => track(s));
    applyKeepalive(server, options);
    expect(await firstConnection(server)).toEqual(inKernel);
  });

  it('applying again changes the settings for later connections', async () => {
    const server = net.createServer();
    server.on('connection', (s) => track(s));
    applyKeepalive(server, options);
    applyKeepalive(server, { ...options, keepalivecount: 5 });
    expect(await firstConnection(server)).toEqual({ ...inKernel, tcp_keepcnt: 5 });
    expect(server.listenerCount('connection')).toBe(1); // the test's own: ours is the server's emit, not a listener
  });

  it('http.Server', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', (s) => track(s));
    applyKeepalive(server, options);
    expect(await firstConnection(server)).toEqual(inKernel);
  });

  it('https.Server: the raw connection and the TLS socket over it', async () => {
    const server = https.createServer({ key: tlsKey, cert: tlsCert }, (_req, res) => res.end('ok'));
    applyKeepalive(server, options);
    const secure = new Promise<ReturnType<typeof kernelOptions>>((resolve) => server.once('secureConnection', (s: tls.TLSSocket) => {
      track(s);
      resolve(kernelOptions(s));
    }));
    const port = await listening(server);
    track(tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })).on('error', () => {});
    expect(await secure).toEqual(inKernel);
  });

  it('getKeepalive on a server reads the listening socket', async () => {
    const server = net.createServer();
    await listening(server);
    applyKeepalive(server, options);
    if (process.platform === 'linux') expect(getKeepalive(server)).toMatchObject({ onoff: true, keepalivetime: 3000, keepalivecount: 3 });
    expect(() => getKeepalive(net.createServer())).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_CONNECTED' }));
  });
});

describe.skipIf(observerUnavailable)('sticky: a later setKeepAlive by other code', () => {
  it('setKeepAlive(true, n) keeps our idle time, interval and count', async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, options);
    client.setKeepAlive(true, 60000);
    expect(kernelOptions(client)).toEqual(inKernel);
    client.setKeepAlive(true, 60000);
    expect(kernelOptions(client)).toEqual(inKernel);
  });

  it('setKeepAlive(false) turns keepalive off, setKeepAlive(true) brings ours back', async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, options);
    client.setKeepAlive(false);
    expect(kernelOptions(client).so_keepalive).toBe(0);
    client.setKeepAlive(true, 5000);
    expect(kernelOptions(client)).toEqual(inKernel);
  });

  it("Node's own call on an accepted handle (the server keepAlive option) comes before ours", async () => {
    const server = net.createServer({ keepAlive: true, keepAliveInitialDelay: 60000 });
    applyKeepalive(server, options);
    const port = await listening(server);
    const acceptedP = once(server, 'connection') as Promise<[net.Socket]>;
    track(net.connect(port, '127.0.0.1'));
    const [accepted] = await acceptedP;
    expect(kernelOptions(track(accepted))).toEqual(inKernel);
  });

  it('on an accepted connection of a server, and through a TLS socket', async () => {
    const server = tls.createServer({ key: tlsKey, cert: tlsCert });
    applyKeepalive(server, options);
    const accepted = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
    const port = await listening(server);
    const client = track(tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }));
    applyKeepalive(client, options);
    await once(client, 'secureConnect');
    const socket = track(await accepted);
    socket.setKeepAlive(true, 90000);
    client.setKeepAlive(true, 90000);
    expect(kernelOptions(socket)).toEqual(inKernel);
    expect(kernelOptions(client)).toEqual(inKernel);
  });

  it('after onoff:false by us, setKeepAlive(true, n) behaves as Node alone would', async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, options);
    applyKeepalive(client, { onoff: false });
    client.setKeepAlive(true, 60000);
    expect(kernelOptions(client)).toMatchObject({ so_keepalive: 1, tcp_keepidle: 60 });
  });
});

describe('bad input: a typed error with a code, and nothing changes', () => {
  const cases: Array<[string, unknown, string, string | RegExp]> = [
    ['options missing', undefined, 'ERR_INVALID_ARG_TYPE', /"options"/],
    ['options null', null, 'ERR_INVALID_ARG_TYPE', /"options"/],
    ['options a number', 5, 'ERR_INVALID_ARG_TYPE', /"options"/],
    ['options an array', [], 'ERR_INVALID_ARG_TYPE', /"options"/],
    ['a string time', { keepalivetime: '3000', keepaliveinterval: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.keepalivetime/],
    ['keepalivetime missing', { keepaliveinterval: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.keepalivetime.*required/],
    ['keepaliveinterval missing', { keepalivetime: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.keepaliveinterval/],
    ['onoff a string', { onoff: 'yes', keepalivetime: 1000, keepaliveinterval: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.onoff/],
    ['onoff 2', { onoff: 2, keepalivetime: 1000, keepaliveinterval: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.onoff/],
    ['a bigint count', { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 3n }, 'ERR_INVALID_ARG_TYPE', /options\.keepalivecount/],
    ['an unknown option', { keepalivetime: 1000, keepaliveinterval: 1000, keepAliveCount: 3 }, 'ERR_INVALID_ARG_VALUE', /options\.keepAliveCount/],
    ['NaN', { keepalivetime: NaN, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /options\.keepalivetime/],
    ['Infinity', { keepalivetime: 1000, keepaliveinterval: Infinity }, 'ERR_OUT_OF_RANGE', /options\.keepaliveinterval/],
    ['-Infinity', { keepalivetime: -Infinity, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /options\.keepalivetime/],
    ['zero time', { keepalivetime: 0, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /options\.keepalivetime/],
    ['negative interval', { keepalivetime: 1000, keepaliveinterval: -1 }, 'ERR_OUT_OF_RANGE', /options\.keepaliveinterval/],
    ['fractional ms', { keepalivetime: 1000.5, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /integer/],
    ['fractional count', { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 2.5 }, 'ERR_OUT_OF_RANGE', /options\.keepalivecount/],
    ['zero count', { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 0 }, 'ERR_OUT_OF_RANGE', /options\.keepalivecount/],
    ['negative usertimeout', { keepalivetime: 1000, keepaliveinterval: 1000, usertimeout: -5 }, 'ERR_OUT_OF_RANGE', /options\.usertimeout/],
  ];
  if (process.platform === 'linux') {
    cases.push(
      ['idle above 32767 s', { keepalivetime: 32767001, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /32767 s on linux/],
      ['interval above 32767 s', { keepalivetime: 1000, keepaliveinterval: 40000000 }, 'ERR_OUT_OF_RANGE', /options\.keepaliveinterval.*32767/],
      ['count above 127', { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 128 }, 'ERR_OUT_OF_RANGE', /options\.keepalivecount.*<= 127/],
    );
  }

  it.each(cases)('%s', async (_name, bad, code, message) => {
    const { client } = await connectedPair();
    applyKeepalive(client, options);
    const before = observerUnavailable ? undefined : kernelOptions(client);
    let thrown: (Error & { code?: string }) | undefined;
    try {
      applyKeepalive(client, bad as KeepaliveOptions);
    } catch (error) {
      thrown = error as Error & { code?: string };
    }
    expect(thrown).toBeDefined();
    expect(thrown!.code).toBe(code);
    expect(thrown).toBeInstanceOf(code === 'ERR_OUT_OF_RANGE' ? RangeError : TypeError);
    expect(thrown!.message).toMatch(message);
    if (before) expect(kernelOptions(client)).toEqual(before);
  });

  it.each([
    ['a plain object', {}],
    ['null', null],
    ['a string', '127.0.0.1:80'],
    ['a number (a descriptor)', 3],
    ['a Duplex stream', new Duplex()],
  ])('a target that is %s', (_name, target) => {
    expect(() => applyKeepalive(target as net.Socket, options)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }));
    expect(() => getKeepalive(target as net.Socket)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('a rejected server call installs nothing', async () => {
    const server = track(net.createServer());
    expect(() => applyKeepalive(server, { keepalivetime: 0, keepaliveinterval: 1 })).toThrow(RangeError);
    expect(server.listenerCount('connection')).toBe(0);
    expect(server.listenerCount('listening')).toBe(0);
  });

  it('a destroyed socket: ERR_SOCKET_CLOSED', async () => {
    const { client } = await connectedPair();
    client.destroy();
    expect(() => applyKeepalive(client, options)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
    expect(() => getKeepalive(client)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });

  it('a Unix-domain socket and server: ERR_KEEPALIVE_NOT_TCP', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tcp-keepalive-')), 'ipc.sock');
    const server = track(net.createServer((s) => track(s)));
    server.listen(path);
    await once(server, 'listening');
    expect(() => applyKeepalive(server, options)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_TCP' }));
    expect(() => getKeepalive(server)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_TCP' }));
    const client = track(net.connect(path));
    expect(() => applyKeepalive(client, options)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_TCP' }));
    await once(client, 'connect');
    expect(() => applyKeepalive(client, options)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_TCP' }));
    expect(() => getKeepalive(client)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_TCP' }));
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
});

describe.skipIf(observerUnavailable)('worker threads (context-aware addon)', () => {
  it('applies and reads back inside several workers and the main thread at once', async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, options);
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
    expect(kernelOptions(client)).toEqual(inKernel);
  });
});
