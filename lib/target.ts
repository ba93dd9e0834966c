import { EventEmitter } from 'node:events';
import { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { invalidArgType } from './errors';
import type { Handle } from './handle';

/** A socket as drivers type it (`Duplex`) is accepted; at run time it must be a `net.Socket` / `tls.TLSSocket` or a `net.Server`. */
export type KeepaliveTarget = Socket | Server | Duplex;

export function isSocket(target: unknown): target is Socket {
  return target instanceof Socket;
}

type Shape = Record<string, unknown>;

/**
 * A `net.Server`, or an object shaped like one: Bun's `http.createServer()` / `https.createServer()` servers
 * are EventEmitters with `listen`, `close`, `address` and `getConnections` and a `listening` flag, but not
 * `instanceof net.Server`.
 */
export function isServer(target: unknown): target is Server {
  if (target instanceof Server) return true;
  if (!(target instanceof EventEmitter) || target instanceof Socket) return false;
  const shape = target as unknown as Shape;
  return (
    typeof shape.listen === 'function' &&
    typeof shape.close === 'function' &&
    typeof shape.address === 'function' &&
    typeof shape.getConnections === 'function' &&
    typeof shape.listening === 'boolean'
  );
}

export function notATarget(target: unknown): TypeError {
  return invalidArgType('target', 'an instance of net.Socket, tls.TLSSocket or net.Server', target);
}

const kAddressOnly = Symbol('tcp-keepalive.address-only');

type AddressOnly = { _handle?: Handle | null; [kAddressOnly]?: Handle };

/**
 * The stand-in handle of a target that has no `_handle` but carries its addresses: a socket Bun's HTTP server
 * accepted (`_handle === null`, addresses set) or such a server while it listens. Its descriptor is found by
 * those addresses. Undefined for anything else (a socket not connected yet, closed, or a Node server not
 * listening), so callers treat it as they treat a missing `_handle`.
 */
export function addressOnlyHandle(target: Socket | Server): Handle | undefined {
  const shape = target as unknown as AddressOnly;
  if (shape._handle) return undefined;
  if (isSocket(target)) {
    if (target.destroyed || target.connecting) return undefined;
    if (typeof target.localAddress !== 'string' || typeof target.remoteAddress !== 'string') return undefined;
  } else {
    if (!target.listening) return undefined;
    const address = target.address();
    if (address === null || typeof address !== 'object') return undefined;
  }
  return (shape[kAddressOnly] ??= {});
}

/**
 * A socket whose handle does not tell its type (Bun's handles are plain objects, or null on a socket its
 * HTTP server accepted) that is on a Unix-domain socket: accepted by a server that
 * listens on a path, or connecting to a path (Bun keeps no host then).
 */
export function onPathWithoutHandle(socket: Socket): boolean {
  const shape = socket as unknown as { server?: unknown; _server?: unknown; _host?: unknown };
  if (process.versions.bun !== undefined && socket.connecting && shape._host === undefined) return true;
  const server = shape.server ?? shape._server;
  return isServer(server) && typeof server.address() === 'string';
}

/** `target._handle`, or the stand-in of a handle-less target that carries its addresses. */
export function handleOf(target: Socket | Server): Handle | undefined {
  return (target as unknown as AddressOnly)._handle ?? addressOnlyHandle(target);
}
