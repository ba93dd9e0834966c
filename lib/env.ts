import type { KeepaliveFilterSpec } from './filter';
import type { KeepaliveOptions } from './options';

/**
 * The `TCP_KEEPALIVE` environment variable read by `tcp-keepalive/register`. Pure: a string in, a result out.
 *
 *   10s                                     deadAfter (bare numbers are ms; suffixes ms, s, m)
 *   deadAfter=10s                           the same, spelled out
 *   keepalivetime=10s,keepaliveinterval=2s,keepalivecount=3,usertimeout=16s   the fields
 *   off                                     install nothing
 *   ...,ports=5432,6379,side=client         filters, after either form
 * Unset or empty: DEFAULT_TCP_KEEPALIVE.
 */

/**
 * The default for an unset variable: report a vanished peer within 60 s. It ends the 2 h 11 min (idle) and
 * ~15 min (in flight) silences, probes after 30 s idle (as ioredis and node-redis do on their own, far below
 * NAT and load-balancer idle limits of 4 to 6 min), and still rides out what a healthy production network
 * does for tens of seconds (a VM live migration, a route or load-balancer failover, a database failover).
 */
export const DEFAULT_TCP_KEEPALIVE = '60s';

export type KeepaliveEnv =
  | { off: true }
  | { off?: false; options: KeepaliveOptions; filter: KeepaliveFilterSpec | undefined }
  | { error: string };

const DURATION_KEYS = ['deadAfter', 'keepalivetime', 'keepaliveinterval', 'usertimeout'] as const;
const KEYS = [...DURATION_KEYS, 'keepalivecount', 'ports', 'side'] as const;
type Key = (typeof KEYS)[number];

const EXPECTED = `expected a duration (10s, 1500ms, 2m; a bare number is ms), off, or comma-separated ${KEYS.join('=, ')}=`;

const UNIT_MS: Readonly<Record<string, number>> = { '': 1, ms: 1, s: 1000, m: 60_000 };

/** `10s` → 10000; undefined when it is no whole number of ms. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] ?? ''];
  const rounded = Math.round(ms);
  return Math.abs(ms - rounded) < 1e-6 && Number.isSafeInteger(rounded) ? rounded : undefined;
}

const quote = (text: string): string => JSON.stringify(text);

export function parseKeepaliveEnv(value: string | undefined): KeepaliveEnv {
  const text = (value ?? '').trim() || DEFAULT_TCP_KEEPALIVE;
  if (text.toLowerCase() === 'off') return { off: true };
  const options: Record<string, number> = {};
  const filter: { ports?: number[]; side?: 'client' | 'server' } = {};
  const seen = new Set<Key>();
  let previous: Key | undefined;
  const parts = text.split(',').map((part) => part.trim());
  for (const [index, part] of parts.entries()) {
    if (part === '') return { error: `empty part in ${quote(text)}: ${EXPECTED}` };
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (previous === 'ports') {
        const port = Number(part);
        if (!/^\d+$/.test(part) || port < 1 || port > 65535) return { error: `${quote(part)} in ports: expected a port from 1 to 65535` };
        filter.ports!.push(port);
        continue;
      }
      if (index !== 0) return { error: `${quote(part)} has no name: only the first part may be a bare duration (deadAfter); ${EXPECTED}` };
      if (part.toLowerCase() === 'off') return { error: `"off" cannot be combined with other parts: use TCP_KEEPALIVE=off alone` };
      const ms = parseDuration(part);
      if (ms === undefined) return { error: `${quote(part)} is not a duration: ${EXPECTED}` };
      options.deadAfter = ms;
      seen.add('deadAfter');
      previous = 'deadAfter';
      continue;
    }
    const name = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    const key = KEYS.find((k) => k.toLowerCase() === name.toLowerCase());
    if (key === undefined) return { error: `${quote(name)} is not a setting: expected one of ${KEYS.join(', ')}` };
    if (seen.has(key)) return { error: `${key} is given twice` };
    seen.add(key);
    previous = key;
    if (key === 'ports') {
      const port = Number(raw);
      if (!/^\d+$/.test(raw) || port < 1 || port > 65535) return { error: `${quote(raw)} in ports: expected a port from 1 to 65535 (ports=5432,6379)` };
      filter.ports = [port];
    } else if (key === 'side') {
      if (raw !== 'client' && raw !== 'server') return { error: `side=${raw}: expected side=client or side=server` };
      filter.side = raw;
    } else if (key === 'keepalivecount') {
      if (!/^\d+$/.test(raw)) return { error: `keepalivecount=${raw}: expected a whole number of probes (keepalivecount=3)` };
      options.keepalivecount = Number(raw);
    } else {
      const ms = parseDuration(raw);
      if (ms === undefined) return { error: `${key}=${raw}: expected a duration (${key}=10s, 1500ms, 2m; a bare number is ms)` };
      options[key] = ms;
    }
  }
  const fields = DURATION_KEYS.filter((k) => k !== 'deadAfter' && seen.has(k));
  if (seen.has('deadAfter') && (fields.length > 0 || seen.has('keepalivecount'))) {
    return { error: `deadAfter and ${fields[0] ?? 'keepalivecount'} given together: give either a deadAfter (10s) or the fields (keepalivetime=...,keepaliveinterval=...)` };
  }
  if (!seen.has('deadAfter')) {
    const missing = (['keepalivetime', 'keepaliveinterval'] as const).filter((k) => !seen.has(k));
    if (missing.length === 2) return { error: `${quote(text)} sets no keepalive: expected a deadAfter first (10s,ports=5432) or keepalivetime= and keepaliveinterval=` };
    if (missing.length === 1) return { error: `${missing[0]}= is missing: without a deadAfter, keepalivetime= and keepaliveinterval= are both required` };
  }
  return { options, filter: seen.has('ports') || seen.has('side') ? filter : undefined };
}
