import { ChildProcess, execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { applyKeepalive, getKeepalive, KeepaliveOptions } from '../dist/index.js';
import { KernelOptions, kernelOptions, kernelOptionsOf, mustRunInCi, observerUnavailable } from './support/kernel';
import { closeAll, listening, tlsCert, tlsKey, track } from './support/net';
import { OPTIONS } from './support/contract.js';

/**
 * Every connection a server emits after applyKeepalive returned carries the settings, whatever its timing or
 * topology, seen from outside by the kernel observer on each accepted connection.
 */

afterEach(closeAll);

const linux = process.platform === 'linux';
const unavailable = linux ? observerUnavailable : 'Linux-only (the pidfd observer)';
mustRunInCi('the server topology suite', unavailable);

const options: KeepaliveOptions = OPTIONS;
const inKernel: KernelOptions = { so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 1, tcp_keepcnt: 3, tcp_user_timeout: 6000 };
const other: KeepaliveOptions = { keepalivetime: 11000, keepaliveinterval: 4000, keepalivecount: 6, usertimeout: 9000 };
const otherInKernel: KernelOptions = { so_keepalive: 1, tcp_keepidle: 11, tcp_keepintvl: 4, tcp_keepcnt: 6, tcp_user_timeout: 9000 };

/** Kernel options of the next `count` connections the server emits, read in its first `connection` listener. */
function nextConnections(server: net.Server, count: number, event = 'connection'): Promise<KernelOptions[]> {
  const seen: KernelOptions[] = [];
  return new Promise((resolve) => {
    const listener = (socket: net.Socket): void => {
      track(socket).on('error', () => {});
      seen.push(kernelOptions(socket));
      if (seen.length === count) {
        server.off(event, listener);
        resolve(seen);
      }
    };
    server.prependListener(event, listener);
  });
}

function connect(port: number): net.Socket {
  return track(net.connect(port, '127.0.0.1')).on('error', () => {});
}

/**
 * Completes `count` handshakes to the port from another process while this one is blocked, so they wait in
 * the listening socket's accept queue; that process then exits (its connections stay queued here).
 */
function queueHandshakes(port: number, count: number): void {
  const script = `
    const net = require('node:net');
    let left = ${count};
    for (let i = 0; i < ${count}; i++) net.connect(${port}, '127.0.0.1', () => { if (--left === 0) process.exit(0); }).on('error', (e) => { console.error(e); process.exit(1); });`;
  execFileSync(process.execPath, ['-e', script], { stdio: 'inherit', timeout: 10_000 });
}

describe.skipIf(unavailable)('servers over time', () => {
  it('closed and listening again: the new listening socket and its connections get the settings', async () => {
    const server = net.createServer();
    applyKeepalive(server, options);
    for (let round = 0; round < 3; round++) {
      const port = await listening(server);
      const seen = nextConnections(server, 2);
      connect(port);
      connect(port);
      expect(await seen).toEqual([inKernel, inKernel]);
      expect(kernelOptions(server)).toEqual(inKernel);
      server.close();
      await closeAll();
      await once(server, 'close');
    }
  });

  it('applied while listening, then closed and listening again with new settings', async () => {
    const server = net.createServer();
    await listening(server);
    applyKeepalive(server, options);
    server.close();
    await once(server, 'close');
    applyKeepalive(server, other);
    const port = await listening(server);
    const seen = nextConnections(server, 1);
    connect(port);
    expect(await seen).toEqual([otherInKernel]);
  });

  it('handshakes queued before applyKeepalive ran on a listening server', async () => {
    const server = net.createServer();
    const port = await listening(server);
    const seen = nextConnections(server, 6);
    queueHandshakes(port, 5);
    applyKeepalive(server, options);
    connect(port);
    expect(await seen).toEqual(Array(6).fill(inKernel));
  });

  it('handshakes queued under old settings when new ones are applied', async () => {
    const server = net.createServer();
    const port = await listening(server);
    applyKeepalive(server, options);
    const seen = nextConnections(server, 5);
    queueHandshakes(port, 4);
    applyKeepalive(server, other);
    connect(port);
    expect(await seen).toEqual(Array(5).fill(otherInKernel));
  });

  it('handshakes queued under several earlier settings, the oldest equal to the new ones (A, then B, then A again)', async () => {
    const server = net.createServer();
    const port = await listening(server);
    const seen = nextConnections(server, 9);
    queueHandshakes(port, 2); // the listener's own defaults
    applyKeepalive(server, options);
    queueHandshakes(port, 3); // A
    applyKeepalive(server, other);
    queueHandshakes(port, 3); // B
    applyKeepalive(server, options);
    connect(port);
    expect(await seen).toEqual(Array(9).fill(inKernel));
  });

  it('the first tick after listen(): handshakes completed before our listening hook ran', async () => {
    const server = net.createServer();
    applyKeepalive(server, options);
    const seen = nextConnections(server, 4);
    // Runs before ours: the socket listens, our hook has not configured it yet.
    server.prependListener('listening', () => queueHandshakes((server.address() as net.AddressInfo).port, 3));
    const port = await listening(server);
    connect(port);
    expect(await seen).toEqual(Array(4).fill(inKernel));
  });

  it('applied in the same tick as listen()', async () => {
    const server = track(net.createServer());
    server.listen(0, '127.0.0.1');
    applyKeepalive(server, options);
    await once(server, 'listening');
    const seen = nextConnections(server, 1);
    connect((server.address() as net.AddressInfo).port);
    expect(await seen).toEqual([inKernel]);
  });
});

describe.skipIf(unavailable)('connection listeners of any order', () => {
  it('a listener added before ours sees our settings, and its setKeepAlive(true, n) does not undo them', async () => {
    const server = net.createServer();
    applyKeepalive(server, options);
    const inside = new Promise<KernelOptions[]>((resolve) =>
      server.prependListener('connection', (socket: net.Socket) => {
        track(socket);
        const first = kernelOptions(socket);
        socket.setKeepAlive(true, 60000);
        resolve([first, kernelOptions(socket)]);
      }),
    );
    const after = new Promise<KernelOptions>((resolve) => server.on('connection', (socket: net.Socket) => resolve(kernelOptions(socket))));
    connect(await listening(server));
    expect(await inside).toEqual([inKernel, inKernel]);
    expect(await after).toEqual(inKernel);
  });

  it('a listener before ours that applies its own settings to the socket: they win', async () => {
    const server = net.createServer();
    applyKeepalive(server, options);
    server.prependListener('connection', (socket: net.Socket) => applyKeepalive(track(socket), other));
    const after = new Promise<KernelOptions>((resolve) => server.on('connection', (socket: net.Socket) => resolve(kernelOptions(socket))));
    connect(await listening(server));
    expect(await after).toEqual(otherInKernel);
  });

  it('a listener before ours that calls setKeepAlive(false): keepalive stays off, ours come back with setKeepAlive(true)', async () => {
    const server = net.createServer();
    applyKeepalive(server, options);
    server.prependListener('connection', (socket: net.Socket) => track(socket).setKeepAlive(false));
    const accepted = new Promise<net.Socket>((resolve) => server.on('connection', resolve));
    connect(await listening(server));
    const socket = await accepted;
    expect(kernelOptions(socket).so_keepalive).toBe(0);
    socket.setKeepAlive(true, 60000);
    expect(kernelOptions(socket)).toEqual(inKernel);
  });

  it("with Node's own keepAlive server option", async () => {
    const server = net.createServer({ keepAlive: true, keepAliveInitialDelay: 60000 });
    applyKeepalive(server, options);
    server.prependListener('connection', (socket: net.Socket) => track(socket).setKeepAlive(true, 70000));
    const seen = nextConnections(server, 2);
    const port = await listening(server);
    connect(port);
    connect(port);
    expect(await seen).toEqual([inKernel, inKernel]);
  });

  it('a connection emitted by other code (a socket another server accepted)', async () => {
    const front = net.createServer({ pauseOnConnect: true });
    const back = net.createServer();
    applyKeepalive(back, options);
    front.on('connection', (socket: net.Socket) => back.emit('connection', track(socket)));
    const seen = nextConnections(back, 1);
    connect(await listening(front));
    expect(await seen).toEqual([inKernel]);
  });
});

describe.skipIf(unavailable)('http2 servers', () => {
  it.each([
    ['http2.createServer', () => http2.createServer()],
    ['http2.createSecureServer', () => http2.createSecureServer({ key: tlsKey, cert: tlsCert })],
  ])('%s: every connection, and getKeepalive on the server side session.socket', async (name, create) => {
    const server = create();
    applyKeepalive(server, options);
    const sessions: http2.ServerHttp2Session[] = [];
    server.on('session', (session) => {
      sessions.push(session);
      session.on('error', () => {});
    });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const seen = nextConnections(server, 1);
    const port = await listening(server);
    const client = http2.connect(`${name.includes('Secure') ? 'https' : 'http'}://127.0.0.1:${port}`, { rejectUnauthorized: false });
    client.on('error', () => {});
    try {
      const req = client.request({ ':path': '/' });
      req.resume();
      await once(req, 'end');
      expect(await seen).toEqual([inKernel]);
      expect(kernelOptions(sessions[0].socket)).toEqual(inKernel);
      expect(getKeepalive(sessions[0].socket)).toMatchObject({ onoff: true, keepalivetime: 3000, keepalivecount: 3 });
    } finally {
      client.destroy();
      for (const session of sessions) session.destroy();
    }
  });
});

describe.skipIf(unavailable)('a server that turns out to listen on a Unix path', () => {
  it('keeps working: warns once with a code, never closes the server nor destroys its connections', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tcp-keepalive-')), 'server.sock');
    const warnings: Array<{ code?: string }> = [];
    const onWarning = (warning: Error & { code?: string }): void => {
      if (warning.code === 'TCP_KEEPALIVE_NOT_TCP') warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const server = track(net.createServer((socket) => track(socket).pipe(socket)));
      const errors: Error[] = [];
      server.on('error', (error) => errors.push(error));
      applyKeepalive(server, options);
      server.listen(path);
      await once(server, 'listening');
      for (let i = 0; i < 3; i++) {
        const client = track(net.connect(path));
        client.write('ping');
        const [data] = await once(client, 'data');
        expect(String(data)).toBe('ping');
        expect(client.destroyed).toBe(false);
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(server.listening).toBe(true);
      expect(errors).toEqual([]);
      expect(warnings).toHaveLength(1);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

interface WorkerReport {
  worker: number;
  pid?: number;
  fd?: number;
  destroyed?: boolean;
  warning?: { code: string };
  socketError?: string;
  serverError?: string;
  serverRead?: string;
}

/** Starts test/support/cluster-server.js; returns its reports and a way to end it. */
async function startCluster(policy: 'rr' | 'none', listen: string, settings: Array<KeepaliveOptions | null>): Promise<{ child: ChildProcess; reports: WorkerReport[]; next(): Promise<WorkerReport> }> {
  const child = fork(join(__dirname, 'support', 'cluster-server.js'), [], {
    env: { ...process.env, DIST: join(__dirname, '..', 'dist', 'index.js'), SETTINGS: JSON.stringify(settings), POLICY: policy, LISTEN: listen },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const reports: WorkerReport[] = [];
  const waiters: Array<(report: WorkerReport) => void> = [];
  let ready!: () => void;
  const readyP = new Promise<void>((resolve) => (ready = resolve));
  child.on('message', (message: WorkerReport & { ready?: boolean }) => {
    if (message.ready) return ready();
    reports.push(message);
    if (message.fd !== undefined) waiters.shift()?.(message);
  });
  await readyP;
  return { child, reports, next: () => new Promise((resolve) => waiters.push(resolve)) };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await listening(server);
  server.close();
  await once(server, 'close');
  return port;
}

describe.skipIf(unavailable)('cluster workers, each with its own settings', () => {
  const defaults = async (): Promise<KernelOptions> => {
    const server = net.createServer();
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    connect(await listening(server));
    return kernelOptions(track(await accepted));
  };

  it.each([
    ['round-robin (the primary accepts and passes each connection)', 'rr'],
    ['SCHED_NONE (all workers share one listening socket)', 'none'],
  ] as const)('%s', async (_name, policy) => {
    const base = await defaults();
    const port = await freePort();
    const cluster = await startCluster(policy, String(port), [options, other, null]);
    const want = [inKernel, otherInKernel, base];
    try {
      const seen = new Set<number>();
      const clients: net.Socket[] = [];
      for (let i = 0; i < 200 && seen.size < 3; i++) {
        const report = cluster.next();
        clients.push(connect(port));
        const { worker, pid, fd } = await report;
        seen.add(worker);
        expect({ worker, kernel: kernelOptionsOf(pid!, fd!) }).toEqual({ worker, kernel: want[worker] });
      }
      if (policy === 'rr') expect(seen.size).toBe(3);
      expect(seen.size).toBeGreaterThanOrEqual(2);
      // getKeepalive(server) in a worker: round-robin has no listening socket there (a typed error, not a
      // search by address); SCHED_NONE reads the shared one, which no worker's apply changed.
      const reads = cluster.reports.filter((r) => r.serverRead !== undefined).map((r) => r.serverRead);
      expect(reads).toEqual(Array(3).fill(policy === 'rr' ? 'ERR_KEEPALIVE_UNSUPPORTED' : 'onoff:false'));
      expect(cluster.reports.filter((r) => r.socketError || r.serverError || r.destroyed)).toEqual([]);
    } finally {
      cluster.child.send('exit');
      await once(cluster.child, 'exit');
    }
  });

  it('round-robin on a Unix path: workers warn once each, keep every connection and answer', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tcp-keepalive-')), 'cluster.sock');
    const cluster = await startCluster('rr', path, [options, other]);
    try {
      for (let i = 0; i < 6; i++) {
        const client = track(net.connect(path));
        client.write(`ping${i}`);
        const [data] = await once(client, 'data');
        expect(String(data)).toBe(`ping${i}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      const warnings = cluster.reports.filter((r) => r.warning);
      expect(warnings.every((r) => r.warning!.code === 'TCP_KEEPALIVE_NOT_TCP')).toBe(true);
      for (const worker of [0, 1]) expect(warnings.filter((r) => r.worker === worker).length).toBeLessThanOrEqual(1);
      expect(warnings.length).toBeGreaterThanOrEqual(1);
      expect(cluster.reports.filter((r) => r.socketError || r.serverError || r.destroyed)).toEqual([]);
    } finally {
      cluster.child.send('exit');
      await once(cluster.child, 'exit');
    }
  });
});

describe.skipIf(unavailable)('TLS servers', () => {
  it('tls.Server: handshakes queued before the apply get the settings too', async () => {
    const server = tls.createServer({ key: tlsKey, cert: tlsCert });
    server.on('tlsClientError', () => {});
    const port = await listening(server);
    const seen = nextConnections(server, 3);
    queueHandshakes(port, 3);
    applyKeepalive(server, options);
    expect(await seen).toEqual(Array(3).fill(inKernel));
  });
});

describe.skipIf(unavailable)('a listening socket shared with another process (sent over IPC)', () => {
  it("the child's applyKeepalive sets its own connections only, never the shared listener", async () => {
    const server = net.createServer();
    const port = await listening(server);
    const script = `
      const { applyKeepalive } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))});
      const open = [];
      process.on('message', (message, server) => {
        if (message !== 'server') return;
        applyKeepalive(server, ${JSON.stringify(options)});
        server.on('connection', (socket) => {
          open.push(socket);
          socket.on('error', () => {});
          process.send({ pid: process.pid, fd: socket._handle.fd });
        });
        process.send({ ready: true });
      });
      process.on('disconnect', () => process.exit(0));`;
    const child = fork('-e', [script], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('error', () => {});
    try {
      const reports: Array<{ pid: number; fd: number }> = [];
      const ours: KernelOptions[] = [];
      let changed: () => void = () => {};
      const nextChange = (): Promise<void> => new Promise((resolve) => (changed = resolve));
      child.on('message', (message: { ready?: boolean; pid?: number; fd?: number }) => {
        if (message.pid !== undefined) reports.push(message as { pid: number; fd: number });
        changed();
      });
      const ready = nextChange();
      child.send('server', server);
      await ready;
      const base = { ...inKernel, so_keepalive: 0 } as KernelOptions;
      server.on('connection', (socket: net.Socket) => {
        ours.push(kernelOptions(track(socket)));
        changed();
      });
      for (let i = 0; i < 200 && (ours.length === 0 || reports.length === 0); i++) {
        const change = nextChange();
        connect(port);
        await change;
      }
      expect(reports.length).toBeGreaterThan(0);
      expect(ours.length).toBeGreaterThan(0);
      for (const { pid, fd } of reports) expect(kernelOptionsOf(pid, fd)).toEqual(inKernel);
      for (const seen of ours) expect(seen.so_keepalive).toBe(base.so_keepalive);
      expect(kernelOptions(server).so_keepalive).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
});

describe.skipIf(unavailable)('a call that throws has changed nothing', () => {
  it('a server already listening on a Unix path: ERR_KEEPALIVE_NOT_TCP, no hook installed, it keeps working', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tcp-keepalive-')), 'server.sock');
    const server = track(net.createServer((socket) => track(socket).pipe(socket)));
    server.listen(path);
    await once(server, 'listening');
    const emit = server.emit;
    expect(() => applyKeepalive(server, options)).toThrow(expect.objectContaining({ code: 'ERR_KEEPALIVE_NOT_TCP' }));
    expect(server.emit).toBe(emit);
    const client = track(net.connect(path));
    client.write('ping');
    const [data] = await once(client, 'data');
    expect(String(data)).toBe('ping');
  });
});
