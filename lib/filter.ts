import type { Socket } from 'node:net';
import { invalidArgType, invalidArgValue } from './errors';

/**
 * A `setDefaultKeepalive` filter as data (it can be copied into a worker thread or written in an environment
 * variable): which connections the default reaches. Absent fields match everything.
 */
export interface KeepaliveFilterSpec {
  /** The port at the other end of a client connection, or the local port of an accepted one. */
  ports?: readonly number[];
  /** `client`: connections this process opened; `server`: connections it accepted. */
  side?: 'client' | 'server';
}

export type KeepaliveFilter = (socket: Socket, info: { side: 'client' | 'server' }) => boolean;

const isPort = (port: unknown): port is number => Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535;

/** The spec each filter made here came from: such a filter can be carried into worker threads. */
const specs = new WeakMap<KeepaliveFilter, KeepaliveFilterSpec>();

export function specOf(filter: unknown): KeepaliveFilterSpec | undefined {
  return typeof filter === 'function' ? specs.get(filter as KeepaliveFilter) : undefined;
}

/** The filter function for `setDefaultKeepalive(options, { filter })` that a spec describes. */
export function filterFrom(spec: KeepaliveFilterSpec): KeepaliveFilter {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw invalidArgType('spec', 'of type object', spec);
  const { ports, side } = spec;
  if (side !== undefined && side !== 'client' && side !== 'server') throw invalidArgValue('spec.side', `must be 'client' or 'server'. Received ${String(side)}`);
  if (ports !== undefined && (!Array.isArray(ports) || !ports.every(isPort))) throw invalidArgValue('spec.ports', 'must be an array of integers from 1 to 65535');
  const wanted = ports === undefined ? undefined : new Set(ports);
  const filter: KeepaliveFilter = (socket, info) => {
    if (side !== undefined && info.side !== side) return false;
    return wanted === undefined || wanted.has((info.side === 'client' ? socket.remotePort : socket.localPort) as number);
  };
  specs.set(filter, { ports: ports && [...ports], side });
  return filter;
}
