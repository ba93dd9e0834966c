import { Server, Socket } from 'node:net';
import { APPLIED_BITS, binding, NativeError, UNSET } from './binding';
import { invalidArgType, invalidArgValue, keepaliveError, outOfRange } from './errors';

export type { KeepaliveErrorCode } from './errors';

/** What `applyKeepalive` takes. Times are milliseconds, named after Windows' `struct tcp_keepalive`. */
export interface KeepaliveOptions {
  /** `SO_KEEPALIVE`. `false` (or 0) turns keepalive off; the other fields are then ignored. Default `true`. */
  onoff?: boolean | 0 | 1;
  /** Idle time before the first probe, ms. Required when `onoff` is on. */
  keepalivetime?: number;
  /** Time between unanswered probes, ms. Required when `onoff` is on. */
  keepaliveinterval?: number;
  /** Unanswered probes before the connection is dropped. Left as it is when absent. */
  keepalivecount?: number;
  /** How long sent data may stay unacknowledged before the connection is dropped, ms; 0 restores the system default. Left as it is when absent. */
  usertimeout?: number;
}

/** What the kernel holds now, in ms. A field the platform cannot read is `undefined`. */
export interface KeepaliveValues {
  onoff: boolean;
  keepalivetime: number | undefined;
  keepaliveinterval: number | undefined;
  keepalivecount: number | undefined;
  usertimeout: number | undefined;
}

export type KeepaliveTarget = Socket | Server;

interface Limits {
  /** How many ms one unit of the kernel's option is: values are rounded up to it. */
  unit: number;
  keepalivetime: number;
  keepaliveinterval: number;
  keepalivecount: number | undefined;
  usertimeout: number | undefined;
  /** Accepted sockets inherit the listening socket's keepalive options. */
  inheritsFromListener: boolean;
  /** The OS socket is found by its addresses, not by `_handle.fd`. */
  locateByAddress: boolean;
}

const INT32_MAX = 2 ** 31 - 1;

const PLATFORMS: Record<string, Limits> = {
  linux: { unit: 1000, keepalivetime: 32767 * 1000, keepaliveinterval: 32767 * 1000, keepalivecount: 127, usertimeout: INT32_MAX, inheritsFromListener: true, locateByAddress: false },
  android: { unit: 1000, keepalivetime: 32767 * 1000, keepaliveinterval: 32767 * 1000, keepalivecount: 127, usertimeout: INT32_MAX, inheritsFromListener: true, locateByAddress: false },
  darwin: { unit: 1000, keepalivetime: INT32_MAX, keepaliveinterval: INT32_MAX, keepalivecount: INT32_MAX, usertimeout: INT32_MAX, inheritsFromListener: false, locateByAddress: false },
  freebsd: { unit: 1000, keepalivetime: INT32_MAX, keepaliveinterval: INT32_MAX, keepalivecount: INT32_MAX, usertimeout: undefined, inheritsFromListener: false, locateByAddress: false },
  win32: { unit: 1, keepalivetime: INT32_MAX, keepaliveinterval: INT32_MAX, keepalivecount: 255, usertimeout: INT32_MAX, inheritsFromListener: false, locateByAddress: true },
};

const platform = PLATFORMS[process.platform] ?? PLATFORMS.freebsd;

/** The limits in force on this platform, in ms (and probes), after which a value is out of range. */
export const limits: Readonly<Limits> = Object.freeze({ ...platform });

interface Settings {
  onoff: boolean;
  keepalivetime: number;
  keepaliveinterval: number;
  keepalivecount: number;
  usertimeout: number;
}

const OPTION_NAMES: ReadonlySet<string> = new Set(['onoff', 'keepalivetime', 'keepaliveinterval', 'keepalivecount', 'usertimeout']);

function describeLimit(max: number, min: number, unit: string): string {
  if (platform.unit === 1000 && unit === 'ms') return `an integer >= ${min} and <= ${max} (${max / 1000} s on ${process.platform}, where ms are rounded up to whole seconds)`;
  return `an integer >= ${min} and <= ${max} on ${process.platform}`;
}

function integerIn(value: unknown, name: keyof KeepaliveOptions, min: number, max: number | undefined, unit: string, required = false): number {
  if (value === undefined && !required) return UNSET;
  if (typeof value !== 'number') throw invalidArgType(`options.${name}`, required ? 'of type number (it is required when onoff is on)' : 'of type number', value);
  if (max === undefined) throw keepaliveError('ERR_KEEPALIVE_UNSUPPORTED', `options.${name} cannot be set on ${process.platform}`);
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(`options.${name}`, describeLimit(max, min, unit), value);
  return value;
}

function validate(options: unknown): Settings {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgType('options', 'of type object', options);
  const opts = options as KeepaliveOptions;
  for (const key in opts) {
    if (!OPTION_NAMES.has(key) && Object.hasOwn(opts, key)) throw invalidArgValue(`options.${key}`, `is not an option; the options are ${[...OPTION_NAMES].join(', ')}`);
  }
  const onoff = opts.onoff;
  if (onoff !== undefined && onoff !== true && onoff !== false && onoff !== 0 && onoff !== 1) {
    throw invalidArgType('options.onoff', 'of type boolean (or 0 or 1)', onoff);
  }
  if (onoff === false || onoff === 0) return { onoff: false, keepalivetime: UNSET, keepaliveinterval: UNSET, keepalivecount: UNSET, usertimeout: UNSET };
  return {
    onoff: true,
    keepalivetime: integerIn(opts.keepalivetime, 'keepalivetime', 1, platform.keepalivetime, 'ms', true),
    keepaliveinterval: integerIn(opts.keepaliveinterval, 'keepaliveinterval', 1, platform.keepaliveinterval, 'ms', true),
    keepalivecount: integerIn(opts.keepalivecount, 'keepalivecount', 1, platform.keepalivecount, 'probes'),
    usertimeout: integerIn(opts.usertimeout, 'usertimeout', 0, platform.usertimeout, 'ms'),
  };
}

interface Handle {
  fd?: number;
  _parent?: Handle;
  setKeepAlive?(enable: boolean, ...rest: unknown[]): number;
  [kHandleState]?: HandleState;
  [kOsSocket]?: number;
}

interface HandleState {
  settings: Settings;
  owner: Socket;
  original: (this: Handle, enable: boolean, ...rest: unknown[]) => number;
}

interface SocketState {
  pending: Settings | undefined;
  pendingOn: boolean;
  original: Socket['setKeepAlive'];
}

interface ServerState {
  settings: Settings;
  listenerApplied: boolean;
}

const kHandleState = Symbol('tcp-keepalive.handle');
const kOsSocket = Symbol('tcp-keepalive.os-socket');
const kSocketState = Symbol('tcp-keepalive.socket');
const kServerState = Symbol('tcp-keepalive.server');

type Internal<T> = T & { _handle?: Handle | null; [kSocketState]?: SocketState; [kServerState]?: ServerState };

function socketClosed(): Error {
  return keepaliveError('ERR_SOCKET_CLOSED', 'Socket is closed');
}

function notTcp(what: string): Error {
  return keepaliveError('ERR_KEEPALIVE_NOT_TCP', `The ${what} is not a TCP socket (Unix-domain sockets, named pipes and stream wrappers have no TCP keepalive)`);
}

function isPipe(handle: Handle): boolean {
  return handle.constructor?.name === 'Pipe';
}

/** The TCP handle under a TLS handle (TLSWrap keeps the wrapped handle in `_parent`). */
function innermost(handle: Handle): Handle {
  while (handle._parent) handle = handle._parent;
  return handle;
}

function tcpHandleOf(target: Internal<Socket | Server>, what: string): Handle {
  const outer = target._handle;
  if (!outer) throw socketClosed();
  const handle = innermost(outer);
  if (handle[kOsSocket] === undefined && isPipe(handle)) throw notTcp(what);
  return handle;
}

function osSocketOf(target: Internal<Socket | Server>, handle: Handle, what: string): number {
  const cached = handle[kOsSocket];
  if (cached !== undefined) return cached;
  let sock: number;
  if (platform.locateByAddress) {
    if (target instanceof Server) {
      const address = target.address();
      if (address === null || typeof address === 'string') throw notTcp(what);
      sock = native(() => binding.resolve(-1, address.address, address.port, undefined, undefined));
    } else {
      const socket = target as Socket;
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

function native<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw annotated(error);
  }
}

function write(sock: number, s: Settings): void {
  try {
    binding.apply(sock, s.onoff ? 1 : 0, s.keepalivetime, s.keepaliveinterval, s.keepalivecount, s.usertimeout);
  } catch (error) {
    throw annotated(error);
  }
}

function stickyHandleSetKeepAlive(this: Handle, enable: boolean, ...rest: unknown[]): number {
  const state = this[kHandleState]!;
  const result = state.original.call(this, enable, ...rest);
  if (enable && state.settings.onoff && !state.owner.destroyed) {
    try {
      write(this[kOsSocket]!, state.settings);
    } catch (error) {
      state.owner.destroy(error as Error);
    }
  }
  return result;
}

/** Node 26.4+ also takes `setKeepAlive({ enable, initialDelay, interval, count })`. */
type SetKeepAliveArgs = [enable?: boolean | { enable?: boolean; initialDelay?: number }, initialDelay?: number];

function stickySocketSetKeepAlive(this: Internal<Socket>, ...args: SetKeepAliveArgs): Socket {
  const state = this[kSocketState]!;
  (state.original as (...a: SetKeepAliveArgs) => Socket).call(this, ...args);
  const [first, second] = args;
  const asObject = typeof first === 'object' && first !== null ? first : undefined;
  const enable = Boolean(asObject ? asObject.enable : first);
  const initialDelay = asObject ? asObject.initialDelay : second;
  if (state.pending) {
    state.pendingOn = enable;
    return this;
  }
  const handle = this._handle ? innermost(this._handle) : undefined;
  if (handle?.[kHandleState] && !this.destroyed) handle.setKeepAlive!(enable, ~~((initialDelay ?? 0) / 1000));
  return this;
}

function installSocketState(socket: Internal<Socket>): SocketState {
  let state = socket[kSocketState];
  if (!state) {
    state = { pending: undefined, pendingOn: true, original: socket.setKeepAlive };
    socket[kSocketState] = state;
    socket.setKeepAlive = stickySocketSetKeepAlive;
  }
  return state;
}

function installHandleState(socket: Internal<Socket>, handle: Handle, settings: Settings): void {
  const state = handle[kHandleState];
  if (state) {
    state.settings = settings;
  } else if (handle.setKeepAlive) {
    handle[kHandleState] = { settings, owner: socket, original: handle.setKeepAlive };
    handle.setKeepAlive = stickyHandleSetKeepAlive;
  }
  installSocketState(socket).pending = undefined;
}

function configureConnected(socket: Internal<Socket>, settings: Settings, enabled = true): void {
  const handle = tcpHandleOf(socket, 'socket');
  write(osSocketOf(socket, handle, 'socket'), enabled ? settings : { ...settings, onoff: false });
  installHandleState(socket, handle, settings);
}

function onDeferredConnect(this: Internal<Socket>): void {
  const state = this[kSocketState];
  if (!state?.pending) return;
  const settings = state.pending;
  state.pending = undefined;
  try {
    configureConnected(this, settings, state.pendingOn);
  } catch (error) {
    this.destroy(error as Error);
  }
}

function applyToSocket(socket: Internal<Socket>, settings: Settings): void {
  if (socket.destroyed) throw socketClosed();
  if (socket.connecting || !socket._handle) {
    if (socket._handle && isPipe(socket._handle)) throw notTcp('socket');
    const state = installSocketState(socket);
    if (!state.pending) socket.prependOnceListener('connect', onDeferredConnect);
    state.pending = settings;
    state.pendingOn = true;
    return;
  }
  configureConnected(socket, settings);
}

function onServerConnection(this: Internal<Server>, socket: Internal<Socket>): void {
  const state = this[kServerState];
  if (!state) return;
  const nodeResetsKeepalive = (this as Server & { keepAlive?: boolean }).keepAlive === true;
  try {
    if (state.listenerApplied && !nodeResetsKeepalive) {
      const handle = tcpHandleOf(socket, 'socket');
      handle[kOsSocket] = handle.fd;
      installHandleState(socket, handle, state.settings);
    } else {
      configureConnected(socket, state.settings);
    }
  } catch (error) {
    socket.destroy(error as Error);
  }
}

function applyToListener(server: Internal<Server>, state: ServerState): void {
  const handle = tcpHandleOf(server, 'server');
  if (!platform.inheritsFromListener) return;
  const fd = handle.fd;
  if (typeof fd !== 'number' || fd < 0) {
    state.listenerApplied = false;
    return;
  }
  write(osSocketOf(server, handle, 'server'), state.settings);
  state.listenerApplied = true;
}

function onServerListening(this: Internal<Server>): void {
  const state = this[kServerState];
  if (!state) return;
  try {
    applyToListener(this, state);
  } catch (error) {
    this.close();
    this.emit('error', error);
  }
}

function applyToServer(server: Internal<Server>, settings: Settings): void {
  const existing = server[kServerState];
  const state: ServerState = { settings, listenerApplied: existing?.listenerApplied ?? false };
  if (server.listening) {
    applyToListener(server, state);
  } else if (server._handle === null && !existing) {
    server.prependOnceListener('listening', onServerListening);
  }
  server[kServerState] = state;
  if (!existing) server.prependListener('connection', onServerConnection);
}

/**
 * Applies keepalive settings to a `net.Socket`, a `tls.TLSSocket` (its TCP socket) or a `net.Server`
 * (`http.Server`, `https.Server`: every connection it accepts). A socket still connecting gets them on
 * `connect`, before the user's listeners. Returns the target.
 */
export function applyKeepalive<T extends KeepaliveTarget>(target: T, options: KeepaliveOptions): T {
  const settings = validate(options);
  if (target instanceof Socket) applyToSocket(target, settings);
  else if (target instanceof Server) applyToServer(target, settings);
  else throw invalidArgType('target', 'an instance of net.Socket, tls.TLSSocket or net.Server', target);
  return target;
}

/** Reads the keepalive settings the kernel holds for a connected socket or a listening server, in ms. */
export function getKeepalive(target: KeepaliveTarget): KeepaliveValues {
  let handle: Handle;
  if (target instanceof Socket) {
    if (target.destroyed) throw socketClosed();
    if (target.connecting || !(target as Internal<Socket>)._handle) throw keepaliveError('ERR_KEEPALIVE_NOT_CONNECTED', 'The socket is not connected yet');
    handle = tcpHandleOf(target, 'socket');
  } else if (target instanceof Server) {
    if (!target.listening) throw keepaliveError('ERR_KEEPALIVE_NOT_CONNECTED', 'The server is not listening');
    handle = tcpHandleOf(target, 'server');
  } else {
    throw invalidArgType('target', 'an instance of net.Socket, tls.TLSSocket or net.Server', target);
  }
  const [onoff, keepalivetime, keepaliveinterval, keepalivecount, usertimeout] = native(() => binding.read(osSocketOf(target, handle, 'socket')));
  const known = (value: number): number | undefined => (value === UNSET ? undefined : value);
  return {
    onoff: onoff !== 0,
    keepalivetime: known(keepalivetime),
    keepaliveinterval: known(keepaliveinterval),
    keepalivecount: known(keepalivecount),
    usertimeout: known(usertimeout),
  };
}
