/*
 * One connection model: every path (applyKeepalive on a socket or a server, setDefaultKeepalive) ends here,
 * and every hook in hooks.ts only reports an event to it. The rules:
 *
 *  Determinism   The five values the kernel holds for a connection are a function of the options in force for
 *                it, nothing else: not the path, not the order of events, not earlier defaults, not what a
 *                driver called before.
 *  Omitted       An omitted keepalivecount or usertimeout is what a new TCP socket holds (the system's
 *                default, read once per process); `onoff: false` is keepalive off with every field at the
 *                system's default. So every write sets all five.
 *  Precedence    applyKeepalive(socket) > applyKeepalive(server that accepted it) > the default (and its
 *                filter). Decided once per connection: on `connect` for a client, on `connection` for an
 *                accepted socket, before any listener runs.
 *  Anew          A reconnected socket is a new connection: its own settings if it has them, else the default,
 *                filter or nothing in force at that connect, exactly as for a new socket.
 *  Sticky        A later setKeepAlive(true, n) (drivers do this) leaves ours in place; setKeepAlive(false)
 *                switches keepalive off, as asked, until a setKeepAlive(true) brings ours back.
 *  Guest         The default never destroys a socket or throws into a driver: a failure is a warning.
 *
 * Linux accepted sockets inherit the listening socket's options: a listener we configured is an optimisation
 * that must give exactly what a write per connection would (see heldOnAccept).
 */
import type { Server, Socket } from 'node:net';
import type { NativeValues } from './binding';
import { deadChannel, KeepaliveDeadMessage, publishConfigure, publishError, publishSkip, Side, Source, valuesOf } from './channels';
import { platform, runtime, Settings } from './options';
import { isClusterWorker, osSocketOf, probe, queuedOn, read, resolveOmitted, systemUsertimeout, tcpHandleOf, write } from './os-socket';
import { tcpInfoOf } from './tcp-info';
import { Handle, handleOf, innermost, Internal, isAccepted, isPipe, notTcp, onPathWithoutHandle, socketClosed } from './target';

export type { Side, Source } from './channels';
export type OnError = (socket: Socket, error: Error) => void;

/** Settings with where they come from and what happens when they cannot be written later. */
export interface Wanted {
  settings: Settings;
  /** `settings` without an omitted usertimeout, for a socket that holds the system's already. */
  lean: Settings;
  source: Source;
  onError: OnError;
}

export function wanted(validated: Settings, source: Source, onError: OnError): Wanted {
  const { settings, lean } = resolveOmitted(validated);
  return { settings, lean, source, onError };
}

/** Whether this connection holds the system's usertimeout: nothing of ours on it, or ours with the system's. */
function systemUsertimeoutHeld(c: Connection): boolean {
  return !c.current || c.current.settings.usertimeout === systemUsertimeout();
}

export interface Default {
  wanted: Wanted;
  filter: ((socket: Socket, info: { side: Side }) => boolean) | undefined;
  /** What a worker thread started now needs to set the same default (undefined: it cannot, a filter function). */
  carry: unknown;
}

/** One record per TCP connection's net.Socket (see carrierOf): kept across its reconnects. */
interface Connection {
  /** applyKeepalive on this socket: wins over everything, on every connect. */
  own: Wanted | undefined;
  /** What the connection in place now got from us; undefined: left alone. */
  current: Wanted | undefined;
  /** The TCP handle `current` was decided for: a reconnect opens another one, and is decided anew. */
  handle: Handle | undefined;
  /** The last setKeepAlive(enable) on the socket: its off stands until an on. */
  enabled: boolean | undefined;
}

interface ServerRecord {
  own: Wanted | undefined;
  warned: boolean;
}

/** A listening socket we wrote: what it holds (undefined: what it held before), and connections still queued from before. */
interface Listener {
  owned: boolean;
  holds: Settings | undefined;
  before: NativeValues | undefined;
  stale: number;
}

const connections = new WeakMap<Socket, Connection>();
const servers = new WeakMap<Server, ServerRecord>();
const listeners = new WeakMap<Handle, Listener>();
let fallback: Default | undefined;

export function setDefault(next: Default | undefined): void {
  fallback = next;
}

export function currentDefault(): Default | undefined {
  return fallback;
}

function connectionOf(socket: Socket): Connection {
  let c = connections.get(socket);
  if (!c) connections.set(socket, (c = { own: undefined, current: undefined, handle: undefined, enabled: undefined }));
  return c;
}

function notTcpSocket(socket: Internal<Socket>): boolean {
  const handle = socket._handle && innermost(socket._handle);
  if (handle?.constructor?.name === 'TCP') return false; // (Node's own: no need to ask its server where it listens)
  return (handle ? isPipe(handle) : false) || onPathWithoutHandle(socket);
}

/** The default's settings for this connection, or undefined when there is none, it is not TCP, or the filter says no. */
function fromDefault(socket: Internal<Socket>, side: Side): Wanted | undefined {
  const d = fallback;
  if (!d) return undefined;
  if (notTcpSocket(socket)) return skip(socket, side, 'not-tcp');
  if (!d.filter) return d.wanted;
  try {
    return d.filter(socket, { side }) ? d.wanted : skip(socket, side, 'filter');
  } catch (error) {
    publishError(socket, side, 'default', error);
    d.wanted.onError(socket, error as Error);
    return skip(socket, side, 'filter');
  }
}

function skip(socket: Socket, side: Side, reason: 'filter' | 'not-tcp' | 'explicit'): undefined {
  publishSkip(socket, side, reason);
  return undefined;
}

/** Settings of the socket's own, or its server's: they win; a default in force then says it stood aside. */
function explicit(socket: Socket, side: Side, first: Wanted | undefined): Wanted | undefined {
  if (first && fallback) publishSkip(socket, side, 'explicit');
  return first;
}

/** Writes `wanted` to the connection now in place and records it; a failure goes to its onError. `fresh`: it holds the system's usertimeout. */
function configure(socket: Internal<Socket>, c: Connection, wanted: Wanted, side: Side, fresh: boolean): void {
  const s = fresh ? wanted.lean : wanted.settings;
  const on = s.onoff && c.enabled !== false;
  try {
    // Ours off after a setKeepAlive(true): Node's is in place, as it would be without us.
    if (s.onoff || c.enabled !== true) write(osSocketOf(socket, tcpHandleOf(socket, 'socket'), 'socket'), s, on);
    c.current = wanted;
  } catch (error) {
    publishError(socket, side, wanted.source, error);
    wanted.onError(socket, error as Error);
    return;
  }
  publishConfigure(socket, side, wanted.source, wanted.settings, on);
}

/** A client socket's `connect`, before any listener: the decision for this connection. */
export function connected(socket: Internal<Socket>): void {
  // (a 'connect' emitted by other code; or an accepted socket's, which Bun emits too: decided on `connection`)
  if (socket.destroyed || socket.connecting || isAccepted(socket)) return;
  const outer = handleOf(socket);
  let c = connections.get(socket);
  if (!outer || (!c && !fallback)) return;
  c ??= connectionOf(socket);
  const handle = innermost(outer);
  if (c.handle === handle) return; // decided already (a TLS socket over it said `connect` too)
  c.handle = handle;
  c.current = undefined;
  const wanted = explicit(socket, 'client', c.own) ?? fromDefault(socket, 'client');
  if (wanted) configure(socket, c, wanted, 'client', true); // a new connection: nothing has written its usertimeout
}

/** setKeepAlive on a socket (after Node's own): ours stay, or go off as asked. */
export function keepAliveCalled(socket: Internal<Socket>, enable: boolean): void {
  const c = connectionOf(socket);
  c.enabled = enable;
  const wanted = c.current;
  if (!wanted?.settings.onoff || socket.connecting || socket.destroyed || !socket._handle || innermost(socket._handle) !== c.handle) return;
  let sock: number;
  try {
    sock = osSocketOf(socket, c.handle, 'socket');
  } catch {
    return; // closed: nothing of ours left, and never another socket that got its number
  }
  const side = isAccepted(socket) ? 'server' : 'client';
  try {
    write(sock, enable ? REASSERT(wanted.settings) : OFF); // (setKeepAlive never touches the usertimeout)
  } catch (error) {
    publishError(socket, side, wanted.source, error);
    wanted.onError(socket, error as Error);
    return;
  }
  publishConfigure(socket, side, wanted.source, wanted.settings, enable);
}

/**
 * A connection is being destroyed with ETIMEDOUT (before its descriptor closes): if it holds settings of ours,
 * what the kernel says of its end (how long since the peer last answered; bytes still unacknowledged, from the
 * byte counters, as Linux zeroes tcpi_unacked at that moment) goes to tcp-keepalive:dead, after the socket's
 * own error has been emitted.
 */
export function died(socket: Internal<Socket>, error: Error): void {
  if (!deadChannel.hasSubscribers) return;
  const c = connections.get(socket);
  const outer = handleOf(socket);
  if (!c?.current || !outer || innermost(outer) !== c.handle) return;
  const wanted = c.current;
  let idleMs: number | undefined;
  let unacked: number | undefined;
  try {
    const info = tcpInfoOf(osSocketOf(socket, c.handle, 'socket'));
    idleMs = info.lastAckReceived ?? info.lastDataReceived;
    const { bytesSent, bytesRetransmitted, bytesAcked } = info;
    // (Linux counts retransmitted bytes in bytesSent, and the SYN as one acknowledged byte.)
    unacked = bytesSent !== undefined && bytesAcked !== undefined ? Math.max(0, bytesSent - (bytesRetransmitted ?? 0) - Math.max(0, bytesAcked - 1)) : info.unacked;
  } catch {
    // Not readable here (Wine, a runtime without the call): the message says so with undefined.
  }
  const message: KeepaliveDeadMessage = {
    socket,
    side: isAccepted(socket) ? 'server' : 'client',
    source: wanted.source,
    values: valuesOf(wanted.settings, c.enabled !== false && wanted.settings.onoff),
    error,
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    idleMs,
    unacked,
  };
  setImmediate(() => deadChannel.publish(message));
}

const OFF: Settings = Object.freeze({ onoff: false, keepalivetime: -1, keepaliveinterval: -1, keepalivecount: -1, usertimeout: -1 });
const REASSERT = (s: Settings): Settings => ({ ...s, usertimeout: -1 });

/**
 * applyKeepalive(socket): written now if connected (a failure throws, with nothing recorded), else on
 * `connect`; on every later connect too.
 */
export function applyToSocket(socket: Internal<Socket>, wanted: Wanted): void {
  if (socket.destroyed) throw socketClosed();
  const outer = socket.connecting ? undefined : handleOf(socket);
  if (!outer && notTcpSocket(socket)) throw notTcp('socket');
  const c = connectionOf(socket);
  if (outer) {
    const handle = tcpHandleOf(socket, 'socket');
    write(osSocketOf(socket, handle, 'socket'), systemUsertimeoutHeld(c) ? wanted.lean : wanted.settings);
    c.handle = handle;
    c.current = wanted;
    publishConfigure(socket, isAccepted(socket) ? 'server' : 'client', wanted.source, wanted.settings, wanted.settings.onoff);
  }
  c.own = wanted;
  c.enabled = undefined;
}

type ListeningServer = Internal<Server> & { _connectionKey?: string; keepAlive?: boolean; keepAliveInitialDelay?: number };

/**
 * Its options reach only this server's connections when this process created the listening socket itself
 * from a port ("4:…" / "6:…"), outside a cluster worker: a cluster worker shares the primary's socket, and a
 * socket passed in as a handle or descriptor may be shared with other processes.
 */
function listenerOf(server: ListeningServer, handle: Handle): Listener {
  let l = listeners.get(handle);
  if (!l) {
    const owned = platform.inheritsFromListener && runtime.descriptors && typeof handle.fd === 'number' && handle.fd >= 0 && /^[46]:/.test(server._connectionKey ?? '') && !isClusterWorker();
    listeners.set(handle, (l = { owned, holds: undefined, before: undefined, stale: 0 }));
  }
  return l;
}

/** What the listening socket should hold: the server's own settings, or a default without filter; else what it held before. */
function listenerTarget(record: ServerRecord | undefined): Settings | undefined {
  return record?.own?.settings ?? (fallback && !fallback.filter ? fallback.wanted.settings : undefined);
}

const fromSettings = (v: NativeValues): Settings => ({ onoff: v[0] !== 0, keepalivetime: v[1], keepaliveinterval: v[2], keepalivecount: v[3], usertimeout: v[4] });

/** Writes `target` (or what it held before) to the listening socket; the connections queued now hold the old. */
function retarget(server: ListeningServer, handle: Handle, l: Listener, target: Settings | undefined): void {
  try {
    const sock = osSocketOf(server, handle, 'server');
    l.before ??= read(sock);
    write(sock, target ?? fromSettings(l.before));
    l.holds = target;
    const queued = queuedOn(sock);
    l.stale = queued < 0 ? Infinity : queued;
  } catch {
    l.owned = false; // closed, or not ours to write: every connection is written as it comes
  }
}

const UNKNOWN = Symbol('unknown');

/**
 * What an accepted connection holds from the listening socket: settings of ours, undefined (what it would
 * hold without this package), or UNKNOWN (queued while the listener held something else). Then the listener
 * is brought to what the next connections should inherit.
 */
function heldOnAccept(server: ListeningServer, record: ServerRecord | undefined, socket: Socket): [Settings | undefined | typeof UNKNOWN, Listener | undefined] {
  const handle = server._handle;
  if (!handle || (socket as { server?: unknown }).server !== server) return [undefined, undefined];
  const l = listenerOf(server, handle);
  if (!l.owned) return l.before ? [UNKNOWN, l] : [undefined, undefined]; // (written once, then no more: anything may be inherited)
  let held: Settings | undefined | typeof UNKNOWN = l.holds;
  if (l.stale > 0) {
    l.stale--;
    held = UNKNOWN;
  }
  const target = listenerTarget(record);
  if (target !== l.holds) retarget(server, handle, l, target);
  return [held, l];
}

function warnNotTcp(server: Server, record: ServerRecord): void {
  if (record.warned) return;
  record.warned = true;
  const where = server.address();
  process.emitWarning(
    `applyKeepalive: this server listens on ${typeof where === 'string' ? `the Unix-domain socket or pipe ${where}` : 'a socket that is not TCP'}, which has no TCP keepalive; it and its connections are left as they are and keep working (reported once per server)`,
    { type: 'TcpKeepaliveWarning', code: 'TCP_KEEPALIVE_NOT_TCP' },
  );
}

/** A server's `connection`, before any listener: the decision for the connection it accepted (or was given). */
export function accepted(server: ListeningServer, socket: Internal<Socket>): void {
  const record = servers.get(server);
  if (!record && !fallback && !(server._handle && listeners.has(server._handle))) return; // (nothing of ours, and no listener we wrote)
  if (!socket || typeof socket !== 'object' || socket.destroyed) return;
  const outer = handleOf(socket);
  if (!outer) return;
  if (notTcpSocket(socket)) {
    if (record?.own) warnNotTcp(server, record);
    else if (fallback) publishSkip(socket, 'server', 'not-tcp');
    return;
  }
  const c = connectionOf(socket);
  c.handle = innermost(outer);
  c.current = undefined;
  const wanted = explicit(socket, 'server', c.own ?? record?.own) ?? fromDefault(socket, 'server');
  const [held, listener] = heldOnAccept(server, record, socket);
  const nodeKeepAlive = server.keepAlive === true; // Node's setKeepAlive on the handle came after the inheritance
  if (wanted) {
    if (held !== wanted.settings || nodeKeepAlive) return configure(socket, c, wanted, 'server', held === undefined);
    c.current = wanted;
    publishConfigure(socket, 'server', wanted.source, wanted.settings, wanted.settings.onoff);
  } else if (held !== undefined && listener?.before) {
    // Left alone, but it may hold a listener's settings of ours: back to what it would hold without us.
    try {
      write(osSocketOf(socket, c.handle, 'socket'), fromSettings(listener.before));
      if (nodeKeepAlive) c.handle.setKeepAlive?.(true, server.keepAliveInitialDelay ?? 0);
    } catch {
      // Closed meanwhile.
    }
  }
}

/** A server's `listening`: one that listens on a path, with settings of its own, says so once. */
export function listening(server: Server): void {
  const record = servers.get(server);
  if (record?.own && typeof server.address() === 'string') warnNotTcp(server, record);
}

/**
 * applyKeepalive(server): every connection it emits from now on. Throws, having changed nothing, when the
 * system cannot take the settings or the server listens on something that is not TCP.
 */
export function applyToServer(server: ListeningServer, wanted: Wanted): void {
  probe(wanted.settings);
  const handle = server.listening ? handleOf(server) : undefined;
  if (server.listening && (typeof server.address() === 'string' || (handle && isPipe(handle)))) throw notTcp('server');
  let record = servers.get(server);
  if (!record) servers.set(server, (record = { own: undefined, warned: false }));
  record.own = wanted;
  // Now, not at the next connection: the handshakes queued meanwhile are counted as the listener's old ones.
  if (handle && server._handle === handle) {
    const l = listenerOf(server, handle);
    if (l.owned && l.holds !== wanted.settings) retarget(server, handle, l, wanted.settings);
  }
}
