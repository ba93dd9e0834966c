import type { Socket } from 'node:net';
import { Handle, innermost, Internal, kHandleState, kOsSocket, write } from './handle';
import type { Settings } from './options';

/** What a TCP handle whose `setKeepAlive` we wrapped remembers. */
export interface HandleState {
  settings: Settings;
  owner: Socket;
  original: (this: Handle, enable: boolean, ...rest: unknown[]) => number;
}

/** What a socket whose `setKeepAlive` we wrapped remembers, and its deferred settings while it connects. */
export interface SocketState {
  pending: Settings | undefined;
  pendingOn: boolean;
  original: Socket['setKeepAlive'];
}

export const kSocketState = Symbol('tcp-keepalive.socket');

export type StickySocket = Internal<Socket> & { [kSocketState]?: SocketState };

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

function stickySocketSetKeepAlive(this: StickySocket, ...args: SetKeepAliveArgs): Socket {
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

export function installSocketState(socket: StickySocket): SocketState {
  let state = socket[kSocketState];
  if (!state) {
    state = { pending: undefined, pendingOn: true, original: socket.setKeepAlive };
    socket[kSocketState] = state;
    socket.setKeepAlive = stickySocketSetKeepAlive;
  }
  return state;
}

export function installHandleState(socket: StickySocket, handle: Handle, settings: Settings): void {
  const state = handle[kHandleState];
  if (state) {
    state.settings = settings;
  } else if (handle.setKeepAlive) {
    handle[kHandleState] = { settings, owner: socket, original: handle.setKeepAlive };
    handle.setKeepAlive = stickyHandleSetKeepAlive;
  }
  installSocketState(socket).pending = undefined;
}
