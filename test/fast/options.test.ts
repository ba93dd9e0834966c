import { once } from 'node:events';
import * as net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { applyKeepalive, getKeepalive, limits, setDefaultKeepalive } from '../../dist/index.js';
import type { KeepaliveOptions } from '../../dist/index.js';
import { closeAll, connectedPair, listening, track } from '../support/net';

/**
 * Fast tier: the options check and its messages, the `limits` export, the error codes, how milliseconds map to
 * what this platform's kernel takes, and which options win (own > server's > default). Everything is derived
 * from `limits` and process.platform, so it runs as it is on Linux, macOS and Windows, as any user. What the
 * kernel holds, read from outside the process, is the contract and the root-only suites after this tier.
 */

const platform = process.platform;
const BASE = { keepalivetime: 2000, keepaliveinterval: 1000 };

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('did not throw');
}

const check = (options: unknown) => thrown(() => applyKeepalive(new net.Socket(), options as KeepaliveOptions));

describe('limits: this platform\'s table, frozen', () => {
  it('has every field, as positive numbers (or undefined where the platform cannot set it), and cannot be changed', () => {
    expect(Object.keys(limits).sort()).toEqual(['inheritsFromListener', 'keepalivecount', 'keepaliveinterval', 'keepalivetime', 'locateByAddress', 'unit', 'usertimeout', 'usertimeoutUnit']);
    for (const field of ['unit', 'usertimeoutUnit', 'keepalivetime', 'keepaliveinterval'] as const) expect(limits[field], field).toBeGreaterThan(0);
    for (const field of ['keepalivecount', 'usertimeout'] as const) if (limits[field] !== undefined) expect(limits[field], field).toBeGreaterThan(0);
    expect(Object.isFrozen(limits)).toBe(true);
    expect(() => {
      (limits as { keepalivecount: number | undefined }).keepalivecount = 1;
    }).toThrow(TypeError);
  });

  it.runIf(['linux', 'darwin', 'win32'].includes(platform))(`${platform}: the units and limits of the README's platform table`, () => {
    const expected = {
      linux: { unit: 1000, usertimeoutUnit: 1, keepalivetime: 32_767_000, keepaliveinterval: 32_767_000, keepalivecount: 127, inheritsFromListener: true, locateByAddress: false },
      darwin: { unit: 1000, usertimeoutUnit: 1000, keepalivecount: 2 ** 31 - 1, inheritsFromListener: false, locateByAddress: false },
      win32: { unit: 1, usertimeoutUnit: 1000, keepalivecount: 255, inheritsFromListener: false, locateByAddress: true },
    }[platform as 'linux' | 'darwin' | 'win32'];
    expect(limits).toMatchObject(expected);
  });
});

describe('the options check: a typed error naming the field and this platform\'s limit, before anything is touched', () => {
  it.each([
    [null, 'TypeError', 'ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object. Received null'],
    [[], 'TypeError', 'ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object. Received an instance of Array'],
    [5, 'TypeError', 'ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object. Received type number (5)'],
    [{ onoff: 'yes' }, 'TypeError', 'ERR_INVALID_ARG_TYPE', 'The "options.onoff" argument must be of type boolean (or 0 or 1). Received type string ("yes")'],
    [{ keepalivetime: 1000 }, 'TypeError', 'ERR_INVALID_ARG_TYPE', 'The "options.keepaliveinterval" argument must be of type number (it is required when onoff is on). Received undefined'],
    [{ keepaliveinterval: 1000 }, 'TypeError', 'ERR_INVALID_ARG_TYPE', 'The "options.keepalivetime" argument must be of type number (it is required when onoff is on). Received undefined'],
    [{ ...BASE, keepalivecount: '3' }, 'TypeError', 'ERR_INVALID_ARG_TYPE', 'The "options.keepalivecount" argument must be of type number. Received type string ("3")'],
    [{ ...BASE, keepalive: 3 }, 'TypeError', 'ERR_INVALID_ARG_VALUE', 'The argument "options.keepalive" is not an option; the options are onoff, keepalivetime, keepaliveinterval, keepalivecount, usertimeout, deadAfter'],
  ])('%j: %s %s', (options, name, code, message) => {
    expect(check(options)).toMatchObject({ name, code, message });
  });

  const seconds = limits.unit === 1000;
  const msLimit = (max: number): string =>
    seconds ? `(${Math.floor(max / 1000)} s on ${platform}, where ms are rounded up to whole seconds)` : `(ms on ${platform}, which takes them as they are, not rounded)`;

  it.each([
    ['keepalivetime', 0],
    ['keepalivetime', 1.5],
    ['keepalivetime', -1],
    ['keepalivetime', limits.keepalivetime + 1],
    ['keepaliveinterval', 0],
    ['keepaliveinterval', limits.keepaliveinterval + 1],
  ] as const)(`%s %d: RangeError ERR_OUT_OF_RANGE, >= 1 and <= the limit, in ms and in what ${platform} takes`, (field, value) => {
    const max = limits[field];
    expect(check({ ...BASE, [field]: value })).toMatchObject({
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
      message: `The value of "options.${field}" is out of range. It must be an integer >= 1 and <= ${max} ${msLimit(max)}. Received ${value}`,
    });
  });

  it.runIf(limits.keepalivecount !== undefined)(`keepalivecount 0 and ${(limits.keepalivecount ?? 0) + 1}: out of range, naming ${platform}'s limit of ${limits.keepalivecount} probes`, () => {
    for (const value of [0, limits.keepalivecount! + 1, NaN]) {
      expect(check({ ...BASE, keepalivecount: value })).toMatchObject({
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
        message: `The value of "options.keepalivecount" is out of range. It must be an integer >= 1 and <= ${limits.keepalivecount} on ${platform}. Received ${value}`,
      });
    }
  });

  it(`usertimeout: 0 restores the system default; below 0 is out of range${limits.usertimeout === undefined ? `; ${platform} cannot set it at all` : ''}`, () => {
    if (limits.usertimeout === undefined) {
      expect(check({ ...BASE, usertimeout: 1000 })).toMatchObject({ code: 'ERR_KEEPALIVE_UNSUPPORTED', message: `options.usertimeout cannot be set on ${platform}` });
      return;
    }
    expect(() => applyKeepalive(new net.Socket(), { ...BASE, usertimeout: 0 }).destroy()).not.toThrow();
    const kernel = limits.usertimeoutUnit === 1 ? `(ms on ${platform}, which takes them as they are, not rounded)` : `(${Math.floor(limits.usertimeout / 1000)} s on ${platform}, where ms are rounded up to whole seconds)`;
    expect(check({ ...BASE, usertimeout: -1 })).toMatchObject({
      code: 'ERR_OUT_OF_RANGE',
      message: `The value of "options.usertimeout" is out of range. It must be an integer >= 0 and <= ${limits.usertimeout} ${kernel}. Received -1`,
    });
  });

  it('onoff false (or 0) turns keepalive off and ignores the other fields, whatever they hold; 1 and true are on', () => {
    for (const onoff of [false, 0] as const) expect(() => applyKeepalive(new net.Socket(), { onoff, keepalivetime: 'x' } as unknown as KeepaliveOptions).destroy()).not.toThrow();
    for (const onoff of [true, 1] as const) expect(check({ onoff, keepalivetime: 'x', keepaliveinterval: 1000 })).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('an inherited property is not an option; an own one that is not an option is refused by name', () => {
    const inherited = Object.assign(Object.create({ keepalive: 3 }), BASE) as KeepaliveOptions;
    expect(() => applyKeepalive(new net.Socket(), inherited).destroy()).not.toThrow();
  });
});

describe('the other error codes', () => {
  afterAll(closeAll);

  it('a target that is not a socket or server: TypeError ERR_INVALID_ARG_TYPE naming what it takes', () => {
    for (const target of [{}, null, 'socket']) {
      expect(thrown(() => applyKeepalive(target as unknown as net.Socket, BASE))).toMatchObject({
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
        message: expect.stringMatching(/^The "target" argument must be an instance of net\.Socket, tls\.TLSSocket or net\.Server\. Received /),
      });
    }
  });

  it('getKeepalive on a socket not yet connected: ERR_KEEPALIVE_NOT_CONNECTED; on a destroyed one: ERR_SOCKET_CLOSED', () => {
    expect(thrown(() => getKeepalive(new net.Socket()))).toMatchObject({ code: 'ERR_KEEPALIVE_NOT_CONNECTED' });
    const closed = new net.Socket();
    closed.destroy();
    expect(thrown(() => getKeepalive(closed))).toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
  });

  it('applyKeepalive on a connected socket that was destroyed since: ERR_SOCKET_CLOSED', async () => {
    const { client } = await connectedPair();
    client.destroy();
    expect(thrown(() => applyKeepalive(client, BASE))).toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
  });
});

/** What getKeepalive reads for options given in ms: rounded up to this platform's unit, never to 0. */
const onKernel = (ms: number): number => Math.ceil(ms / limits.unit) * limits.unit;

describe(`milliseconds as ${platform} takes them, read back through getKeepalive on a loopback socket`, () => {
  afterAll(closeAll);

  it.each<[{ keepalivetime: number; keepaliveinterval: number; keepalivecount?: number }]>([
    [{ keepalivetime: 1, keepaliveinterval: 1 }],
    [{ keepalivetime: 1500, keepaliveinterval: 999, keepalivecount: 3 }],
    [{ keepalivetime: 3000, keepaliveinterval: 2001, keepalivecount: 7 }],
  ])(`%j: rounded up to ${limits.unit} ms`, async (options) => {
    const { client } = await connectedPair();
    applyKeepalive(client, options);
    expect(getKeepalive(client)).toMatchObject({
      onoff: true,
      keepalivetime: onKernel(options.keepalivetime),
      keepaliveinterval: onKernel(options.keepaliveinterval),
      ...(options.keepalivecount === undefined ? {} : { keepalivecount: options.keepalivecount }),
    });
  });

  it.runIf(limits.usertimeout !== undefined)(`usertimeout 2500: ${limits.usertimeoutUnit === 1 ? 'taken in ms' : 'rounded up to whole seconds'}`, async () => {
    const { client } = await connectedPair();
    applyKeepalive(client, { ...BASE, usertimeout: 2500 });
    // A field the platform cannot read back is undefined (getKeepalive's contract); Linux always reads it.
    const read = getKeepalive(client).usertimeout;
    if (read !== undefined || platform === 'linux') expect(read).toBe(Math.ceil(2500 / limits.usertimeoutUnit) * limits.usertimeoutUnit);
  });
});

describe('precedence: a socket\'s own options > its server\'s > the default, decided per connect', () => {
  const DEFAULT = { keepalivetime: 4000, keepaliveinterval: 2000, keepalivecount: 4 };
  const SERVER = { keepalivetime: 6000, keepaliveinterval: 3000, keepalivecount: 5 };
  const OWN = { keepalivetime: 8000, keepaliveinterval: 1000, keepalivecount: 3 };
  const seen = (options: typeof DEFAULT) => ({ onoff: true, ...options });

  afterEach(() => setDefaultKeepalive(null));
  afterAll(closeAll);

  it('client sockets get the default, accepted ones their server\'s, and a socket\'s own options beat both', async () => {
    setDefaultKeepalive(DEFAULT);
    const accepted: Array<ReturnType<typeof getKeepalive>> = [];
    const server = applyKeepalive(net.createServer((socket) => accepted.push(getKeepalive(socket))), SERVER);
    const port = await listening(server);

    const plain = track(net.connect(port, '127.0.0.1'));
    await once(plain, 'connect');
    expect(getKeepalive(plain), 'a client: the default').toMatchObject(seen(DEFAULT));

    const own = track(applyKeepalive(new net.Socket(), OWN));
    own.connect(port, '127.0.0.1');
    await once(own, 'connect');
    expect(getKeepalive(own), 'a client with its own options').toMatchObject(seen(OWN));

    while (accepted.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const values of accepted) expect(values, 'accepted: the server\'s, in its connection listener already').toMatchObject(seen(SERVER));
  });

  it('side=server leaves clients alone; null stops the default for the next connect', async () => {
    const server = net.createServer();
    const port = await listening(server);
    setDefaultKeepalive(DEFAULT, { filter: (_socket, { side }) => side === 'server' });
    const filtered = track(net.connect(port, '127.0.0.1'));
    await once(filtered, 'connect');
    expect(getKeepalive(filtered).onoff, 'filtered out: untouched').toBe(false);

    setDefaultKeepalive(DEFAULT);
    const reached = track(net.connect(port, '127.0.0.1'));
    await once(reached, 'connect');
    expect(getKeepalive(reached)).toMatchObject(seen(DEFAULT));

    setDefaultKeepalive(null);
    const after = track(net.connect(port, '127.0.0.1'));
    await once(after, 'connect');
    expect(getKeepalive(after).onoff, 'after null: untouched').toBe(false);
  });
});
