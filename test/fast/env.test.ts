import { describe, expect, it } from 'vitest';
import { DEFAULT_TCP_KEEPALIVE, parseDuration, parseKeepaliveEnv } from '../../dist/env.js';
import { filterFrom } from '../../dist/index.js';
import { BAD_TCP_KEEPALIVE as BAD } from '../support/env-cases';

/**
 * Fast tier: TCP_KEEPALIVE (what tcp-keepalive/register reads) as a pure function from a string to options and
 * a filter, or one error line; and filterFrom, the same filter as data. That a bad value stops a real process
 * with exit code 9 and that line is test/register.test.ts.
 */

describe('TCP_KEEPALIVE, parsed', () => {
  it.each([
    ['10s', { deadAfter: 10_000 }, undefined],
    ['  10s  ', { deadAfter: 10_000 }, undefined],
    ['1500', { deadAfter: 1500 }, undefined],
    ['1500ms', { deadAfter: 1500 }, undefined],
    ['1.5s', { deadAfter: 1500 }, undefined],
    ['2m', { deadAfter: 120_000 }, undefined],
    ['deadAfter=10s', { deadAfter: 10_000 }, undefined],
    ['DEADAFTER=10s', { deadAfter: 10_000 }, undefined],
    ['keepalivetime=10s,keepaliveinterval=2s,keepalivecount=3,usertimeout=16s', { keepalivetime: 10_000, keepaliveinterval: 2000, keepalivecount: 3, usertimeout: 16_000 }, undefined],
    ['keepalivetime=10000, keepaliveinterval=2000', { keepalivetime: 10_000, keepaliveinterval: 2000 }, undefined],
    ['usertimeout=0,keepalivetime=1m,keepaliveinterval=5s', { keepalivetime: 60_000, keepaliveinterval: 5000, usertimeout: 0 }, undefined],
    ['10s,ports=5432,6379', { deadAfter: 10_000 }, { ports: [5432, 6379] }],
    ['10s,ports=5432,6379,side=client', { deadAfter: 10_000 }, { ports: [5432, 6379], side: 'client' }],
    ['10s,side=server', { deadAfter: 10_000 }, { side: 'server' }],
    ['side=client,keepalivetime=3s,keepaliveinterval=1s,ports=443', { keepalivetime: 3000, keepaliveinterval: 1000 }, { side: 'client', ports: [443] }],
  ])('%j', (value, options, filter) => {
    expect(parseKeepaliveEnv(value)).toEqual({ options, filter });
  });

  it(`off installs nothing; unset or empty is the default, ${DEFAULT_TCP_KEEPALIVE}`, () => {
    expect(parseKeepaliveEnv('off')).toEqual({ off: true });
    expect(parseKeepaliveEnv('OFF')).toEqual({ off: true });
    expect(DEFAULT_TCP_KEEPALIVE).toBe('60s');
    expect(parseKeepaliveEnv(undefined)).toEqual({ options: { deadAfter: 60_000 }, filter: undefined });
    expect(parseKeepaliveEnv('  ')).toEqual({ options: { deadAfter: 60_000 }, filter: undefined });
  });

  it('durations: whole ms only', () => {
    expect([parseDuration('0'), parseDuration('7'), parseDuration('0.25s'), parseDuration('3m')]).toEqual([0, 7, 250, 180_000]);
    for (const bad of ['', 's', '-1s', '1.5ms', '1.0001s', '10h', '1e3', '10 s', ' 10s', '0x10']) expect(parseDuration(bad), bad).toBeUndefined();
  });
});

describe('a bad TCP_KEEPALIVE: the parser names the bad part and what is expected', () => {
  it.each(BAD)('%j (parser)', (value, mentions) => {
    const parsed = parseKeepaliveEnv(value);
    if ('error' in parsed) expect(parsed.error).toMatch(mentions);
    else expect(mentions.source, 'refused by the options check, not the parser').toMatch(/out of range/);
  });
});

describe('filterFrom: the ports and side filter as data', () => {
  const socket = (localPort: number, remotePort: number) => ({ localPort, remotePort }) as unknown as import('node:net').Socket;
  it('ports: the remote port of a client, the local port of an accepted socket; side', () => {
    const f = filterFrom({ ports: [5432] });
    expect([f(socket(40000, 5432), { side: 'client' }), f(socket(5432, 40000), { side: 'server' }), f(socket(5432, 40000), { side: 'client' }), f(socket(40000, 5432), { side: 'server' })]).toEqual([true, true, false, false]);
    const g = filterFrom({ side: 'server' });
    expect([g(socket(1, 2), { side: 'server' }), g(socket(1, 2), { side: 'client' })]).toEqual([true, false]);
    expect(filterFrom({})(socket(1, 2), { side: 'client' })).toBe(true);
  });
  it('refuses what is not a spec', () => {
    expect(() => filterFrom({ ports: [0] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => filterFrom({ side: 'both' as 'client' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => filterFrom(null as unknown as object)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
