import type { Server, Socket } from 'node:net';
import { UNSET } from './binding';
import { applyToServer, applyToSocket, wanted } from './connection';
import { hookServer, installHooks } from './hooks';
import { KeepaliveOptions, KeepaliveValues, Limits, platform, validate } from './options';
import { osSocketForRead, read } from './os-socket';
import { isServer, KeepaliveTarget, notATarget, realSocket } from './target';

export type { KeepaliveErrorCode } from './errors';
export type { KeepaliveOptions, KeepaliveValues } from './options';
export type { KeepaliveTarget } from './target';
export { setDefaultKeepalive } from './default';
export { CONFIGURE_CHANNEL, DEAD_CHANNEL, ERROR_CHANNEL, SKIP_CHANNEL } from './channels';
export type { KeepaliveConfigureMessage, KeepaliveDeadMessage, KeepaliveErrorMessage, KeepaliveSkipMessage } from './channels';
export { getTcpInfo } from './tcp-info';
export type { TcpInfo, TcpState } from './tcp-info';
export type { DefaultKeepaliveConfig, DefaultKeepaliveSocketInfo } from './default';
export { filterFrom } from './filter';
export type { KeepaliveFilter, KeepaliveFilterSpec } from './filter';

// From load on, so a setKeepAlive made before the first apply or default is known when it comes.
installHooks();

/** The limits in force on this platform, in ms (and probes), after which a value is out of range. */
export const limits: Readonly<Limits> = Object.freeze({ ...platform });

/** An explicit apply that fails later (on connect, or re-asserted) closes the socket, as the Delphi heartbeat code does. */
const destroyOnError = (socket: Socket, error: Error): void => {
  socket.destroy(error);
};

/**
 * Applies keepalive settings to a `net.Socket`, a `tls.TLSSocket` (its TCP socket) or a `net.Server`
 * (`http.Server`, `https.Server`: every connection it accepts). A socket still connecting gets them on
 * `connect`, before the user's listeners, and again on every later connect. Returns the target.
 */
export function applyKeepalive<T extends KeepaliveTarget>(target: T, options: KeepaliveOptions): T {
  const settings = validate(options);
  const socket = realSocket(target);
  if (!socket && !isServer(target)) throw notATarget(target);
  if (socket) {
    applyToSocket(socket, wanted(settings, 'socket', destroyOnError));
  } else {
    applyToServer(target as Server, wanted(settings, 'server', destroyOnError));
    hookServer(target as Server);
  }
  return target;
}

/** Reads the keepalive settings the kernel holds for a connected socket or a listening server, in ms. */
export function getKeepalive(target: KeepaliveTarget): KeepaliveValues {
  const [onoff, keepalivetime, keepaliveinterval, keepalivecount, usertimeout] = read(osSocketForRead(target));
  const known = (value: number): number | undefined => (value === UNSET ? undefined : value);
  return {
    onoff: onoff !== 0,
    keepalivetime: known(keepalivetime),
    keepaliveinterval: known(keepaliveinterval),
    keepalivecount: known(keepalivecount),
    usertimeout: known(usertimeout),
  };
}
