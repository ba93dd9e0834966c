import type { Server } from 'node:net';
import { Internal, kOsSocket, osSocketOf, tcpHandleOf, write } from './handle';
import { platform, Settings } from './options';
import { configureConnected } from './socket';
import { installHandleState, StickySocket } from './sticky';

interface ServerState {
  settings: Settings;
  listenerApplied: boolean;
}

const kServerState = Symbol('tcp-keepalive.server');

type ServerWithState = Internal<Server> & { [kServerState]?: ServerState };

function onServerConnection(this: ServerWithState, socket: StickySocket): void {
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

function applyToListener(server: ServerWithState, state: ServerState): void {
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

function onServerListening(this: ServerWithState): void {
  const state = this[kServerState];
  if (!state) return;
  try {
    applyToListener(this, state);
  } catch (error) {
    this.close();
    this.emit('error', error);
  }
}

/** Every connection the server accepts gets the settings before the server's `connection` listeners run. */
export function applyToServer(server: ServerWithState, settings: Settings): void {
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
