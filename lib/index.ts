import type { Server, Socket } from 'node:net';
import { UNSET } from './binding';
import { keepaliveError } from './errors';
import { notTcp, osSocketOf, read, socketClosed, tcpHandleOf } from './handle';
import { KeepaliveOptions, KeepaliveValues, Limits, platform, validate } from './options';
import { applyToServer, isClusterWorker } from './server';
import { applyToSocket, realSocket } from './socket';
import { handleOf, isServer, isSocket, KeepaliveTarget, notATarget, onPathWithoutHandle } from './target';

export type { KeepaliveErrorCode } from './errors';
export type { KeepaliveOptions, KeepaliveValues } from './options';
export type { KeepaliveTarget } from './target';
export { setDefaultKeepalive } from './default';
export type { DefaultKeepaliveConfig, DefaultKeepaliveSocketInfo } from './default';
export { filterFrom } from './filter';
export type { KeepaliveFilter, KeepaliveFilterSpec } from './filter';

/** The limits in force on this platform, in ms (and probes), after which a value is out of range. */
export const limits: Readonly<Limits> = Object.freeze({ ...platform });

/**
 * Applies keepalive settings to a `net.Socket`, a `tls.TLSSocket` (its TCP socket) or a `net.Server`
 * (`http.Server`, `https.Server`: every connection it accepts). A socket still connecting gets them on
 * `connect`, before the user's listeners. Returns the target.
 */
export function applyKeepalive<T extends KeepaliveTarget>(target: T, options: KeepaliveOptions): T {
  const settings = validate(options);
  if (socketOrClosed(target)) applyToSocket(realSocket(target), settings);
  else if (isServer(target)) applyToServer(target, settings);
  else throw notATarget(target);
  return target;
}

/**
 * isSocket(), except that http2's `session.socket` of a session destroyed since throws
 * ERR_HTTP2_SOCKET_UNBOUND on every access, `instanceof` included: for us its socket is closed.
 */
function socketOrClosed(target: unknown): target is Socket {
  try {
    return isSocket(target);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_HTTP2_SOCKET_UNBOUND') throw socketClosed();
    throw error;
  }
}

/** Reads the keepalive settings the kernel holds for a connected socket or a listening server, in ms. */
export function getKeepalive(target: KeepaliveTarget): KeepaliveValues {
  let what: 'socket' | 'server';
  let of: Socket | Server;
  if (socketOrClosed(target)) {
    of = realSocket(target);
    if (of.destroyed) throw socketClosed();
    if (!(of as { _handle?: unknown })._handle && onPathWithoutHandle(of)) throw notTcp('socket');
    if (of.connecting || !handleOf(of)) throw keepaliveError('ERR_KEEPALIVE_NOT_CONNECTED', 'The socket is not connected yet');
    what = 'socket';
  } else if (isServer(target)) {
    if (!target.listening) throw keepaliveError('ERR_KEEPALIVE_NOT_CONNECTED', 'The server is not listening');
    if (typeof target.address() === 'string') throw notTcp('server');
    const handle = (target as { _handle?: { fd?: unknown; constructor?: unknown } | null })._handle;
    if (handle && handle.constructor === Object && typeof handle.fd !== 'number' && isClusterWorker()) {
      throw keepaliveError('ERR_KEEPALIVE_UNSUPPORTED', 'A round-robin cluster worker holds no listening socket to read (the primary accepts its connections): read an accepted socket instead');
    }
    of = target;
    what = 'server';
  } else {
    throw notATarget(target);
  }
  const handle = tcpHandleOf(of, what);
  const [onoff, keepalivetime, keepaliveinterval, keepalivecount, usertimeout] = read(osSocketOf(of, handle, what));
  const known = (value: number): number | undefined => (value === UNSET ? undefined : value);
  return {
    onoff: onoff !== 0,
    keepalivetime: known(keepalivetime),
    keepaliveinterval: known(keepaliveinterval),
    keepalivecount: known(keepalivecount),
    usertimeout: known(usertimeout),
  };
}
