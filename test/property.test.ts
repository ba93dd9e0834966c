import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyKeepalive, KeepaliveOptions } from '../dist/index.js';
import { KernelOptions, kernelOptions, mustRunInCi, observerUnavailable } from './support/kernel';
import { closeAll, connectedPair, Pair } from './support/net';

const linux = process.platform === 'linux';

/** An oracle written apart from lib/: what the kernel must hold after `options`, or the error code. */
function expected(options: Record<string, unknown>, before: KernelOptions): { code: string } | { kernel: KernelOptions } {
  const known = ['onoff', 'keepalivetime', 'keepaliveinterval', 'keepalivecount', 'usertimeout'];
  if (Object.keys(options).some((key) => !known.includes(key))) return { code: 'ERR_INVALID_ARG_VALUE' };
  const { onoff } = options;
  if (!(onoff === undefined || onoff === true || onoff === false || onoff === 0 || onoff === 1)) return { code: 'ERR_INVALID_ARG_TYPE' };
  if (onoff === false || onoff === 0) return { kernel: { ...before, so_keepalive: 0 } };
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
      tcp_keepcnt: options.keepalivecount === undefined ? before.tcp_keepcnt : (options.keepalivecount as number),
      tcp_user_timeout: options.usertimeout === undefined ? before.tcp_user_timeout : (options.usertimeout as number),
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
  beforeAll(async () => {
    pair = await connectedPair();
  });
  afterAll(closeAll);

  it('holds for 400 random option objects (and random non-objects)', () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 9, arbitrary: optionObject }, { weight: 1, arbitrary: anyValue }), (options) => {
        const before = kernelOptions(pair.client);
        const want = typeof options === 'object' && options !== null && !Array.isArray(options)
          ? expected(options as Record<string, unknown>, before)
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
