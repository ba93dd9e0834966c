import type { Server, Socket } from 'node:net';
import { APPLIED_BITS, binding, NativeError, NativeValues, UNSET } from './binding';
import { runtime, Settings } from './options';
import { keepaliveError } from './errors';
import { Handle, handleOf, innermost, Internal, isPipe, isServer, KeepaliveTarget, notATarget, notTcp, onPathWithoutHandle, realSocket, socketClosed } from './target';

/** Descriptors of Node's own TCP handles, used only while the handle still reports the same number. */
const descriptors = new WeakMap<Handle, number>();

/** The TCP handle of an open socket or listening server; throws ERR_SOCKET_CLOSED / ERR_KEEPALIVE_NOT_TCP. */
export function tcpHandleOf(target: Internal<Socket | Server>, what: string): Handle {
  const outer = handleOf(target);
  if (!outer) throw socketClosed();
  const handle = innermost(outer);
  if (isPipe(handle)) throw notTcp(what);
  return handle;
}

function endpointOf(target: Socket | Server, handle: Handle, what: string): [string, number, string | undefined, number | undefined] {
  if (isServer(target)) {
    const address = target.address();
    if (address === null || typeof address === 'string') throw notTcp(what);
    return [address.address, address.port, undefined, undefined];
  }
  if (typeof target.localAddress === 'string' && typeof target.remoteAddress === 'string') {
    return [target.localAddress, target.localPort!, target.remoteAddress, target.remotePort];
  }
  const local: { address?: string; port?: number } = {};
  const remote: { address?: string; port?: number } = {};
  if (typeof handle.getsockname !== 'function' || handle.getsockname(local) !== 0 || typeof local.address !== 'string') throw notTcp(what);
  const connected = typeof handle.getpeername === 'function' && handle.getpeername(remote) === 0 && typeof remote.address === 'string';
  return [local.address, local.port!, connected ? remote.address : undefined, connected ? remote.port : undefined];
}

/**
 * The OS socket of an open TCP handle. A descriptor is used only while its handle still reports it, so a
 * number the OS has handed out again is never touched. Where the runtime has no descriptor (Windows, Bun,
 * Deno), the socket is found by its addresses, and the native lookup verifies every hit.
 */
export function osSocketOf(target: Socket | Server, handle: Handle, what: string): number {
  const fd = handle.fd;
  const known = descriptors.get(handle);
  if (known !== undefined) {
    if (known === fd) return known;
    throw socketClosed();
  }
  if (runtime.descriptors && typeof fd === 'number' && fd >= 0) {
    // Node's own TCP handle wraps a TCP socket by construction; anything else is checked natively.
    const sock = handle.constructor?.name === 'TCP' ? fd : native(() => binding.resolve(fd, undefined, undefined, undefined, undefined));
    descriptors.set(handle, sock);
    return sock;
  }
  if (runtime.descriptors && handle.constructor?.name === 'TCP') throw socketClosed();
  const [localAddress, localPort, remoteAddress, remotePort] = endpointOf(target, handle, what);
  return native(() => binding.resolve(-1, localAddress, localPort, remoteAddress, remotePort));
}

let clusterWorker: boolean | undefined;

export function isClusterWorker(): boolean {
  clusterWorker ??= (require('node:cluster') as { isWorker?: boolean }).isWorker === true;
  return clusterWorker;
}

/**
 * The OS socket to read for a connected socket (its TCP socket, under TLS) or a listening server, after the
 * checks every reader shares (getKeepalive, getTcpInfo): closed, not connected, not TCP, not a target.
 */
export function osSocketForRead(target: KeepaliveTarget): number {
  const socket = realSocket(target);
  if (socket) {
    if (socket.destroyed) throw socketClosed();
    if (!socket._handle && onPathWithoutHandle(socket)) throw notTcp('socket');
    if (socket.connecting || !handleOf(socket)) throw keepaliveError('ERR_KEEPALIVE_NOT_CONNECTED', 'The socket is not connected yet');
    return osSocketOf(socket, tcpHandleOf(socket, 'socket'), 'socket');
  }
  if (!isServer(target)) throw notATarget(target);
  if (!target.listening) throw keepaliveError('ERR_KEEPALIVE_NOT_CONNECTED', 'The server is not listening');
  if (typeof target.address() === 'string') throw notTcp('server');
  const handle = (target as { _handle?: { fd?: unknown; constructor?: unknown } | null })._handle;
  if (handle && handle.constructor === Object && typeof handle.fd !== 'number' && isClusterWorker()) {
    throw keepaliveError('ERR_KEEPALIVE_UNSUPPORTED', 'A round-robin cluster worker holds no listening socket to read (the primary accepts its connections): read an accepted socket instead');
  }
  return osSocketOf(target, tcpHandleOf(target, 'server'), 'server');
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

/** Writes settings to an OS socket: the one place every write goes through. `on` false: written, then switched off. */
export function write(sock: number, s: Settings, on = s.onoff): void {
  try {
    binding.apply(sock, on ? 1 : 0, s.keepalivetime, s.keepaliveinterval, s.keepalivecount, s.usertimeout);
  } catch (error) {
    throw annotated(error);
  }
}

export function read(sock: number): NativeValues {
  return native(() => binding.read(sock));
}

/** How many connections wait in a listening socket's accept queue; -1 where the system does not say. */
export function queuedOn(sock: number): number {
  try {
    return binding.queued(sock);
  } catch {
    return -1;
  }
}

/** Which kinds of settings this system was seen to take (bit 0: a count, bit 1: a usertimeout). */
const accepted = new Set<number>();

/**
 * Throws, as a write would, when this system cannot take settings of this kind at all (Windows before 10 1703
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

let defaults: NativeValues | undefined;

/**
 * What a new TCP socket of this process holds (the system's defaults), read once; a field the system cannot
 * read stays UNSET. If no socket can be made right now (EMFILE), every field is UNSET and it is asked again.
 */
function systemDefaults(): NativeValues {
  if (defaults) return defaults;
  try {
    return (defaults = binding.probe(0, UNSET, UNSET, UNSET, UNSET));
  } catch {
    return [0, UNSET, UNSET, UNSET, UNSET];
  }
}

/**
 * The one meaning of an omitted field: what a new TCP socket holds (the system's default), so the same
 * options give the same five values on every socket, whatever it held before. `onoff` false is keepalive off
 * with every other field at the system's default. A field the system cannot read stays UNSET: never written.
 * `lean` is the same without an omitted usertimeout, for a socket known to hold the system's already (nothing
 * but this package writes TCP_USER_TIMEOUT): one system call less.
 */
export function resolveOmitted(s: Settings): { settings: Settings; lean: Settings } {
  const [, keepalivetime, keepaliveinterval, keepalivecount, usertimeout] = systemDefaults();
  if (!s.onoff) {
    const off = { onoff: false, keepalivetime, keepaliveinterval, keepalivecount, usertimeout };
    return { settings: off, lean: { ...off, usertimeout: UNSET } };
  }
  const settings = { ...s, keepalivecount: s.keepalivecount === UNSET ? keepalivecount : s.keepalivecount, usertimeout: s.usertimeout === UNSET ? usertimeout : s.usertimeout };
  return { settings, lean: s.usertimeout === UNSET ? { ...settings, usertimeout: UNSET } : settings };
}

/** The system's TCP_USER_TIMEOUT for a new socket (UNSET where it cannot be read). */
export function systemUsertimeout(): number {
  return systemDefaults()[4];
}
