import { conflictingOptions, invalidArgType, keepaliveError, outOfRange } from './errors';

/**
 * `deadAfter` (ms): "report a vanished peer within this long, idle or with data in flight", mapped to the four
 * fields. A pure function of the value and the platform's limits; docs/deadafter-and-register.md explains why.
 *
 * In whole seconds on every platform (Linux and macOS take seconds, Windows' TCP_MAXRT too), D = ⌊deadAfter⌋ s:
 *   half              = clamp(⌊D / 2⌋, 1, 120)            provisional idle time
 *   keepaliveinterval = clamp(⌊(D − half) / 5⌋, 1, 30)   about five probes in the other half
 *   keepalivecount    = as many probes as fit in D − half (at most the platform's limit; Windows before 1703: 10)
 *   keepalivetime     = min(D − interval × count, 120)    the rest of D, but probing after 2 min idle at most
 *   usertimeout       = keepalivetime + interval × count  (≤ D; Linux: 0.5 s less, IN_FLIGHT_EARLY_MS)
 * Idle: the last of `count` probes goes unanswered at keepalivetime + interval × count. Linux: once
 * TCP_USER_TIMEOUT is set it also ends an idle connection, at the first probe tick at least usertimeout after
 * the last ack; that is still the last probe's tick, so both rules agree. In flight: usertimeout after the write.
 */

const SECOND = 1000;
/** Idle time never above 2 min: below the NAT and load-balancer idle limits (Azure 4 min, Cloudflare 270 s, AWS NLB 350 s). */
export const MAX_IDLE_S = 120;
/** Probes no further apart than 30 s, so one lost probe still leaves the NAT state refreshed in time. */
export const MAX_INTERVAL_S = 30;
/** Probes no closer than 1 s: an answer on a slow path must not count as lost. */
export const MIN_INTERVAL_S = 1;
/** Probes aimed for in the second half of the budget, when it allows. */
const TARGET_PROBES = 5;

/** Where `keepalivecount` cannot be set, the count the system uses on its own (Windows before 10 1703: 10). */
const FIXED_COUNT: Readonly<Record<string, number>> = { win32: 10 };

/** What the mapping needs to know of a platform. */
/** The platform limits the mapping needs (options.ts's Limits has them). */
export interface DeadAfterLimits {
  usertimeoutUnit: number;
  keepalivetime: number;
  keepaliveinterval: number;
  keepalivecount: number | undefined;
  usertimeout: number | undefined;
}

/**
 * Where usertimeout is taken in ms (Linux), it is set this much below the idle bound: Linux reports data in
 * flight 0.4-0.7 s after usertimeout (measured here: it counts from the last retransmission before its first
 * retransmission timeout), and 0.5 s earlier still leaves the idle rule on the last probe's tick.
 */
export const IN_FLIGHT_EARLY_MS = 500;

export interface DeadAfterSettings {
  keepalivetime: number;
  keepaliveinterval: number;
  keepalivecount: number;
  usertimeout: number;
}

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value));

function fixedCount(limits: DeadAfterLimits, platformName: string): number | undefined {
  return limits.keepalivecount === undefined ? FIXED_COUNT[platformName] : undefined;
}

/** The smallest `deadAfter` the platform honours, in ms; undefined where it cannot bound data in flight. */
export function minimumDeadAfter(limits: DeadAfterLimits, platformName: string): number | undefined {
  if (limits.usertimeout === undefined) return undefined;
  if (limits.keepalivecount === undefined) {
    const fixed = FIXED_COUNT[platformName];
    return fixed === undefined ? undefined : (1 + fixed * MIN_INTERVAL_S) * SECOND;
  }
  return (1 + MIN_INTERVAL_S) * SECOND;
}

/** The four fields for `deadAfter` ms on a platform with these limits; throws the errors `validate()` throws. */
export function mapDeadAfter(deadAfter: unknown, limits: DeadAfterLimits, platformName: string): DeadAfterSettings {
  if (typeof deadAfter !== 'number') throw invalidArgType('options.deadAfter', 'of type number', deadAfter);
  const min = minimumDeadAfter(limits, platformName);
  if (min === undefined) {
    const missing = limits.usertimeout === undefined ? 'no bound for unacknowledged data (usertimeout)' : 'no settable probe count';
    throw keepaliveError('ERR_KEEPALIVE_UNSUPPORTED', `options.deadAfter cannot be honoured on ${platformName}, which has ${missing}: set keepalivetime, keepaliveinterval and keepalivecount instead`);
  }
  const max = Math.min(2 ** 31 - 1, limits.usertimeout ?? Infinity);
  if (!Number.isInteger(deadAfter) || deadAfter < min || deadAfter > max) {
    throw outOfRange('options.deadAfter', `an integer >= ${min} and <= ${max} (ms; ${min} is the smallest ${platformName} honours: 1 s idle, then ${min / SECOND - 1} probe(s) 1 s apart)`, deadAfter);
  }
  const budget = Math.floor(deadAfter / SECOND);
  const fixed = fixedCount(limits, platformName);
  const half = clamp(Math.floor(budget / 2), 1, MAX_IDLE_S);
  const interval = clamp(Math.floor((budget - half) / (fixed ?? TARGET_PROBES)), MIN_INTERVAL_S, MAX_INTERVAL_S);
  const countLimit = limits.keepalivecount ?? fixed!;
  const count = fixed ?? clamp(Math.floor((budget - half) / interval), 1, countLimit);
  const idle = Math.min(budget - interval * count, MAX_IDLE_S, Math.floor(limits.keepalivetime / SECOND));
  return {
    keepalivetime: idle * SECOND,
    keepaliveinterval: interval * SECOND,
    keepalivecount: count,
    usertimeout: (idle + interval * count) * SECOND - (limits.usertimeoutUnit < SECOND ? IN_FLIGHT_EARLY_MS : 0),
  };
}

/** Names of the fields `deadAfter` sets: giving one of them too is saying the same thing twice. */
export const DEAD_AFTER_FIELDS = ['keepalivetime', 'keepaliveinterval', 'keepalivecount', 'usertimeout'] as const;

/** `deadAfter` with any of the fields it sets: a TypeError naming both, whatever their values. */
export function refuseDeadAfterWithFields(options: Readonly<Record<string, unknown>>): void {
  const field = DEAD_AFTER_FIELDS.find((name) => options[name] !== undefined);
  if (field === undefined) return;
  throw conflictingOptions(
    'ERR_KEEPALIVE_DEADAFTER_WITH_FIELDS',
    `The options "deadAfter" and "${field}" cannot be given together: deadAfter chooses ${DEAD_AFTER_FIELDS.join(', ')}; give either deadAfter or the fields`,
  );
}
