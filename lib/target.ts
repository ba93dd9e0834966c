import { EventEmitter } from 'node:events';
import { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { types } from 'node:util';
import { invalidArgType, keepaliveError } from './errors';

/** A socket as drivers type it (`Duplex`) is accepted; at run time it must be a `net.Socket` / `tls.TLSSocket` or a `net.Server`. */
export type KeepaliveTarget = Socket | Server | Duplex;

/** A libuv stream handle as Node exposes it on `socket._handle` (TCPWrap, or a TLSWrap over one). */
export interface Handle {
  fd?: number;
  _parent?: Handle;
  /** TLSWrap: the JS socket whose handle it wraps (a net.Socket, or a JSStreamSocket). */
  _parentWrap?: unknown;
  setKeepAlive?(enable: boolean, ...rest: unknown[]): number;
  getsockname?(out: { address?: string; port?: number }): number;
  getpeername?(out: { address?: string; port?: number }): number;
}

/** A socket or server with the Node internals this package reads. */
export type Internal<T> = T & { _handle?: Handle | null };

export function socketClosed(): Error {
  return keepaliveError('ERR_SOCKET_CLOSED', 'Socket is closed');
}

export function notTcp(what: string): Error {
  return keepaliveError('ERR_KEEPALIVE_NOT_TCP', `The ${what} is not a TCP socket (Unix-domain sockets, named pipes and stream wrappers have no TCP keepalive)`);
}

export function notATarget(target: unknown): TypeError {
  return invalidArgType('target', 'an instance of net.Socket, tls.TLSSocket or net.Server', target);
}

export function isSocket(target: unknown): target is Socket {
  return target instanceof Socket;
}

/**
 * A `net.Server`, or an object shaped like one: Bun's `http.createServer()` / `https.createServer()` servers
 * are EventEmitters with `listen`, `close`, `address` and `getConnections` and a `listening` flag, but not
 * `instanceof net.Server`.
 */
export function isServer(target: unknown): target is Server {
  if (target instanceof Server) return true;
  if (!(target instanceof EventEmitter) || target instanceof Socket) return false;
  const shape = target as unknown as Record<string, unknown>;
  return ['listen', 'close', 'address', 'getConnections'].every((name) => typeof shape[name] === 'function') && typeof shape.listening === 'boolean';
}

/** Node's and Bun's Unix-domain / named-pipe handle is a `Pipe`, Deno's a `PipeWrap`. */
export function isPipe(handle: Handle): boolean {
  const name = handle.constructor?.name;
  return name === 'Pipe' || name === 'PipeWrap';
}

/** The TCP handle under a TLS handle (TLSWrap keeps the wrapped handle in `_parent`). */
export function innermost(handle: Handle): Handle {
  while (handle._parent) handle = handle._parent;
  return handle;
}

/** A stand-in per handle-less target (Bun): the same object every time, so it can key a cache. */
const addressOnly = new WeakMap<object, Handle>();

/**
 * The stand-in handle of a target that has no `_handle` but carries its addresses: a socket Bun's HTTP server
 * accepted (`_handle === null`, addresses set) or such a server while it listens. Its OS socket is found by
 * those addresses. Undefined for anything else (a socket not connected yet, closed, or a Node server not
 * listening), so callers treat it as they treat a missing `_handle`.
 */
function addressOnlyHandle(target: Internal<Socket | Server>): Handle | undefined {
  if (target._handle) return undefined;
  if (isSocket(target)) {
    if (target.destroyed || target.connecting) return undefined;
    if (typeof target.localAddress !== 'string' || typeof target.remoteAddress !== 'string') return undefined;
  } else {
    if (!target.listening) return undefined;
    const address = target.address();
    if (address === null || typeof address !== 'object') return undefined;
  }
  let handle = addressOnly.get(target);
  if (!handle) addressOnly.set(target, (handle = {}));
  return handle;
}

/** `target._handle`, or the stand-in of a handle-less target that carries its addresses. */
export function handleOf(target: Socket | Server): Handle | undefined {
  return (target as Internal<Socket | Server>)._handle ?? addressOnlyHandle(target);
}

/** A socket a server accepted: Node sets `server`; Bun sets `isServer` (and emits `connect` on it too). */
export function isAccepted(socket: Socket): boolean {
  const shape = socket as unknown as { server?: unknown; isServer?: unknown };
  return (shape.server !== undefined && shape.server !== null) || shape.isServer === true;
}

/**
 * A socket whose handle does not tell its type (Bun's handles are plain objects, or null on a socket its
 * HTTP server accepted) that is on a Unix-domain socket: accepted by a server that listens on a path, or
 * connecting to a path (Bun keeps no host then).
 */
export function onPathWithoutHandle(socket: Socket): boolean {
  const shape = socket as unknown as { server?: unknown; _server?: unknown; _host?: unknown };
  if (process.versions.bun !== undefined && socket.connecting && shape._host === undefined) return true;
  const server = shape.server ?? shape._server;
  return isServer(server) && typeof server.address() === 'string';
}

/**
 * The net.Socket that carries the TCP connection under `socket`, where every record of this package lives:
 * `socket` itself (a net.Socket, or a TLS socket over its own TCP handle); the net.Socket a TLS socket wraps
 * (`tls.connect({ socket })`, a TLS server's connections: the TLSWrap's `_parentWrap`); or, for a TLS socket
 * built over a net.Socket that was not connected yet, the one inside the JSStreamSocket between them.
 */
export function carrierOf(socket: Internal<Socket>): Internal<Socket> {
  let current = socket;
  for (let depth = 0; depth < 8; depth++) {
    let handle = current._handle;
    if (!handle) return current;
    let wrap: unknown;
    while (handle._parent) {
      wrap = handle._parentWrap;
      handle = handle._parent;
    }
    const next = handle.constructor?.name === 'JSStream' ? (wrap as { stream?: unknown } | undefined)?.stream : wrap;
    if (!(next instanceof Socket) || types.isProxy(next) || next === current) return current;
    current = next;
  }
  return current;
}

const kNeverEmitted = Symbol('tcp-keepalive.never-emitted');
function noop(): void {}

/**
 * The socket behind a proxy: http2's `session.socket` forwards reads and EventEmitter calls to the real socket
 * but throws ERR_HTTP2_NO_SOCKET_MANIPULATION on `setKeepAlive` and `emit`. An EventEmitter method returns its
 * real `this`; removing a listener that was never added changes nothing. A session destroyed since throws
 * ERR_HTTP2_SOCKET_UNBOUND on every access: its socket is closed.
 */
export function realSocket(target: unknown): Internal<Socket> | undefined {
  try {
    if (!isSocket(target)) return undefined;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_HTTP2_SOCKET_UNBOUND') throw socketClosed();
    throw error;
  }
  if (!types.isProxy(target)) return carrierOf(target);
  let real: unknown;
  try {
    real = target.removeListener(kNeverEmitted, noop);
  } catch {
    real = undefined;
  }
  if (real instanceof Socket && !types.isProxy(real)) return carrierOf(real);
  if (real === target) return target; // a proxy that passes everything through: used as it is
  throw notATarget(target);
}
