import { UNSET } from './binding';
import { invalidArgType, invalidArgValue, keepaliveError, outOfRange } from './errors';
import { mapDeadAfter, refuseDeadAfterWithFields } from './dead-after';

/** What `applyKeepalive` takes. Times are milliseconds, named after Windows' `struct tcp_keepalive`. */
export interface KeepaliveOptions {
  /** `SO_KEEPALIVE`. `false` (or 0) turns keepalive off; the other fields are then ignored. Default `true`. */
  onoff?: boolean | 0 | 1;
  /** Idle time before the first probe, ms. Required when `onoff` is on. */
  keepalivetime?: number;
  /** Time between unanswered probes, ms. Required when `onoff` is on. */
  keepaliveinterval?: number;
  /** Unanswered probes before the connection is dropped. Left as it is when absent. */
  keepalivecount?: number;
  /** How long sent data may stay unacknowledged before the connection is dropped, ms; 0 restores the system default. Left as it is when absent. */
  usertimeout?: number;
  /**
   * Report a vanished peer (`error`, `ETIMEDOUT`) within this many ms, idle or with data in flight: the four
   * fields above are chosen for this platform (docs/deadafter-and-register.md). Not together with them.
   */
  deadAfter?: number;
}

/** What the kernel holds now, in ms. A field the platform cannot read is `undefined`. */
export interface KeepaliveValues {
  onoff: boolean;
  keepalivetime: number | undefined;
  keepaliveinterval: number | undefined;
  keepalivecount: number | undefined;
  usertimeout: number | undefined;
}

export interface Limits {
  /** How many ms one unit of the kernel's idle time and interval is: values are rounded up to it. */
  unit: number;
  /** How many ms one unit of the kernel's usertimeout is (Linux's TCP_USER_TIMEOUT takes ms, the others seconds). */
  usertimeoutUnit: number;
  keepalivetime: number;
  keepaliveinterval: number;
  keepalivecount: number | undefined;
  usertimeout: number | undefined;
  /** Accepted sockets inherit the listening socket's keepalive options. */
  inheritsFromListener: boolean;
  /** The OS socket is found by its addresses, not by `_handle.fd`. */
  locateByAddress: boolean;
}

const INT32_MAX = 2 ** 31 - 1;

const PLATFORMS: Record<string, Limits> = {
  linux: { unit: 1000, usertimeoutUnit: 1, keepalivetime: 32767 * 1000, keepaliveinterval: 32767 * 1000, keepalivecount: 127, usertimeout: INT32_MAX, inheritsFromListener: true, locateByAddress: false },
  android: { unit: 1000, usertimeoutUnit: 1, keepalivetime: 32767 * 1000, keepaliveinterval: 32767 * 1000, keepalivecount: 127, usertimeout: INT32_MAX, inheritsFromListener: true, locateByAddress: false },
  darwin: { unit: 1000, usertimeoutUnit: 1000, keepalivetime: INT32_MAX, keepaliveinterval: INT32_MAX, keepalivecount: INT32_MAX, usertimeout: INT32_MAX, inheritsFromListener: false, locateByAddress: false },
  freebsd: { unit: 1000, usertimeoutUnit: 1000, keepalivetime: INT32_MAX, keepaliveinterval: INT32_MAX, keepalivecount: INT32_MAX, usertimeout: undefined, inheritsFromListener: false, locateByAddress: false },
  win32: { unit: 1, usertimeoutUnit: 1000, keepalivetime: INT32_MAX, keepaliveinterval: INT32_MAX, keepalivecount: 255, usertimeout: INT32_MAX, inheritsFromListener: false, locateByAddress: true },
};

export const platform: Readonly<Limits> = PLATFORMS[process.platform] ?? PLATFORMS.freebsd;

/** How a runtime exposes a connection's OS socket: a descriptor on `_handle.fd` (Node on POSIX), or nothing, so it is found by its addresses. */
export interface Runtime {
  name: 'node' | 'bun' | 'deno';
  /** `_handle.fd` is the descriptor while the handle is open, -1 once closed. */
  descriptors: boolean;
}

const RUNTIMES: Record<Runtime['name'], Runtime> = {
  node: { name: 'node', descriptors: !platform.locateByAddress },
  bun: { name: 'bun', descriptors: false },
  deno: { name: 'deno', descriptors: false },
};

export const runtime: Runtime = RUNTIMES[process.versions.bun !== undefined ? 'bun' : (process.versions as { deno?: string }).deno !== undefined ? 'deno' : 'node'];

/** Validated options: a number for each field, `UNSET` where the caller left it as it is. */
export interface Settings {
  onoff: boolean;
  keepalivetime: number;
  keepaliveinterval: number;
  keepalivecount: number;
  usertimeout: number;
}

const OPTION_NAMES: ReadonlySet<string> = new Set(['onoff', 'keepalivetime', 'keepaliveinterval', 'keepalivecount', 'usertimeout', 'deadAfter']);

/** The range, in the option's own unit, and how the kernel takes it on this platform. */
function describeLimit(max: number, min: number, unit: 'ms' | 'probes', kernelUnit: number): string {
  const range = `an integer >= ${min} and <= ${max}`;
  if (unit === 'probes') return `${range} on ${process.platform}`;
  if (kernelUnit === 1) return `${range} (ms on ${process.platform}, which takes them as they are, not rounded)`;
  return `${range} (${Math.floor(max / kernelUnit)} s on ${process.platform}, where ms are rounded up to whole seconds)`;
}

function integerIn(value: unknown, name: keyof KeepaliveOptions, min: number, max: number | undefined, unit: 'ms' | 'probes', kernelUnit: number, required = false): number {
  if (value === undefined && !required) return UNSET;
  if (typeof value !== 'number') throw invalidArgType(`options.${name}`, required ? 'of type number (it is required when onoff is on)' : 'of type number', value);
  if (max === undefined) throw keepaliveError('ERR_KEEPALIVE_UNSUPPORTED', `options.${name} cannot be set on ${process.platform}`);
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(`options.${name}`, describeLimit(max, min, unit, kernelUnit), value);
  return value;
}

/** Checks options against this platform's limits; throws a typed error naming the field. */
export function validate(options: unknown): Settings {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgType('options', 'of type object', options);
  const opts = options as KeepaliveOptions;
  for (const key in opts) {
    if (!OPTION_NAMES.has(key) && Object.hasOwn(opts, key)) throw invalidArgValue(`options.${key}`, `is not an option; the options are ${[...OPTION_NAMES].join(', ')}`);
  }
  const onoff = opts.onoff;
  if (onoff !== undefined && onoff !== true && onoff !== false && onoff !== 0 && onoff !== 1) {
    throw invalidArgType('options.onoff', 'of type boolean (or 0 or 1)', onoff);
  }
  if (opts.deadAfter !== undefined) refuseDeadAfterWithFields(opts as Record<string, unknown>);
  if (onoff === false || onoff === 0) return { onoff: false, keepalivetime: UNSET, keepaliveinterval: UNSET, keepalivecount: UNSET, usertimeout: UNSET };
  if (opts.deadAfter !== undefined) return { onoff: true, ...mapDeadAfter(opts.deadAfter, platform, process.platform) };
  return {
    onoff: true,
    keepalivetime: integerIn(opts.keepalivetime, 'keepalivetime', 1, platform.keepalivetime, 'ms', platform.unit, true),
    keepaliveinterval: integerIn(opts.keepaliveinterval, 'keepaliveinterval', 1, platform.keepaliveinterval, 'ms', platform.unit, true),
    keepalivecount: integerIn(opts.keepalivecount, 'keepalivecount', 1, platform.keepalivecount, 'probes', 1),
    usertimeout: integerIn(opts.usertimeout, 'usertimeout', 0, platform.usertimeout, 'ms', platform.usertimeoutUnit),
  };
}
