import { Server, Socket } from 'node:net';
import { APPLIED_BITS, binding, NativeError, NativeValues } from './binding';
import { keepaliveError } from './errors';
import { platform, Settings } from './options';
import type { HandleState } from './sticky';
import { handleOf, isServer } from './target';

/** A libuv stream handle as Node exposes it on `socket._handle` (TCPWrap, or TLSWrap over one). */
export interface Handle {
  fd?: number;
  _parent?: Handle;
  setKeepAlive?(enable: boolean, ...rest: unknown[]): number;
  [kHandleState]?: HandleState;
  [kOsSocket]?: number;
}

export const kHandleState = Symbol('tcp-keepalive.handle');
export const kOsSocket = Symbol('tcp-keepalive.os-socket');

/** A socket or server with the Node internals this package reads. */
export type Internal<T> = T & { _handle?: Handle | null };

export function socketClosed(): Error {
  return keepaliveError('ERR_SOCKET_CLOSED', 'Socket is closed');
}

export function notTcp(what: string): Error {
  return keepaliveError('ERR_KEEPALIVE_NOT_TCP', `The ${what} is not a TCP socket (Unix-domain sockets, named pipes and stream wrappers have no TCP keepalive)`);
}

export function isPipe(handle: Handle): boolean {
  return handle.constructor?.name === 'Pipe';
}

/** The TCP handle under a TLS handle (TLSWrap keeps the wrapped handle in `_parent`). */
export function innermost(handle: Handle): Handle {
  while (handle._parent) handle = handle._parent;
  return handle;
}

export function tcpHandleOf(target: Internal<Socket | Server>, what: string): Handle {
  const outer = handleOf(target);
  if (!outer) throw socketClosed();
  const handle = innermost(outer);
  if (handle[kOsSocket] === undefined && isPipe(handle)) throw notTcp(what);
  return handle;
}

export function osSocketOf(target: Internal<Socket | Server>, handle: Handle, what: string): number {
  const cached = handle[kOsSocket];
  if (cached !== undefined) return cached;
  let sock: number;
  // Windows never exposes the SOCKET; Deno's TCP handles and Bun's HTTP sockets expose no descriptor.
  if (platform.locateByAddress || typeof handle.fd !== 'number' || handle.fd < 0) {
    if (isServer(target)) {
      const address = target.address();
      if (address === null || typeof address === 'string') throw notTcp(what);
      sock = native(() => binding.resolve(-1, address.address, address.port, undefined, undefined));
    } else {
      const socket = target as Socket;
      if (typeof socket.localAddress !== 'string' || typeof socket.remoteAddress !== 'string') throw notTcp(what);
      sock = native(() => binding.resolve(-1, socket.localAddress, socket.localPort, socket.remoteAddress, socket.remotePort));
    }
  } else {
    const fd = handle.fd;
    if (typeof fd !== 'number' || fd < 0) throw notTcp(what);
    sock = native(() => binding.resolve(fd, undefined, undefined, undefined, undefined));
  }
  handle[kOsSocket] = sock;
  return sock;
}

function annotated(error: unknown): unknown {
  const err = error as NativeError;
  const applied = APPLIED_BITS.filter(([bit]) => (err.applied ?? 0) & bit).map(([, name]) => name);
  if (applied.length > 0) err.message += ` (the socket is partly configured: ${applied.join(', ')} already set)`;
  Object.defineProperty(err, 'applied', { value: applied, enumerable: true, writable: true, configurable: true });
  return err;
}

export function native<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw annotated(error);
  }
}

/** Writes settings to the OS socket: the one place every apply goes through. */
export function write(sock: number, s: Settings): void {
  // The hot path: the same try/catch as native(), without a closure per call.
  try {
    binding.apply(sock, s.onoff ? 1 : 0, s.keepalivetime, s.keepaliveinterval, s.keepalivecount, s.usertimeout);
  } catch (error) {
    throw annotated(error);
  }
}

export function read(sock: number): NativeValues {
  return native(() => binding.read(sock));
}
