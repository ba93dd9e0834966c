import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import { join } from 'node:path';
import * as readline from 'node:readline';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyKeepalive, KeepaliveOptions } from '../dist/index.js';
import { KernelOptions, kernelOptions, mustRunInCi, observerUnavailable } from './support/kernel';
import { Netns, netnsUnavailable, removeAllNetns } from './support/netns';
import { closeAll, connectedPair, listening, Pair, track } from './support/net';

const linux = process.platform === 'linux';

/** An oracle written apart from lib/: what the kernel must hold after `options`, or the error code. */
function expected(options: Record<string, unknown>, fresh: KernelOptions): { code: string } | { kernel: KernelOptions } {
  const known = ['onoff', 'keepalivetime', 'keepaliveinterval', 'keepalivecount', 'usertimeout'];
  if (Object.keys(options).some((key) => !known.includes(key))) return { code: 'ERR_INVALID_ARG_VALUE' };
  const { onoff } = options;
  if (!(onoff === undefined || onoff === true || onoff === false || onoff === 0 || onoff === 1)) return { code: 'ERR_INVALID_ARG_TYPE' };
  if (onoff === false || onoff === 0) return { kernel: { ...fresh, so_keepalive: 0 } };
  const limits: Array<[string, number, number, boolean]> = [
    ['keepalivetime', 1, 32767000, true],
    ['keepaliveinterval', 1, 32767000, true],
    ['keepalivecount', 1, 127, false],
    ['usertimeout', 0, 2 ** 31 - 1, false],
  ];
  for (const [name, min, max, required] of limits) {
    const value = options[name];
    if (value === undefined && !required) continue;
    if (typeof value !== 'number') return { code: 'ERR_INVALID_ARG_TYPE' };
    if (!Number.isInteger(value) || value < min || value > max) return { code: 'ERR_OUT_OF_RANGE' };
  }
  const seconds = (ms: number): number => Math.ceil(ms / 1000);
  return {
    kernel: {
      so_keepalive: 1,
      tcp_keepidle: seconds(options.keepalivetime as number),
      tcp_keepintvl: seconds(options.keepaliveinterval as number),
      tcp_keepcnt: options.keepalivecount === undefined ? fresh.tcp_keepcnt : (options.keepalivecount as number),
      tcp_user_timeout: options.usertimeout === undefined ? fresh.tcp_user_timeout : (options.usertimeout as number),
    },
  };
}

const anyValue = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.integer({ min: 1, max: 40_000_000 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(NaN, Infinity, -Infinity, 0, -0, 1, 127, 128, 1000, 32767000, 32767001, 2 ** 31 - 1, 2 ** 31, true, false, null),
  fc.string({ maxLength: 6 }),
  fc.bigInt({ min: -5n, max: 5n }),
  fc.constant(undefined),
  fc.object({ maxDepth: 1 }),
);

const optionObject = fc.record(
  {
    onoff: fc.oneof(fc.constantFrom(true, false, 0, 1, undefined), anyValue),
    keepalivetime: anyValue,
    keepaliveinterval: anyValue,
    keepalivecount: anyValue,
    usertimeout: anyValue,
    keepAliveTime: anyValue,
  },
  { requiredKeys: [] },
);

mustRunInCi('the property suite', linux ? observerUnavailable : 'Linux-only oracle');

describe.skipIf(!linux || observerUnavailable)('random options: applied exactly, or a typed error and nothing changed', () => {
  let pair: Pair;
  let fresh: KernelOptions;
  beforeAll(async () => {
    pair = await connectedPair();
    fresh = kernelOptions((await connectedPair()).client);
  });
  afterAll(closeAll);

  it('holds for 400 random option objects (and random non-objects)', { timeout: 180_000 }, () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 9, arbitrary: optionObject }, { weight: 1, arbitrary: anyValue }), (options) => {
        const before = kernelOptions(pair.client);
        const want = typeof options === 'object' && options !== null && !Array.isArray(options)
          ? expected(options as Record<string, unknown>, fresh)
          : { code: 'ERR_INVALID_ARG_TYPE' };
        let code: string | undefined;
        try {
          applyKeepalive(pair.client, options as KeepaliveOptions);
        } catch (error) {
          code = (error as { code?: string }).code;
          expect(error).toBeInstanceOf(Error);
        }
        const after = kernelOptions(pair.client);
        if ('code' in want) {
          expect(code).toBe(want.code);
          expect(after).toEqual(before);
        } else {
          expect(code).toBeUndefined();
          expect(after).toEqual(want.kernel);
        }
      }),
      { numRuns: 400 },
    );
  });
});

/**
 * Targets and timing: random sequences of connect (applied before it connects or not, a setKeepAlive while it
 * connects), apply, setKeepAlive, destroy and reconnect, and server applies with the connections the server
 * accepts, each checked by the observer against a model written apart from lib/: what the kernel must hold,
 * on every socket, including those the operation did not touch.
 */
type Opts = { onoff?: boolean; keepalivetime?: number; keepaliveinterval?: number; keepalivecount?: number; usertimeout?: number };

interface Ours {
  on: boolean;
  kernel: Partial<KernelOptions>;
}

interface Slot {
  socket: net.Socket;
  client: boolean;
  kernel: KernelOptions;
  ours: Ours | undefined;
  /** The last setKeepAlive since our apply. */
  lastCall: boolean | undefined;
  /** Node's own record of the last setKeepAlive it passed on: enable and whole seconds. */
  node: { enable: boolean; delay: number };
  /** The other end, when it is in the list too (a client and the connection the server accepted from it). */
  peer?: Slot;
}

const seconds = (ms: number): number => Math.ceil(ms / 1000);

/** What the kernel holds after applying `opts` (omitted count/usertimeout, and every field when off: a new socket's). */
function applied(opts: Opts, fresh: KernelOptions): { kernel: KernelOptions; ours: Ours } {
  if (opts.onoff === false) {
    const off = { ...fresh, so_keepalive: 0 };
    return { kernel: off, ours: { on: false, kernel: off } };
  }
  const next: KernelOptions = {
    so_keepalive: 1,
    tcp_keepidle: seconds(opts.keepalivetime!),
    tcp_keepintvl: seconds(opts.keepaliveinterval!),
    tcp_keepcnt: opts.keepalivecount ?? fresh.tcp_keepcnt,
    tcp_user_timeout: opts.usertimeout ?? fresh.tcp_user_timeout,
  };
  return { kernel: next, ours: { on: true, kernel: next } };
}

/** libuv's uv_tcp_keepalive as Node calls it: idle in seconds, then 1 s x 10 probes (libuv >= 1.35 on Linux). */
function libuv(kernel: KernelOptions, enable: boolean, delay: number): KernelOptions {
  return enable ? { ...kernel, so_keepalive: 1, tcp_keepidle: delay, tcp_keepintvl: 1, tcp_keepcnt: 10 } : { ...kernel, so_keepalive: 0 };
}

type Op =
  | { t: 'open'; before: Opts | null; whileConnecting: [boolean, number] | null }
  | { t: 'apply'; i: number; opts: Opts }
  | { t: 'setKeepAlive'; i: number; enable: boolean; delay: number }
  | { t: 'reconnect'; i: number }
  | { t: 'serverApply'; opts: Opts };

const validOpts: fc.Arbitrary<Opts> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ onoff: false }) },
  {
    weight: 5,
    arbitrary: fc.record(
      {
        keepalivetime: fc.integer({ min: 1, max: 20_000 }),
        keepaliveinterval: fc.integer({ min: 1, max: 20_000 }),
        keepalivecount: fc.integer({ min: 1, max: 127 }),
        usertimeout: fc.integer({ min: 0, max: 100_000 }),
      },
      { requiredKeys: ['keepalivetime', 'keepaliveinterval'] },
    ),
  },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ t: fc.constant('open' as const), before: fc.option(validOpts), whileConnecting: fc.option(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 90 }))) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('apply' as const), i: fc.nat(), opts: validOpts }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('setKeepAlive' as const), i: fc.nat(), enable: fc.boolean(), delay: fc.integer({ min: 1, max: 90 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('reconnect' as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('serverApply' as const), opts: validOpts }) },
);

describe.skipIf(!linux || observerUnavailable)('random sequences over sockets and a server: the kernel holds what the model says', () => {
  it('holds for 40 random sequences of connect, apply, setKeepAlive, reconnect and server accepts', { timeout: 240_000 }, async () => {
    const probe = await connectedPair();
    const defaults = kernelOptions(probe.client);
    await closeAll();

    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 3, maxLength: 9 }), async (ops) => {
        const server = net.createServer();
        const accepted: net.Socket[] = [];
        const waiting: Array<(socket: net.Socket) => void> = [];
        server.on('connection', (socket: net.Socket) => {
          track(socket).on('error', () => {});
          const waiter = waiting.shift();
          if (waiter) waiter(socket);
          else accepted.push(socket);
        });
        const nextAccepted = (): Promise<net.Socket> => (accepted.length ? Promise.resolve(accepted.shift()!) : new Promise((resolve) => waiting.push(resolve)));
        const port = await listening(server);
        let listener = { ...defaults };
        let serverOurs: Ours | undefined;
        const slots: Slot[] = [];

        const accept = async (client: Slot): Promise<void> => {
          const socket = await nextAccepted();
          const slot: Slot = { socket, client: false, kernel: { ...listener }, ours: serverOurs, lastCall: undefined, node: { enable: false, delay: 0 }, peer: client };
          client.peer = slot;
          slots.push(slot);
        };

        /** Node's afterConnect (its own recorded setKeepAlive), then ours on connect. */
        const connected = (slot: Slot): void => {
          slot.kernel = slot.node.enable ? libuv({ ...defaults }, true, slot.node.delay) : { ...defaults };
          const ours = slot.ours;
          if (!ours) return;
          if (ours.on) slot.kernel = { ...ours.kernel, so_keepalive: slot.lastCall === false ? 0 : 1 };
          else if (slot.lastCall !== true) slot.kernel = { ...ours.kernel };
        };

        const setKeepAlive = (slot: Slot, enable: boolean, delay: number): void => {
          const nodeSkips = slot.node.enable === enable && (!enable || slot.node.delay === delay);
          if (!nodeSkips) slot.node = { enable, delay };
          if (slot.ours) slot.lastCall = enable;
          if (nodeSkips && !slot.ours) return;
          slot.kernel = libuv(slot.kernel, enable, delay);
          if (enable && slot.ours?.on) slot.kernel = { ...slot.kernel, ...slot.ours.kernel };
        };

        const check = (slot: Slot, why: string): void => {
          expect({ why, kernel: kernelOptions(slot.socket) }).toEqual({ why, kernel: slot.kernel });
        };

        try {
          for (const op of ops) {
            const why = JSON.stringify(op);
            if (op.t === 'open') {
              const socket = track(new net.Socket()).on('error', () => {});
              const slot: Slot = { socket, client: true, kernel: { ...defaults }, ours: undefined, lastCall: undefined, node: { enable: false, delay: 0 } };
              if (op.before) {
                applyKeepalive(socket, op.before as KeepaliveOptions);
                slot.ours = applied(op.before, defaults).ours;
              }
              socket.connect(port, '127.0.0.1');
              if (op.whileConnecting) {
                const [enable, delay] = op.whileConnecting;
                socket.setKeepAlive(enable, delay * 1000);
                if (slot.ours) slot.lastCall = enable;
                if (!slot.ours?.on) slot.node = { enable, delay };
              }
              await once(socket, 'connect');
              connected(slot);
              slots.push(slot);
              check(slot, why);
              await accept(slot);
            } else if (op.t === 'apply' || op.t === 'setKeepAlive' || op.t === 'reconnect') {
              if (slots.length === 0) continue;
              const slot = slots[op.i % slots.length];
              if (op.t === 'apply') {
                applyKeepalive(slot.socket, op.opts as KeepaliveOptions);
                const next = applied(op.opts, defaults);
                slot.kernel = next.kernel;
                slot.ours = next.ours;
                slot.lastCall = undefined;
              } else if (op.t === 'setKeepAlive') {
                slot.socket.setKeepAlive(op.enable, op.delay * 1000);
                setKeepAlive(slot, op.enable, op.delay);
              } else {
                if (!slot.client) continue;
                // The old connection's accepted end goes away with it.
                if (slot.peer) {
                  slot.peer.socket.destroy();
                  slots.splice(slots.indexOf(slot.peer), 1);
                }
                slot.socket.destroy();
                await once(slot.socket, 'close');
                slot.socket.connect(port, '127.0.0.1');
                await once(slot.socket, 'connect');
                connected(slot);
                await accept(slot);
              }
              check(slot, why);
            } else {
              applyKeepalive(server, op.opts as KeepaliveOptions);
              const next = applied(op.opts, defaults);
              listener = next.kernel;
              serverOurs = next.ours;
            }
          }
          for (const slot of slots) if (!slot.socket.destroyed) check(slot, 'at the end, every socket');
        } finally {
          await closeAll();
        }
      }),
      { numRuns: 40 },
    );
  });
});

/**
 * Defaults over time, on every path: random sequences (test/support/default-model.js) of defaults A / B / off /
 * filtered / null, explicit applies on sockets and the server, connects, reconnects, bursts, connects pending
 * while the default switches, a driver's setKeepAlive before and after connect and connect listeners removed,
 * under Node 20-26 and Bun. Every live socket of the child, both ends, is read from outside (ss + the pidfd
 * observer) at the end of each sequence and compared with the model the script keeps apart from lib/.
 */
const MODEL_SCRIPT = join(__dirname, 'support', 'default-model.js');
const MODEL_SEQUENCES = 25;
const bunPinned = (JSON.parse(readFileSync(join(__dirname, 'runtimes', 'versions.json'), 'utf8')) as { bun: { version: string } }).bun.version;
const bunBinary = join(__dirname, '..', '.cache', 'runtimes', `bun-${bunPinned}`, 'bun');
const { unsupported: versionsUnavailable, nodeVersions } = createRequire(__filename)(join(__dirname, 'support', 'node-versions.js')) as {
  unsupported: string | undefined;
  nodeVersions(): Array<{ version: string; node: string }>;
};
const modelUnavailable = !linux ? 'Linux-only (namespaces, ss, pidfd observer)' : (netnsUnavailable ?? observerUnavailable ?? versionsUnavailable);
mustRunInCi('the default-model property suite (Node 20-26)', modelUnavailable);
const bunUnavailable = existsSync(bunBinary) ? undefined : `bun ${bunPinned} is not installed (bash .ci/steps/35-runtimes.sh)`;
mustRunInCi(`the default-model property suite under Bun ${bunPinned}`, modelUnavailable ?? bunUnavailable);

type Expected = Record<string, { kernel: Record<string, number | '*'>; what: string }>;

/** Runs the model script under `runtime`; resolves with how many sockets it checked, rejects at the first mismatch. */
function runModel(runtime: string, seed: number): Promise<number> {
  const netns = new Netns();
  const child = spawn('ip', ['netns', 'exec', netns.name, runtime, MODEL_SCRIPT, join(__dirname, '..', 'dist', 'index.js'), String(seed), String(MODEL_SEQUENCES)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let checked = 0;
  const mismatches: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as { ev: string; pid: number; sequence: number; log: string[]; expected: Expected; error?: string };
    if (message.ev === 'failed') stderr += message.error;
    if (message.ev !== 'observe') return;
    const seen = netns.socketsOf(message.pid);
    for (const [key, { kernel, what }] of Object.entries(message.expected)) {
      const held = seen.get(key) as Record<string, number> | undefined;
      const wrong = !held || Object.entries(kernel).some(([field, value]) => value !== '*' && held[field] !== value);
      checked++;
      if (wrong && mismatches.length < 3) {
        mismatches.push(`seed ${seed}, sequence ${message.sequence}, ${what} (${key}): kernel ${JSON.stringify(held)}, model ${JSON.stringify(kernel)}\n  ${message.log.join('\n  ')}`);
      }
    }
    child.stdin!.write('go\n');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      netns.destroy();
      if (mismatches.length > 0) reject(new Error(`the kernel differs from the model:\n${mismatches.join('\n')}`));
      else if (code !== 0) reject(new Error(`default-model.js exited ${code}: ${stderr}`));
      else resolve(checked);
    });
  });
}

describe.skipIf(modelUnavailable)('random sequences of defaults, explicit applies and what drivers do: every socket as the model says', { concurrent: true }, () => {
  afterAll(() => removeAllNetns());
  const runtimes = modelUnavailable ? [] : [...nodeVersions().map(({ version, node }) => ({ name: `Node ${version}`, binary: node, unavailable: undefined })), { name: `Bun ${bunPinned}`, binary: bunBinary, unavailable: bunUnavailable }];
  for (const { name, binary, unavailable } of runtimes) {
    // Where Bun is not installed the Bun case skips and says why (the mustRunInCi above fails it under strict
    // mode) rather than failing a run that was never meant to have Bun.
    it.skipIf(unavailable)(`${name}: ${MODEL_SEQUENCES} sequences, both ends of every connection${unavailable ? ` (cannot run here: ${unavailable})` : ''}`, { timeout: 120_000 }, async () => {
      const seed = Number(process.env.TCP_KEEPALIVE_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const checked = await runModel(binary, seed);
      expect(checked, `sockets checked (seed ${seed})`).toBeGreaterThan(MODEL_SEQUENCES * 3);
    });
  }
});
