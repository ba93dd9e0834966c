import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { applyKeepalive, getKeepalive, KeepaliveOptions } from '../dist/index.js';
import { fdOf, KernelOptions, kernelOptions, kernelOptionsOf, mustRunInCi, observerUnavailable } from './support/kernel';
import { closeAll, connectedPair, listening, tlsCert, tlsKey, track } from './support/net';
import { hasCommand } from './support/has-command.js';
import { IN_KERNEL, OPTIONS } from './support/contract.js';

/**
 * Sockets over time, seen from outside by the kernel observer: a descriptor number handed out again, a socket
 * reconnected, a driver removing `connect` listeners or calling `setKeepAlive` later, http2's socket proxy.
 */

afterEach(closeAll);

const linux = process.platform === 'linux';
const unavailable = linux ? observerUnavailable : 'Linux-only (the pidfd observer and descriptor numbers)';
mustRunInCi('the socket lifecycle suite', unavailable);

const options: KeepaliveOptions = OPTIONS;
const inKernel: KernelOptions = IN_KERNEL;
const other: KeepaliveOptions = { keepalivetime: 11000, keepaliveinterval: 4000, keepalivecount: 6, usertimeout: 9000 };

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

/** The kernel's defaults for a fresh connection in this network namespace. */
async function defaults(): Promise<KernelOptions> {
  const { client } = await connectedPair();
  return kernelOptions(client);
}

/**
 * Opens listening sockets on 127.0.0.1 until one gets descriptor `fd` (the lowest free number is handed out
 * first). Listening on an IP literal completes on the next tick, before the closed socket's 'close' event.
 */
async function takeDescriptor(fd: number): Promise<net.Server> {
  const servers: net.Server[] = [];
  for (let i = 0; i < 16; i++) servers.push(track(net.createServer()).listen(0, '127.0.0.1'));
  await new Promise((resolve) => process.nextTick(resolve));
  const victim = servers.find((server) => fdOf(server) === fd);
  for (const server of servers) if (server !== victim) server.close();
  if (!victim) throw new Error(`descriptor ${fd} was not handed out again`);
  return victim;
}

describe.skipIf(unavailable)('never the wrong socket: a TLS socket whose TCP socket was destroyed', () => {
  async function tlsOverTcp(): Promise<{ tcp: net.Socket; secure: tls.TLSSocket }> {
    const port = await listening(tls.createServer({ key: tlsKey, cert: tlsCert }, (s) => track(s).on('error', () => {})));
    const tcp = track(net.connect(port, '127.0.0.1'));
    await once(tcp, 'connect');
    const secure = track(tls.connect({ socket: tcp, rejectUnauthorized: false }));
    secure.on('error', () => {});
    await once(secure, 'secureConnect');
    return { tcp, secure };
  }

  it.each([
    ['applied before: apply, get and the sticky setKeepAlive leave the new owner of the number alone', true],
    ['never applied: the same, with nothing cached', false],
  ])('%s', async (_name, appliedBefore) => {
    const { tcp, secure } = await tlsOverTcp();
    if (appliedBefore) applyKeepalive(secure, options);
    const fd = fdOf(tcp);
    tcp.destroy();
    const victim = await takeDescriptor(fd);
    const before = kernelOptions(victim);
    expect(secure.destroyed).toBe(false);
    expect(code(() => applyKeepalive(secure, other))).toBe('ERR_SOCKET_CLOSED');
    expect(code(() => getKeepalive(secure))).toBe('ERR_SOCKET_CLOSED');
    secure.setKeepAlive(true, 60000);
    secure.setKeepAlive(false);
    secure.setKeepAlive(true, 5000);
    expect(kernelOptions(victim)).toEqual(before);
    // A connection the victim accepts inherits nothing of ours either.
    const accepted = new Promise<KernelOptions>((resolve) => victim.once('connection', (s) => resolve(kernelOptions(track(s)))));
    track(net.connect((victim.address() as net.AddressInfo).port, '127.0.0.1')).on('error', () => {});
    expect((await accepted).tcp_keepcnt).toBe(before.tcp_keepcnt);
  });

  it('many sockets reusing numbers: each apply lands on its own socket only', async () => {
    const port = await listening(net.createServer((s) => track(s)));
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 12; i++) {
      const s = track(net.connect(port, '127.0.0.1'));
      await once(s, 'connect');
      sockets.push(s);
    }
    const stale = sockets.filter((_, i) => i % 2 === 0);
    for (const s of stale) applyKeepalive(s, options);
    const handles = stale.map((s) => (s as unknown as { _handle: unknown })._handle);
    for (const s of stale) s.destroy();
    const fresh: net.Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const s = track(net.connect(port, '127.0.0.1'));
      await once(s, 'connect');
      fresh.push(s);
    }
    const before = fresh.map((s) => kernelOptions(s));
    for (const handle of handles) (handle as { setKeepAlive(e: boolean, d: number): number }).setKeepAlive(true, 60);
    for (const s of stale) expect(code(() => applyKeepalive(s, other))).toBe('ERR_SOCKET_CLOSED');
    expect(fresh.map((s) => kernelOptions(s))).toEqual(before);
  });
});

describe.skipIf(unavailable)('a socket reconnected with socket.connect() after destroy()', () => {
  it('gets the settings again on the new connection, before the user connect listeners', async () => {
    const port = await listening(net.createServer((s) => track(s)));
    const client = track(net.connect(port, '127.0.0.1'));
    await once(client, 'connect');
    applyKeepalive(client, options);
    client.destroy();
    await once(client, 'close');
    const seen = new Promise<KernelOptions>((resolve) => client.once('connect', () => resolve(kernelOptions(client))));
    client.connect(port, '127.0.0.1');
    expect(await seen).toEqual(inKernel);
    expect(getKeepalive(client)).toMatchObject({ keepalivetime: 3000, keepalivecount: 3 });
  });

  it('applied while connecting, reconnected twice; an omitted count stays the one of the first connection', async () => {
    const base = await defaults();
    const port = await listening(net.createServer((s) => track(s)));
    const client = track(net.connect(port, '127.0.0.1'));
    applyKeepalive(client, { keepalivetime: 5000, keepaliveinterval: 2000 });
    await once(client, 'connect');
    for (let round = 0; round < 2; round++) {
      client.setKeepAlive(true, 30000);
      expect(kernelOptions(client)).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 5, tcp_keepintvl: 2 });
      client.destroy();
      await once(client, 'close');
      client.connect(port, '127.0.0.1');
      await once(client, 'connect');
      expect(kernelOptions(client)).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 5, tcp_keepintvl: 2 });
    }
  });

  it('a setKeepAlive(false) after our apply still holds after the reconnect', async () => {
    const port = await listening(net.createServer((s) => track(s)));
    const client = track(net.connect(port, '127.0.0.1'));
    await once(client, 'connect');
    applyKeepalive(client, options);
    client.setKeepAlive(false);
    client.destroy();
    await once(client, 'close');
    client.connect(port, '127.0.0.1');
    await once(client, 'connect');
    expect(kernelOptions(client).so_keepalive).toBe(0);
    client.setKeepAlive(true, 60000);
    expect(kernelOptions(client)).toEqual(inKernel);
  });
});

describe.skipIf(unavailable)('a driver that removes the connect listeners', () => {
  it.each([
    ["removeAllListeners('connect')", (s: net.Socket) => s.removeAllListeners('connect')],
    ['removeAllListeners()', (s: net.Socket) => s.removeAllListeners()],
    ['every listener removed one by one', (s: net.Socket) => s.listeners('connect').forEach((l) => s.removeListener('connect', l as () => void))],
  ])('%s before it connects: the settings still land', async (_name, remove) => {
    const port = await listening(net.createServer((s) => track(s)));
    const client = track(net.connect(port, '127.0.0.1'));
    applyKeepalive(client, options);
    remove(client);
    client.on('error', () => {});
    const seen = new Promise<KernelOptions>((resolve) => client.once('connect', () => resolve(kernelOptions(client))));
    expect(await seen).toEqual(inKernel);
  });

});

describe.skipIf(unavailable)('keepalivecount and usertimeout omitted: what a new socket holds, on every path, whatever came before', () => {
  it('a driver\'s later setKeepAlive(true, n) does not turn the count into libuv\'s 10', async () => {
    const base = await defaults();
    expect(base.tcp_keepcnt).not.toBe(10);
    const { client } = await connectedPair();
    applyKeepalive(client, { keepalivetime: 3000, keepaliveinterval: 1000 });
    client.setKeepAlive(true, 60000);
    expect(kernelOptions(client)).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 1 });
  });

  it('not the count and usertimeout of an earlier apply, when the later one omits them', async () => {
    const base = await defaults();
    const { client } = await connectedPair();
    applyKeepalive(client, options);
    applyKeepalive(client, { keepalivetime: 8000, keepaliveinterval: 2000 });
    client.setKeepAlive(true, 60000);
    expect(kernelOptions(client)).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 8, tcp_keepintvl: 2 });
  });

  it('not a count Node set before our apply (libuv\'s 10)', async () => {
    const base = await defaults();
    const { client } = await connectedPair();
    client.setKeepAlive(true, 60000);
    applyKeepalive(client, { keepalivetime: 3000, keepaliveinterval: 1000 });
    client.setKeepAlive(true, 30000);
    expect(kernelOptions(client)).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 1 });
  });

  it('applied while connecting; a setKeepAlive(true, n) before and after connect', async () => {
    const base = await defaults();
    const port = await listening(net.createServer((s) => track(s)));
    const client = track(net.connect(port, '127.0.0.1'));
    applyKeepalive(client, { keepalivetime: 3000, keepaliveinterval: 1000 });
    client.setKeepAlive(true, 90000);
    const seen = new Promise<KernelOptions>((resolve) =>
      client.once('connect', () => {
        client.setKeepAlive(true, 45000);
        resolve(kernelOptions(client));
      }),
    );
    expect(await seen).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 1 });
  });

  it('applied while connecting after a setKeepAlive(true, n): the count in force then (no descriptor yet: the system\'s), not libuv\'s 10', async () => {
    const base = await defaults();
    const port = await listening(net.createServer((s) => track(s)));
    for (const host of ['127.0.0.1', 'localhost']) {
      const client = track(net.connect(port, host));
      client.setKeepAlive(true, 1000); // libuv sets 1 s x 10 probes when it creates the descriptor, at connect
      applyKeepalive(client, { keepalivetime: 5000, keepaliveinterval: 3000 });
      await once(client, 'connect');
      expect(kernelOptions(client), host).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 5, tcp_keepintvl: 3 });
      client.setKeepAlive(true, 7000);
      expect(kernelOptions(client), host).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 5, tcp_keepintvl: 3 });
    }
  });

  it('on the accepted connections of a server', async () => {
    const base = await defaults();
    const server = net.createServer();
    applyKeepalive(server, { keepalivetime: 3000, keepaliveinterval: 1000 });
    const seen = new Promise<KernelOptions>((resolve) =>
      server.once('connection', (s: net.Socket) => {
        track(s).setKeepAlive(true, 60000);
        resolve(kernelOptions(s));
      }),
    );
    const port = await listening(server);
    track(net.connect(port, '127.0.0.1'));
    expect(await seen).toEqual({ ...base, so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 1 });
  });
});

describe.skipIf(unavailable)('http2: session.socket is a proxy that refuses setKeepAlive', () => {
  it('applyKeepalive and getKeepalive on session.socket work on the socket under it', async () => {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    server.on('session', (session) => session.on('error', () => {}));
    const port = await listening(server);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    await once(session, 'connect');
    try {
      const socket = session.socket;
      expect(() => (socket as net.Socket).setKeepAlive(true)).toThrow(expect.objectContaining({ code: 'ERR_HTTP2_NO_SOCKET_MANIPULATION' }));
      expect(applyKeepalive(socket, options)).toBe(socket);
      expect(kernelOptions(socket)).toEqual(inKernel);
      expect(getKeepalive(socket)).toMatchObject({ onoff: true, keepalivetime: 3000, keepalivecount: 3 });
      const req = session.request({ ':path': '/' });
      req.resume();
      await once(req, 'end');
      expect(kernelOptions(socket)).toEqual(inKernel);
      // Once the session is closed its proxy throws ERR_HTTP2_SOCKET_UNBOUND on every access: for us, closed.
      // (Node 22+ closes the socket under a destroyed session a tick later; until then it is still open.)
      session.destroy();
      await once(session, 'close');
      expect(() => getKeepalive(socket)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
      expect(() => applyKeepalive(socket, options)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
    } finally {
      session.destroy();
      server.close();
    }
  });

  it('a client session still connecting', async () => {
    const server = http2.createServer();
    server.on('session', (session) => session.on('error', () => {}));
    const port = await listening(server);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    try {
      applyKeepalive(session.socket, options);
      await once(session, 'connect');
      expect(kernelOptions(session.socket)).toEqual(inKernel);
    } finally {
      session.destroy();
      server.close();
    }
  });
});

describe('errors that tell the truth: units in the range messages', () => {
  it.skipIf(!linux)('usertimeout is in ms on Linux, not rounded; idle time and interval are rounded up to seconds', async () => {
    const messageOf = (opts: KeepaliveOptions): string => {
      try {
        applyKeepalive(new net.Socket(), opts);
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    };
    const usertimeout = messageOf({ keepalivetime: 1000, keepaliveinterval: 1000, usertimeout: -1 });
    expect(usertimeout).toMatch(/options\.usertimeout/);
    expect(usertimeout).toMatch(/ms on linux/);
    expect(usertimeout).not.toMatch(/second/);
    expect(messageOf({ keepalivetime: 0, keepaliveinterval: 1000 })).toMatch(/rounded up to whole seconds/);
    expect(messageOf({ keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 0 })).not.toMatch(/ms|second/);
  });
});

const mptcpUnavailable =
  unavailable ??
  (!existsSync('/proc/sys/net/mptcp/enabled')
    ? 'the kernel has no MPTCP'
    : !hasCommand('mptcpize')
      ? 'needs mptcpize (Debian package mptcpize)'
      : undefined);
mustRunInCi('the MPTCP lifecycle check', mptcpUnavailable);

describe.skipIf(mptcpUnavailable)('MPTCP sockets (under mptcpize) are TCP for this purpose', () => {
  it('a server and a client: applied, sticky with an unreadable usertimeout, usertimeout refused as unsupported', async () => {
    const script = `
      const net = require('node:net');
      const { applyKeepalive, getKeepalive } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))});
      const server = net.createServer();
      applyKeepalive(server, { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 4 });
      server.on('connection', (accepted) => {
        accepted.setKeepAlive(true, 60000);
        server.accepted = accepted;
      });
      server.listen(0, '127.0.0.1', () => {
        const client = net.connect(server.address().port, '127.0.0.1');
        applyKeepalive(client, { keepalivetime: 5000, keepaliveinterval: 2000 });
        client.on('connect', () => setTimeout(() => {
          client.setKeepAlive(true, 60000);
          let code;
          try { applyKeepalive(client, { keepalivetime: 5000, keepaliveinterval: 2000, usertimeout: 3000 }); } catch (error) { code = error.code; }
          client.setKeepAlive(true, 70000);
          console.log(JSON.stringify({ pid: process.pid, client: client._handle.fd, accepted: server.accepted._handle.fd, code, get: getKeepalive(client) }));
          process.stdin.on('data', () => process.exit(0));
        }, 50));
      });`;
    const child = spawn('mptcpize', ['run', process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const report = JSON.parse(String(line)) as { pid: number; client: number; accepted: number; code?: string; get: Record<string, unknown> };
      const client = kernelOptionsOf(report.pid, report.client);
      const accepted = kernelOptionsOf(report.pid, report.accepted);
      expect({ ...client, tcp_user_timeout: undefined }).toEqual({ so_keepalive: 1, tcp_keepidle: 5, tcp_keepintvl: 2, tcp_keepcnt: 9, tcp_user_timeout: undefined });
      expect({ ...accepted, tcp_user_timeout: undefined }).toEqual({ so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 1, tcp_keepcnt: 4, tcp_user_timeout: undefined });
      // Where the kernel cannot take usertimeout on MPTCP, it is refused with a code and reads as undefined.
      if (client.tcp_user_timeout === -1) {
        expect(report.code).toBe('ERR_KEEPALIVE_UNSUPPORTED');
        expect(report.get.usertimeout).toBeUndefined();
      } else {
        expect(report.code).toBeUndefined();
      }
      expect(report.get).toMatchObject({ onoff: true, keepalivetime: 5000, keepaliveinterval: 2000, keepalivecount: 9 });
    } finally {
      child.stdin!.end('done');
      await once(child, 'exit');
    }
  });
});
