import * as diagnosticsChannel from 'node:diagnostics_channel';
import { Server, Socket } from 'node:net';
import { invalidArgType } from './errors';
import { innermost, isPipe, kHandleState } from './handle';
import { KeepaliveOptions, Settings, validate } from './options';
import { adoptServer, updateDefaultServers } from './server';
import { applyToSocket } from './socket';
import { kSocketState, OnError, StickySocket } from './sticky';

/** Which end of the connection this process is: it connected (`client`) or a server accepted it (`server`). */
export interface DefaultKeepaliveSocketInfo {
  side: 'client' | 'server';
}

export interface DefaultKeepaliveConfig {
  /**
   * Runs once the addresses are known (`socket.remoteAddress`, `socket.remotePort`); a falsy return
   * leaves that socket alone. It runs on every TCP connection in the process, so keep it cheap.
   */
  filter?: (socket: Socket, info: DefaultKeepaliveSocketInfo) => boolean;
}

interface Default {
  settings: Settings;
  filter: DefaultKeepaliveConfig['filter'];
  warned: boolean;
  /** What fails later (a sticky re-assert after a driver's setKeepAlive): a warning, never a destroyed socket. */
  onError: OnError;
}

const kSeen = Symbol('tcp-keepalive.default-seen');
const kByDefault = Symbol('tcp-keepalive.by-default');

/** kSeen: accepted, or waiting for `connect`; kByDefault: configured by the default (so a reconnect of the same socket gets it again). */
type GuestSocket = StickySocket & { [kSeen]?: boolean; [kByDefault]?: boolean };

let current: Default | undefined;

/**
 * Node 22+ publishes `net.client.socket` for every client socket. Node 20 publishes it only from
 * `net.connect()`, not from `new Socket().connect()` (pg) nor `tls.connect()`: there every client goes
 * through `Socket.prototype.connect`, which is wrapped while a default is set, instead of the channel.
 * Bun publishes neither channel (it reports Node 24): its clients are reached the same way.
 */
const channelSeesEveryClient = Number(process.versions.node.split('.')[0]) >= 22 && process.versions.bun === undefined;

const WARNING_CODE = 'TCP_KEEPALIVE_DEFAULT_FAILED';

function warnOnce(state: Default, error: unknown): void {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (state.warned || code === 'ERR_KEEPALIVE_NOT_TCP' || code === 'ERR_SOCKET_CLOSED') return;
  state.warned = true;
  const reason = error instanceof Error ? `${(error as NodeJS.ErrnoException).code ?? error.name}: ${error.message}` : String(error);
  process.emitWarning(`setDefaultKeepalive could not configure a socket, which was left as it was and keeps working (reported once): ${reason}`, {
    type: 'TcpKeepaliveWarning',
    code: WARNING_CODE,
  });
}

/** The socket already has settings of its own (applyKeepalive on it, or on the server that accepted it): they win. */
function hasOwnSettings(socket: GuestSocket): boolean {
  const state = socket[kSocketState];
  if (state?.pending || (state && !socket[kByDefault])) return true;
  const handle = socket._handle;
  return handle ? innermost(handle)[kHandleState] !== undefined : false;
}

/** A connected socket: filter, then the one per-socket apply path. Never throws, never destroys. */
function configure(socket: GuestSocket, side: DefaultKeepaliveSocketInfo['side']): void {
  const state = current;
  if (!state || socket.destroyed || hasOwnSettings(socket)) return;
  const handle = socket._handle;
  if (!handle || isPipe(innermost(handle))) return;
  try {
    if (state.filter && !state.filter(socket, { side })) return;
    applyToSocket(socket, state.settings, state.onError);
    socket[kByDefault] = true;
  } catch (error) {
    warnOnce(state, error);
  }
}

function onClientConnect(this: GuestSocket): void {
  this[kSeen] = false;
  configure(this, 'client');
}

function onClientSocket(socket: GuestSocket): void {
  if (!current || socket[kSeen]) return;
  if (socket.connecting || !socket._handle) {
    socket[kSeen] = true;
    socket.prependOnceListener('connect', onClientConnect);
  } else {
    configure(socket, 'client');
  }
}

function onClientMessage(message: unknown): void {
  onClientSocket((message as { socket: GuestSocket }).socket);
}

/**
 * Node publishes each accepted socket after the server's `connection` listeners. The first one from a server
 * is configured here; without a filter the server is then taken over as by applyKeepalive(server), so its
 * later connections get the settings before those listeners run (and, on Linux, from the listening socket).
 */
function onServerMessage(message: unknown): void {
  const socket = (message as { socket: GuestSocket & { server?: unknown } }).socket;
  const state = current;
  if (!state || socket[kSeen]) return;
  socket[kSeen] = true;
  const server = socket.server;
  const handle = socket._handle;
  if (!state.filter && server instanceof Server && handle && !isPipe(innermost(handle))) {
    try {
      adoptServer(server, state.settings, state.onError);
    } catch (error) {
      warnOnce(state, error); // its connections are configured one by one, as this one
    }
  }
  configure(socket, 'server');
}

const originalConnect = Socket.prototype.connect;

const connectWithDefault = function connect(this: GuestSocket, ...args: unknown[]): Socket {
  const result = (originalConnect as (...a: unknown[]) => Socket).apply(this, args);
  onClientSocket(this);
  return result;
} as typeof Socket.prototype.connect;

function install(): void {
  diagnosticsChannel.subscribe('net.server.socket', onServerMessage);
  if (channelSeesEveryClient) diagnosticsChannel.subscribe('net.client.socket', onClientMessage);
  else Socket.prototype.connect = connectWithDefault;
}

function uninstall(): void {
  diagnosticsChannel.unsubscribe('net.server.socket', onServerMessage);
  if (channelSeesEveryClient) diagnosticsChannel.unsubscribe('net.client.socket', onClientMessage);
  else if (Socket.prototype.connect === connectWithDefault) Socket.prototype.connect = originalConnect;
}

/**
 * Sets keepalive options for every TCP socket the process connects or accepts from now on, however it
 * was created (drivers, agents, pools, reconnects); `null` stops it for sockets connected afterwards.
 * Options are checked here, with the same errors as `applyKeepalive`; nothing is installed if they throw.
 */
export function setDefaultKeepalive(options: KeepaliveOptions | null, config: DefaultKeepaliveConfig = {}): void {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw invalidArgType('config', 'of type object', config);
  const filter = config.filter;
  if (filter !== undefined && typeof filter !== 'function') throw invalidArgType('config.filter', 'of type function', filter);
  if (options === null) {
    if (current) uninstall();
    current = undefined;
    updateDefaultServers(undefined, () => {});
    return;
  }
  const settings = validate(options);
  if (!current) install();
  const state: Default = { settings, filter, warned: false, onError: (_socket, error) => warnOnce(state, error) };
  current = state;
  // The servers it took over follow: the new settings, or handed back when a filter must see each connection.
  updateDefaultServers(filter ? undefined : settings, state.onError);
}
