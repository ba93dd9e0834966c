import * as path from 'node:path';

export type NativeValues = [onoff: number, keepalivetime: number, keepaliveinterval: number, keepalivecount: number, usertimeout: number];

/** state (keepalive.h's KA_TCP_*, -1 unknown), then rtt ... bytesAcked (-1: not reported), then the platform's struct by field. */
export type NativeTcpInfo = [state: number, ...fields: number[], raw: Record<string, number>];

export interface NativeBinding {
  resolve(fd: number, localAddress: string | undefined, localPort: number | undefined, remoteAddress: string | undefined, remotePort: number | undefined): number;
  apply(sock: number, onoff: number, keepalivetime: number, keepaliveinterval: number, keepalivecount: number, usertimeout: number): void;
  read(sock: number): NativeValues;
  /** How many connections wait in a listening socket's accept queue; -1 where the system does not say. */
  queued(sock: number): number;
  /** apply() on a new TCP socket of its own, closed again: throws what this system cannot take. */
  probe(onoff: number, keepalivetime: number, keepaliveinterval: number, keepalivecount: number, usertimeout: number): NativeValues;
  /** The kernel's view of the connection: TCP_INFO, TCP_CONNECTION_INFO or SIO_TCP_INFO. */
  tcpInfo(sock: number): NativeTcpInfo;
  /** Counters of the lookup work done on this event loop (for tests and benchmarks): walks, handles visited, socket calls. */
  stats(): [walks: number, handlesVisited: number, socketCalls: number];
}

export interface NativeError extends Error {
  code: string;
  errno: number;
  sysErrno: number;
  syscall: string;
  applied: number;
}

export const UNSET = -1;

export const APPLIED_BITS = [
  [1 << 0, 'usertimeout'],
  [1 << 1, 'keepalivecount'],
  [1 << 2, 'keepaliveinterval'],
  [1 << 3, 'keepalivetime'],
  [1 << 4, 'onoff'],
] as const;

const load = require('node-gyp-build') as (dir: string) => NativeBinding;

export const binding: NativeBinding = load(path.join(__dirname, '..'));
