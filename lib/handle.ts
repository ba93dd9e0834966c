import { Server, Socket } from 'node:net';
import { APPLIED_BITS, binding, NativeError, NativeValues, UNSET } from './binding';
import { keepaliveError } from './errors';
import { platform, Settings } from './options';
import type { HandleState } from './sticky';
import { handleOf, isServer } from './target';

/** A libuv stream handle as Node exposes it on `socket._handle` (TCPWrap, or TLSWrap over one). */
export interface Handle {
  fd?: number;
  _parent?: Handle;
  /** TLSWrap: the JS socket whose handle it wraps (a net.Socket, or a JSStreamSocket). */
  _parentWrap?: unknown;
  setKeepAlive?(enable: boolean, ...rest: unknown[]): number;
  getsockname?(out: { address?: string; port?: number }): number;
  getpeername?(out: { address?: string; port?: number }): number;
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

/** Node's and Bun's Unix-domain / named-pipe handle is a `Pipe`, Deno's a `PipeWrap`. */
export function isPipe(handle: Handle): boolean {
  const name = handle.constructor?.name;
  return name === 'Pipe' || name === 'PipeWrap';
}

/**
 * Node's own TCPWrap on a POSIX system: its `fd` getter reports the descriptor while the handle is open and -1
 * once it is closed (or before it has one). Windows reports -1 always; Bun and Deno expose no descriptor.
 */
const fdTellsOpen = platform.locateByAddress === false && process.versions.bun === undefined && (process.versions as { deno?: string }).deno === undefined;

function isNodeTcp(handle: Handle): boolean {
  return fdTellsOpen && handle.constructor?.name === 'TCP';
}

/** The TCP handle under a TLS handle (TLSWrap keeps the wrapped handle in `_parent`). */
export function innermost(handle: Handle): Handle {
  while (handle._parent) handle = handle._parent;
  return handle;
}

/**
 * The TCP handle under `outer`, provided every socket on the way still owns its handle: a TLS socket whose
 * net.Socket was destroyed keeps a TLSWrap over a closed TCP handle until its own 'close'.
 */
export function openInnermost(outer: Handle): Handle {
  let handle = outer;
  while (handle._parent) {
    const wrap = handle._parentWrap as Internal<Socket> | null | undefined;
    if (wrap instanceof Socket && (wrap.destroyed || wrap._handle !== handle._parent)) throw socketClosed();
    handle = handle._parent;
  }
  return handle;
}

export function tcpHandleOf(target: Internal<Socket | Server>, what: string): Handle {
  const outer = handleOf(target);
  if (!outer) throw socketClosed();
  const handle = openInnermost(outer);
  if (handle[kOsSocket] === undefined && isPipe(handle)) throw notTcp(what);
  return handle;
}

function endpointOf(target: Socket | Server | undefined, handle: Handle, what: string): [string, number, string | undefined, number | undefined] {
  if (target && isServer(target)) {
    const address = target.address();
    if (address === null || typeof address === 'string') throw notTcp(what);
    return [address.address, address.port, undefined, undefined];
  }
  if (target && typeof target.localAddress === 'string' && typeof target.remoteAddress === 'string') {
    return [target.localAddress, target.localPort!, target.remoteAddress, target.remotePort];
  }
  // An accepted connection whose net.Socket does not exist yet: ask its handle.
  const local: { address?: string; port?: number } = {};
  const remote: { address?: string; port?: number } = {};
  if (typeof handle.getsockname !== 'function' || handle.getsockname(local) !== 0 || typeof local.address !== 'string') throw notTcp(what);
  const connected = typeof handle.getpeername === 'function' && handle.getpeername(remote) === 0 && typeof remote.address === 'string';
  return [local.address, local.port!, connected ? remote.address : undefined, connected ? remote.port : undefined];
}

/**
 * The OS socket of an open handle. A descriptor is cached on its handle and used only while that handle
 * still reports it, so a number the OS has handed out again is never touched. Where the socket is found by
 * its addresses (Windows, Bun, Deno), nothing is cached here: the native lookup verifies every hit.
 */
export function osSocketOf(target: Socket | Server | undefined, handle: Handle, what: string): number {
  const fd = handle.fd;
  const cached = handle[kOsSocket];
  if (cached !== undefined) {
    if (cached === fd) return cached;
    throw socketClosed();
  }
  if (typeof fd === 'number' && fd >= 0 && !platform.locateByAddress) {
    // Node's TCP handle wraps a TCP socket by construction: the native type check would be two system calls for nothing.
    const sock = isNodeTcp(handle) ? fd : native(() => binding.resolve(fd, undefined, undefined, undefined, undefined));
    handle[kOsSocket] = sock;
    return sock;
  }
  if (isNodeTcp(handle)) throw socketClosed();
  if (isPipe(handle)) throw notTcp(what);
  const [localAddress, localPort, remoteAddress, remotePort] = endpointOf(target, handle, what);
  return native(() => binding.resolve(-1, localAddress, localPort, remoteAddress, remotePort));
}

/**
 * An accepted connection's handle straight from a TCP listener: its descriptor needs no type check. `cache`
 * false leaves the handle untouched (Node has not set its own properties on it yet).
 */
export function acceptedOsSocket(handle: Handle, cache: boolean): number {
  const fd = handle.fd;
  if (typeof fd === 'number' && fd >= 0 && isNodeTcp(handle)) {
    if (cache) handle[kOsSocket] = fd;
    return fd;
  }
  return osSocketOf(undefined, handle, 'socket');
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

/** Which kinds of settings this system was seen to take (bit 0: a count, bit 1: a usertimeout). */
const accepted = new Set<number>();

/**
 * Throws, as apply would, when this system cannot take settings of this kind at all (Windows before 10 1703
 * has no TCP_KEEPCNT; Wine no TCP_MAXRT; an MPTCP socket, under mptcpize, no TCP_USER_TIMEOUT), found on a
 * socket of its own: a server refuses them at the call instead of failing on every connection it accepts.
 */
export function probe(s: Settings): void {
  if (!s.onoff) return;
  const kind = (s.keepalivecount === UNSET ? 0 : 1) | (s.usertimeout === UNSET ? 0 : 2);
  if (accepted.has(kind)) return;
  try {
    binding.probe(1, s.keepalivetime, s.keepaliveinterval, s.keepalivecount, s.usertimeout);
  } catch (error) {
    const err = error as NativeError;
    if (err.syscall === 'socket') return; // no socket to try on (EMFILE): each connection will say
    err.applied = 0; // (what it set was on its own socket, gone now)
    throw annotated(err);
  }
  accepted.add(kind);
}

/** What a new TCP socket holds (the system's defaults), or undefined if none can be made. */
export function systemDefaults(): NativeValues | undefined {
  try {
    return binding.probe(0, UNSET, UNSET, UNSET, UNSET);
  } catch {
    return undefined;
  }
}

export function read(sock: number): NativeValues {
  return native(() => binding.read(sock));
}
