import { UNSET } from './binding';
import { read } from './handle';
import { KeepaliveOptions, KeepaliveValues, Limits, platform, validate } from './options';
import { osSocketForRead, socketOrClosed } from './os-socket';
import { applyToServer } from './server';
import { applyToSocket, realSocket } from './socket';
import { isServer, KeepaliveTarget, notATarget } from './target';

export type { KeepaliveErrorCode } from './errors';
export type { KeepaliveOptions, KeepaliveValues } from './options';
export type { KeepaliveTarget } from './target';
export { setDefaultKeepalive } from './default';
export { getTcpInfo } from './tcp-info';
export type { TcpInfo, TcpState } from './tcp-info';
export type { DefaultKeepaliveConfig, DefaultKeepaliveSocketInfo } from './default';

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
