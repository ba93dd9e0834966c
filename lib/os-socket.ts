import type { Server, Socket } from 'node:net';
import { keepaliveError } from './errors';
import { notTcp, osSocketOf, socketClosed, tcpHandleOf } from './handle';
import { isClusterWorker } from './server';
import { realSocket } from './socket';
import { handleOf, isServer, isSocket, KeepaliveTarget, notATarget, onPathWithoutHandle } from './target';

/**
 * isSocket(), except that http2's `session.socket` of a session destroyed since throws
 * ERR_HTTP2_SOCKET_UNBOUND on every access, `instanceof` included: for us its socket is closed.
 */
export function socketOrClosed(target: unknown): target is Socket {
  try {
    return isSocket(target);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_HTTP2_SOCKET_UNBOUND') throw socketClosed();
    throw error;
  }
}

/**
 * The OS socket to read for a connected socket (its TCP socket, under TLS) or a listening server, after the
 * checks every reader shares (getKeepalive, getTcpInfo): closed, not connected, not TCP, not a target.
 */
export function osSocketForRead(target: KeepaliveTarget): number {
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
  return osSocketOf(of, tcpHandleOf(of, what), what);
}
