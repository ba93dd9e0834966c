import { Socket } from 'node:net';
import { types } from 'node:util';
import { NativeValues, UNSET } from './binding';
import { innermost, isPipe, kHandleState, notTcp, osSocketOf, read, socketClosed, systemDefaults, tcpHandleOf, write } from './handle';
import type { Settings } from './options';
import { destroyOnError, installHandleState, installSocketState, kSocketState, OnError, SocketState, StickySocket } from './sticky';
import { handleOf, notATarget, onPathWithoutHandle } from './target';

/**
 * An omitted count or usertimeout means "as it is": the value in force now, which is then kept, so a driver's
 * later `setKeepAlive(true, n)` (libuv's 10 probes) is undone to it. A field the kernel cannot read (MPTCP)
 * stays UNSET: left alone, and not re-asserted.
 */
export function withOmittedResolved(requested: Settings, sock: number, previous: Settings | undefined): Settings {
  if (!requested.onoff || (requested.keepalivecount !== UNSET && requested.usertimeout !== UNSET)) return requested;
  let { keepalivecount, usertimeout } = requested;
  if (previous?.onoff) {
    if (keepalivecount === UNSET) keepalivecount = previous.keepalivecount;
    if (usertimeout === UNSET) usertimeout = previous.usertimeout;
  }
  if (keepalivecount === UNSET || usertimeout === UNSET) {
    try {
      const values = read(sock);
      if (keepalivecount === UNSET) keepalivecount = values[3];
      if (usertimeout === UNSET) usertimeout = values[4];
    } catch {
      // Not readable here: left as it is, and not re-asserted.
    }
  }
  return { ...requested, keepalivecount, usertimeout };
}

/**
 * Writes settings to a connected socket and keeps them sticky; returns them with the omitted fields resolved.
 * Everything that can fail without changing the socket (finding it, reading it) happens before the write.
 * `effective` (a reconnect) is written as it is, omitted fields included.
 */
function configure(socket: StickySocket, requested: Settings, effective: Settings | undefined, enabled: boolean | undefined, onError: OnError): Settings {
  const handle = tcpHandleOf(socket, 'socket');
  const sock = osSocketOf(socket, handle, 'socket');
  const resolved = effective ?? withOmittedResolved(requested, sock, handle[kHandleState]?.settings);
  const written = effective ?? requested;
  if (written.onoff) {
    write(sock, written);
    // A setKeepAlive(false) since our apply: ours are in place, switched off until a setKeepAlive(true).
    if (enabled === false) write(sock, { ...written, onoff: false });
  } else if (enabled !== true) {
    write(sock, written); // (ours off, and no setKeepAlive(true) since: Node has applied one, as it would without us)
  }
  installHandleState(socket, handle, resolved, onError);
  return resolved;
}

/**
 * A socket still connecting: an omitted count or usertimeout is the value in force now, not what the socket
 * holds when it connects (a `setKeepAlive(true, n)` before this call, which libuv applies when it creates the
 * descriptor, would make the count 10). Read from its descriptor if it has one, else from a new socket.
 */
function omittedAsNow(socket: StickySocket, s: Settings): Settings {
  if (!s.onoff || (s.keepalivecount !== UNSET && s.usertimeout !== UNSET)) return s;
  const handle = socket._handle ? innermost(socket._handle) : undefined;
  let now: NativeValues | undefined;
  if (handle && typeof handle.fd === 'number' && handle.fd >= 0 && handle.constructor?.name === 'TCP') {
    try {
      now = read(handle.fd);
    } catch {
      now = undefined;
    }
  } else {
    now = systemDefaults();
  }
  if (!now) return s;
  return { ...s, keepalivecount: s.keepalivecount === UNSET ? now[3] : s.keepalivecount, usertimeout: s.usertimeout === UNSET ? now[4] : s.usertimeout };
}

/** On every `connect` of a socket we were given: settings applied while it connected, or again after a reconnect. */
function onConnect(socket: StickySocket, state: SocketState): void {
  if (!state.requested || socket.destroyed || socket.connecting) return; // (a 'connect' emitted by other code)
  const outer = handleOf(socket);
  if (!outer) return;
  if (!state.pending && innermost(outer)[kHandleState]) return;
  state.pending = false;
  try {
    state.effective = configure(socket, state.requested, state.effective, state.enabled, state.onError);
  } catch (error) {
    state.onError(socket, error as Error);
  }
}

/**
 * The hook on `connect`: the socket's own `emit`, not a listener, so a driver's `removeAllListeners('connect')`
 * cannot take it away, and it runs before every listener. It stays for the socket's life: `socket.connect()`
 * after `destroy()` opens a new handle, which gets the settings again.
 */
function emitWithKeepalive(this: StickySocket, event: string | symbol): boolean {
  const state = this[kSocketState]!;
  if (event === 'connect') onConnect(this, state);
  // eslint-disable-next-line prefer-rest-params
  return (state.originalEmit as (...args: unknown[]) => boolean).apply(this, arguments as unknown as unknown[]);
}

function hookConnect(socket: StickySocket, state: SocketState): void {
  if (state.originalEmit) return;
  state.originalEmit = socket.emit;
  socket.emit = emitWithKeepalive as Socket['emit'];
}

/**
 * The one per-socket apply path: now when connected, on `connect` (before the user's listeners) when still
 * connecting, and again on every later `connect` of the same socket. Throws, having changed nothing, when the
 * socket cannot take the settings now; `onError` handles what fails later.
 */
export function applyToSocket(socket: StickySocket, settings: Settings, onError: OnError = destroyOnError): void {
  if (socket.destroyed) throw socketClosed();
  const connecting = socket.connecting || !handleOf(socket);
  if (connecting && ((socket._handle && isPipe(innermost(socket._handle))) || onPathWithoutHandle(socket))) throw notTcp('socket');
  const effective = connecting ? undefined : configure(socket, settings, undefined, undefined, onError);
  const state = installSocketState(socket, onError);
  state.requested = connecting ? omittedAsNow(socket, settings) : settings;
  state.effective = effective;
  state.pending = connecting;
  state.enabled = undefined;
  state.onError = onError;
  hookConnect(socket, state);
}

const kNeverEmitted = Symbol('tcp-keepalive.never-emitted');
function noop(): void {}

/**
 * The socket behind a proxy: http2's `session.socket` forwards reads and EventEmitter calls to the real socket
 * but throws ERR_HTTP2_NO_SOCKET_MANIPULATION on `setKeepAlive` and `emit`. An EventEmitter method returns its
 * real `this`; removing a listener that was never added changes nothing.
 */
export function realSocket(socket: Socket): StickySocket {
  if (!types.isProxy(socket)) return carrierOf(socket);
  let real: unknown;
  try {
    real = socket.removeListener(kNeverEmitted, noop);
  } catch {
    real = undefined;
  }
  if (real instanceof Socket && !types.isProxy(real)) return carrierOf(real);
  if (real === socket) return socket; // a proxy that passes everything through: used as it is
  throw notATarget(socket);
}

/**
 * The TCP socket that carries a TLS socket built over a stream: `tls.connect({ socket })` given a net.Socket
 * with no handle yet (not connected), or `new tls.TLSSocket(stream)`, wraps that stream in a JSStreamSocket
 * (a JSStream handle under the TLSWrap, the stream in its `stream`). When the stream is a net.Socket, it is
 * the TCP socket underneath, and the target. Anything else is returned as it is.
 */
function carrierOf(socket: StickySocket): StickySocket {
  let current = socket;
  for (let depth = 0; depth < 8; depth++) {
    let handle = current._handle;
    if (!handle) return current;
    let wrap: unknown;
    while (handle._parent) {
      wrap = handle._parentWrap;
      handle = handle._parent;
    }
    if (handle.constructor?.name !== 'JSStream') return current;
    const stream = (wrap as { stream?: unknown } | undefined)?.stream;
    if (!(stream instanceof Socket) || types.isProxy(stream) || stream === current) return current;
    current = stream;
  }
  return current;
}
