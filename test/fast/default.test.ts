import { Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { applyKeepalive, setDefaultKeepalive } from '../../dist/index.js';

/**
 * Fast tier: setDefaultKeepalive as a call (its errors, its arguments, how it chains with other code's hooks).
 * Every connect and accept path it reaches, read from outside the process, is test/default.test.ts.
 */

describe('setDefaultKeepalive: the call itself', () => {

  it('rejects bad options with the same typed errors as applyKeepalive, and installs nothing', () => {
    const cases: Array<[unknown, string]> = [
      [undefined, 'ERR_INVALID_ARG_TYPE'],
      ['fast', 'ERR_INVALID_ARG_TYPE'],
      [{ keepalivetime: 2000 }, 'ERR_INVALID_ARG_TYPE'],
      [{ keepalivetime: 2000, keepaliveinterval: 1000, keepalivecount: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ keepalivetime: -1, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE'],
      [{ keepalivetime: 2000, keepaliveinterval: 1000, keepalive: 3 }, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [options, code] of cases) {
      let fromApply: unknown;
      try {
        applyKeepalive(new Socket(), options as never);
      } catch (error) {
        fromApply = error;
      }
      expect(() => setDefaultKeepalive(options as never), JSON.stringify(options)).toThrow(expect.objectContaining({ code, message: (fromApply as Error).message }));
    }
  });

  it('rejects a config that is not an object, or a filter that is not a function, before anything is installed', () => {
    const options = { keepalivetime: 2000, keepaliveinterval: 1000 };
    expect(() => setDefaultKeepalive(options, 'client' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }));
    expect(() => setDefaultKeepalive(options, { filter: true as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('config.filter') }));
  });

  it('applyKeepalive takes a socket typed as a Duplex (as drivers type it); a Duplex that is not a socket is a typed error', () => {
    const notASocket: Duplex = new PassThrough();
    const asDriversTypeIt: Duplex = new Socket();
    expect(() => applyKeepalive(notASocket, { keepalivetime: 2000, keepaliveinterval: 1000 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }));
    expect(applyKeepalive(asDriversTypeIt, { keepalivetime: 2000, keepaliveinterval: 1000 })).toBe(asDriversTypeIt);
    asDriversTypeIt.destroy();
  });

  it("chains with other code's wrappers and never removes or replaces them: null leaves every hook in place, inert", () => {
    const calls: string[] = [];
    const before = Socket.prototype.connect;
    const theirs = function (this: Socket, ...args: unknown[]) {
      calls.push('theirs');
      return (before as (...a: unknown[]) => Socket).apply(this, args);
    } as typeof Socket.prototype.connect;
    Socket.prototype.connect = theirs; // an APM agent's wrapper, installed after this package loaded
    try {
      setDefaultKeepalive({ keepalivetime: 2000, keepaliveinterval: 1000 });
      expect(Socket.prototype.connect).toBe(theirs);
      setDefaultKeepalive(null);
      expect(Socket.prototype.connect).toBe(theirs);
      const emit = Socket.prototype.emit;
      setDefaultKeepalive({ keepalivetime: 3000, keepaliveinterval: 1000 });
      setDefaultKeepalive(null);
      expect(Socket.prototype.emit, 'installed once, never replaced').toBe(emit);
      new Socket().on('error', () => {}).connect(1, '127.0.0.1').destroy();
      expect(calls).toEqual(['theirs']);
    } finally {
      Socket.prototype.connect = before;
    }
  });
});
