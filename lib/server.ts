import type { Server } from 'node:net';
import { binding, NativeValues, UNSET } from './binding';
import type { CodedError } from './errors';
import { acceptedOsSocket, Handle, innermost, Internal, isPipe, kHandleState, notTcp, osSocketOf, probe, read, write } from './handle';
import { platform, Settings } from './options';
import { applyToSocket, withOmittedResolved } from './socket';
import { destroyOnError, installHandleState, installSocketState, OnError, StickySocket } from './sticky';
import { handleOf } from './target';

interface ServerState {
  settings: Settings;
  onError: OnError;
  /** Configured by setDefaultKeepalive, not by applyKeepalive: the default may change it or hand it back. */
  byDefault: boolean;
  /** The not-TCP warning was given. */
  warned: boolean;
  /** The connection the listening handle just accepted, which Node emits next: its settings, or its failure. */
  accepted: Handle | undefined;
  acceptedSettings: Settings | undefined;
  acceptError: Error | undefined;
}

/**
 * How an accepted connection gets the settings. `write`: one full apply each. `verify`: Linux copies the
 * listening socket's options into each connection when its handshake completes, so those already queued when
 * the listener was configured hold what it held before: each of them (as many as the kernel said were queued)
 * is read and, if it differs, written; every later one holds ours (`inherited`: nothing to do). Where the
 * kernel does not say how many wait, the queue being FIFO, the first one read to hold ours ends it.
 */
type Mode = 'write' | 'verify' | 'inherited';

interface ListenerState {
  server: ServerWithState;
  /** The server settings this listener was prepared for. */
  settings: Settings;
  mode: Mode;
  /** In `verify`: the connections queued before the listener was configured still to check; -1: unknown. */
  toVerify: number;
  /** `settings` with the omitted fields resolved (from the listener in `verify`, from the first connection in `write`). */
  effective: Settings | undefined;
  original: OnConnection;
  /** What the listening socket held before the default configured it, to write back when the default lets go. */
  before: NativeValues | undefined;
}

type OnConnection = (this: ListenerHandle, err: number, clientHandle?: Handle) => unknown;
type ListenerHandle = Handle & { onconnection?: OnConnection; [kListener]?: ListenerState };

const kServerState = Symbol('tcp-keepalive.server');
const kServerEmit = Symbol('tcp-keepalive.server-emit');
const kListener = Symbol('tcp-keepalive.listener');

type ServerWithState = Internal<Server> & { [kServerState]?: ServerState; [kServerEmit]?: Server['emit']; _connectionKey?: string };

const NOT_TCP_WARNING = 'TCP_KEEPALIVE_NOT_TCP';

function warnNotTcp(server: ServerWithState, state: ServerState): void {
  if (state.warned) return;
  state.warned = true;
  const where = server.address();
  process.emitWarning(
    `applyKeepalive: this server listens on ${typeof where === 'string' ? `the Unix-domain socket or pipe ${where}` : 'a socket that is not TCP'}, which has no TCP keepalive; it and its connections are left as they are and keep working (reported once per server)`,
    { type: 'TcpKeepaliveWarning', code: NOT_TCP_WARNING },
  );
}

let clusterWorker: boolean | undefined;

export function isClusterWorker(): boolean {
  clusterWorker ??= (require('node:cluster') as { isWorker?: boolean }).isWorker === true;
  return clusterWorker;
}

/**
 * The listener's options reach only this server's connections when this process created the listening socket
 * itself from a port (`_connectionKey` "4:…" or "6:…"), outside a cluster worker. A cluster worker shares the
 * primary's socket with every other worker (or gets round-robin connections from it), and a socket passed in
 * as a handle or descriptor may be shared with other processes: configuring it would change their connections.
 */
function ownsListener(server: ServerWithState, handle: Handle): boolean {
  return (
    platform.inheritsFromListener &&
    typeof handle.fd === 'number' &&
    handle.fd >= 0 &&
    typeof server._connectionKey === 'string' &&
    /^[46]:/.test(server._connectionKey) &&
    !isClusterWorker()
  );
}

function queuedOn(sock: number): number {
  try {
    return binding.queued(sock);
  } catch {
    return -1;
  }
}

/** The kernel holds `s` (values read in ms, rounded as the kernel rounds). */
function holds(v: NativeValues, s: Settings): boolean {
  if ((v[0] !== 0) !== s.onoff) return false;
  if (!s.onoff) return true;
  const up = (ms: number, unit: number): number => Math.ceil(ms / unit) * unit;
  return (
    v[1] === up(s.keepalivetime, platform.unit) &&
    v[2] === up(s.keepaliveinterval, platform.unit) &&
    (s.keepalivecount === UNSET || v[3] === s.keepalivecount) &&
    (s.usertimeout === UNSET || v[4] === up(s.usertimeout, platform.usertimeoutUnit))
  );
}

/**
 * Runs for each connection the listening socket accepts, before Node wraps it in a net.Socket. The handle is
 * left as it is until Node emits it (its own properties first keep its shape, and Node's hot paths fast),
 * except under Node's `keepAlive` option, whose `setKeepAlive` on the handle comes before the emit.
 */
function accepted(listener: ListenerState, clientHandle: Handle): void {
  const server = listener.server;
  const state = server[kServerState];
  if (!state) return;
  state.accepted = undefined;
  if (listener.settings !== state.settings) return;
  if (isPipe(clientHandle)) return warnNotTcp(server, state);
  const early = (server as Server & { keepAlive?: boolean }).keepAlive === true;
  try {
    if (listener.mode !== 'inherited') {
      const sock = acceptedOsSocket(clientHandle, early);
      if (listener.mode === 'verify') {
        const held = holds(read(sock), listener.effective!);
        if (!held) write(sock, listener.effective!);
        if (listener.toVerify < 0 ? held : --listener.toVerify === 0) listener.mode = 'inherited';
      } else {
        listener.effective ??= withOmittedResolved(state.settings, sock, undefined);
        write(sock, state.settings);
      }
    }
    if (early) {
      acceptedOsSocket(clientHandle, true);
      installHandleState(undefined, clientHandle, listener.effective!, state.onError);
    }
    state.acceptError = undefined;
  } catch (error) {
    state.acceptError = error as Error;
  }
  state.accepted = clientHandle;
  state.acceptedSettings = listener.effective;
}

/**
 * The listening handle's `onconnection`, which Node calls for every accepted connection (a cluster worker's
 * round-robin handle too): the settings are in place before Node's own `keepAlive` option, and before every
 * `connection` listener, whatever order they were added in.
 */
function onconnectionWithKeepalive(this: ListenerHandle, err: number, clientHandle?: Handle): unknown {
  const listener = this[kListener]!;
  if (!err && clientHandle) accepted(listener, clientHandle);
  return listener.original.call(this, err, clientHandle);
}

/** Sets the listener up for `state.settings`; throws, having changed nothing, if it is not TCP. */
function prepareListener(server: ServerWithState, state: ServerState): void {
  if (typeof server.address() === 'string') throw notTcp('server');
  const handle = handleOf(server) as ListenerHandle | undefined;
  if (!handle) return;
  if (isPipe(handle)) throw notTcp('server');
  const current = handle[kListener];
  if (current && current.settings === state.settings) return;
  let mode: Mode = 'write';
  let toVerify = -1;
  let effective: Settings | undefined;
  let before = current?.before;
  if (ownsListener(server, handle)) {
    const sock = osSocketOf(server, handle, 'server');
    if (state.byDefault) before ??= read(sock);
    effective = withOmittedResolved(state.settings, sock, undefined);
    write(sock, state.settings);
    // Those queued now hold what the listener held before (a connection completing meanwhile, ours: counted, harmless).
    toVerify = queuedOn(sock);
    mode = toVerify === 0 ? 'inherited' : 'verify';
  }
  const original = current ? current.original : handle.onconnection;
  if (typeof original !== 'function') return; // no handle to hook (Bun): the `connection` listener applies per socket
  handle[kListener] = { server, settings: state.settings, mode, toVerify, effective, original, before };
  if (!current) handle.onconnection = onconnectionWithKeepalive;
}

/** On every `listening`: a server closed and listening again has a new listening socket. */
function onServerListening(server: ServerWithState): void {
  let state = server[kServerState];
  if (state?.byDefault) {
    // Closed while the default had it: it listens again under the default in force now, or none.
    if (!currentDefault) {
      server[kServerState] = undefined;
      return;
    }
    if (state.settings !== currentDefault.settings) {
      state = { ...state, settings: currentDefault.settings, onError: currentDefault.onError };
      server[kServerState] = state;
    }
    defaultServers.add(server);
  }
  if (!state) return;
  try {
    prepareListener(server, state);
  } catch (error) {
    if ((error as CodedError).code === 'ERR_KEEPALIVE_NOT_TCP') warnNotTcp(server, state);
    // Otherwise the listener could not be configured: the `connection` listener configures each socket.
  }
}

/**
 * Every `connection` the server emits, before any of its listeners (whatever order they were added in, so a
 * listener's own `setKeepAlive` goes through the sticky wrapper). Names the socket on the state its handle got
 * on accept; configures a connection the listening handle did not hand us: one emitted by other code
 * (`server.emit('connection', s)`, sticky-session balancers), or from a server with no handle to hook.
 */
function onServerConnection(server: ServerWithState, socket: StickySocket): void {
  const state = server[kServerState];
  if (!state || !socket || socket.destroyed) return;
  const outer = handleOf(socket);
  if (!outer) return;
  const handle = innermost(outer) as Handle;
  if (handle === state.accepted) {
    state.accepted = undefined;
    const failed = state.acceptError;
    if (failed) {
      state.acceptError = undefined;
      state.onError(socket, failed);
      return;
    }
    acceptedOsSocket(handle, true);
    installHandleState(socket, handle, state.acceptedSettings!, state.onError);
  }
  const own = handle[kHandleState];
  if (own) {
    own.owner ??= socket;
    installSocketState(socket, own.onError);
    return;
  }
  if (isPipe(handle)) return warnNotTcp(server, state);
  try {
    applyToSocket(socket, state.settings, state.onError);
  } catch (error) {
    // Not TCP (a runtime whose handles do not say so until asked): the connection is left alone, as on Node.
    if ((error as CodedError).code === 'ERR_KEEPALIVE_NOT_TCP') return warnNotTcp(server, state);
    state.onError(socket, error as Error);
  }
}

/** The server's own `emit`, not listeners: it runs first, and `removeAllListeners()` keeps it. */
function emitWithKeepalive(this: ServerWithState, event: string | symbol, socket?: unknown): boolean {
  if (event === 'connection') onServerConnection(this, socket as StickySocket);
  else if (event === 'listening') onServerListening(this);
  else if (event === 'close') defaultServers.delete(this);
  // eslint-disable-next-line prefer-rest-params
  return (this[kServerEmit] as (...args: unknown[]) => boolean).apply(this, arguments as unknown as unknown[]);
}

/**
 * Every connection the server emits from now on gets the settings before the server's `connection` listeners
 * run. Throws, having installed nothing, when the server already listens on something that is not TCP.
 */
export function applyToServer(server: ServerWithState, settings: Settings, onError: OnError = destroyOnError, fromDefault = false): void {
  probe(settings);
  const existing = server[kServerState];
  const state: ServerState = { settings, onError, byDefault: fromDefault, warned: existing?.warned ?? false, accepted: undefined, acceptedSettings: undefined, acceptError: undefined };
  if (server.listening) prepareListener(server, state);
  server[kServerState] = state;
  if (fromDefault) defaultServers.add(server);
  else defaultServers.delete(server);
  if (server[kServerEmit]) return; // hooked before (a server the default handed back has no state, but its hook)
  server[kServerEmit] = server.emit;
  server.emit = emitWithKeepalive as Server['emit'];
}

/** Servers configured by the process-wide default (until they close): it changes them, or hands them back. */
const defaultServers = new Set<ServerWithState>();
let currentDefault: { settings: Settings; onError: OnError } | undefined;

/**
 * The default takes over a server the first time it accepts a connection, so that the server's later
 * connections get the settings as an applyKeepalive(server) would (on Linux, from the listening socket: no
 * system call per connection). A server with settings of its own is left to them. Throws, having changed
 * nothing, when the listener cannot be configured; the caller then configures each connection instead.
 */
export function adoptServer(server: ServerWithState, settings: Settings, onError: OnError): void {
  const state = server[kServerState];
  if (state && (!state.byDefault || state.settings === settings)) return;
  applyToServer(server, settings, onError, true);
}

/** The default changed (new settings) or ended (undefined): every server it took over follows. */
export function updateDefaultServers(settings: Settings | undefined, onError: OnError): void {
  currentDefault = settings && { settings, onError };
  for (const server of [...defaultServers]) {
    if (settings) {
      try {
        applyToServer(server, settings, onError, true);
        continue;
      } catch {
        // This server cannot take them from its listener any more: handed back; its connections are then configured one by one.
      }
    }
    release(server);
  }
}

/**
 * Hands a server back as it was: no settings for connections it accepts from now on, and its listening socket
 * holds again what it held before (connections whose handshake completed before this keep the default's).
 */
function release(server: ServerWithState): void {
  defaultServers.delete(server);
  if (!server[kServerState]?.byDefault) return;
  server[kServerState] = undefined;
  const handle = handleOf(server) as ListenerHandle | undefined;
  const listener = handle?.[kListener];
  if (!handle || !listener) return;
  listener.settings = RELEASED;
  const before = listener.before;
  listener.before = undefined;
  if (!before || listener.mode === 'write') return;
  try {
    write(osSocketOf(server, handle, 'server'), { onoff: before[0] !== 0, keepalivetime: before[1], keepaliveinterval: before[2], keepalivecount: before[3], usertimeout: before[4] });
  } catch {
    // Closed meanwhile: nothing left to hand back.
  }
}

/** The settings of a listener whose server was handed back: equal to no server's, so it is prepared again if needed. */
const RELEASED: Settings = Object.freeze({ onoff: false, keepalivetime: UNSET, keepaliveinterval: UNSET, keepalivecount: UNSET, usertimeout: UNSET });
