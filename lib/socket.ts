import { isPipe, notTcp, osSocketOf, socketClosed, tcpHandleOf, write } from './handle';
import type { Settings } from './options';
import { installHandleState, installSocketState, kSocketState, StickySocket } from './sticky';
import { handleOf } from './target';

/** Writes settings to a connected socket and keeps them sticky. */
export function configureConnected(socket: StickySocket, settings: Settings, enabled = true): void {
  const handle = tcpHandleOf(socket, 'socket');
  write(osSocketOf(socket, handle, 'socket'), enabled ? settings : { ...settings, onoff: false });
  installHandleState(socket, handle, settings);
}

function onDeferredConnect(this: StickySocket): void {
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

/** The one per-socket apply path: now when connected, on `connect` (before the user's listeners) when still connecting. */
export function applyToSocket(socket: StickySocket, settings: Settings): void {
  if (socket.destroyed) throw socketClosed();
  if (socket.connecting || !handleOf(socket)) {
    if (socket._handle && isPipe(socket._handle)) throw notTcp('socket');
    const state = installSocketState(socket);
    if (!state.pending) socket.prependOnceListener('connect', onDeferredConnect);
    state.pending = settings;
    state.pendingOn = true;
    return;
  }
  configureConnected(socket, settings);
}
