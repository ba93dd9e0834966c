import type { Socket } from 'node:net';
import { Handle, innermost, Internal, kHandleState, osSocketOf, write } from './handle';
import type { Settings } from './options';

/**
 * What happens when settings cannot be written after the call returned (on `connect`, or re-asserted after
 * another library's `setKeepAlive`). An explicit `applyKeepalive` destroys the socket with the error, as the
 * Delphi heartbeat code closes it; the process-wide default passes a policy that leaves the socket alone.
 */
export type OnError = (socket: Socket, error: Error) => void;

export const destroyOnError: OnError = (socket, error) => {
  socket.destroy(error);
};

/** What a TCP handle whose `setKeepAlive` we wrapped remembers. */
export interface HandleState {
  /** The settings in force, with an omitted count and usertimeout filled in from the kernel when they were applied. */
  settings: Settings;
  /** The socket on the handle; unknown for a moment while a server's accepted connection is being wrapped. */
  owner: Socket | undefined;
  onError: OnError;
  /** Calls that reached the handle, so the socket wrapper can tell when Node skipped it. */
  calls: number;
  original: (this: Handle, enable: boolean, ...rest: unknown[]) => number;
}

/** What a socket we configured remembers. */
export interface SocketState {
  /** The settings of the latest `applyKeepalive` on this socket (not its server's), as validated. */
  requested: Settings | undefined;
  /** `requested` with the omitted fields the kernel held when first written: what a reconnect writes again. */
  effective: Settings | undefined;
  /** Applied while connecting: written when it connects. */
  pending: boolean;
  /** The last word of a `setKeepAlive` since our apply (undefined: none): on a later connect, ours go in on or off as it said. */
  enabled: boolean | undefined;
  onError: OnError;
  original: Socket['setKeepAlive'];
  originalEmit: Socket['emit'] | undefined;
}

export const kSocketState = Symbol('tcp-keepalive.socket');

export type StickySocket = Internal<Socket> & { [kSocketState]?: SocketState };

function reassert(handle: Handle, state: HandleState): void {
  let sock: number;
  try {
    sock = osSocketOf(state.owner, handle, 'socket');
  } catch {
    return; // closed: no socket of ours left to keep the settings on, and never another one that got its number
  }
  try {
    write(sock, state.settings);
  } catch (error) {
    if (state.owner) state.onError(state.owner, error as Error);
  }
}

function stickyHandleSetKeepAlive(this: Handle, enable: boolean, ...rest: unknown[]): number {
  const state = this[kHandleState]!;
  state.calls++;
  const result = state.original.call(this, enable, ...rest);
  if (enable && state.settings.onoff) reassert(this, state);
  return result;
}

/** Node 26.4+ also takes `setKeepAlive({ enable, initialDelay, interval, count })`. */
type SetKeepAliveArgs = [enable?: boolean | { enable?: boolean; initialDelay?: number }, initialDelay?: number];

function stickySocketSetKeepAlive(this: StickySocket, ...args: SetKeepAliveArgs): Socket {
  const state = this[kSocketState]!;
  const [first, second] = args;
  const asObject = typeof first === 'object' && first !== null ? first : undefined;
  const enable = Boolean(asObject ? asObject.enable : first);
  const initialDelay = asObject ? asObject.initialDelay : second;
  state.enabled = enable;
  // Still connecting with ours to come: they go in on connect, on or off as this call says. Passing the call on
  // would have Node set libuv's 1 s x 10 probes first, and an omitted count would then be read as 10.
  if (this.connecting && state.requested?.onoff) return this;
  const handle = this._handle ? innermost(this._handle) : undefined;
  const handleState = handle?.[kHandleState];
  const calls = handleState?.calls;
  (state.original as (...a: SetKeepAliveArgs) => Socket).call(this, ...args);
  // Node skips the handle when the call repeats its own last one, which our apply may have overridden since.
  if (handleState && handleState.calls === calls && !this.destroyed) handle!.setKeepAlive!(enable, ~~((initialDelay ?? 0) / 1000));
  return this;
}

export function installSocketState(socket: StickySocket, onError: OnError): SocketState {
  let state = socket[kSocketState];
  if (!state) {
    state = { requested: undefined, effective: undefined, pending: false, enabled: undefined, onError, original: socket.setKeepAlive, originalEmit: undefined };
    socket[kSocketState] = state;
    socket.setKeepAlive = stickySocketSetKeepAlive;
  }
  return state;
}

/** Makes `settings` sticky on the handle: re-asserted after every `setKeepAlive(true, …)` that reaches it. */
export function installHandleState(owner: Socket | undefined, handle: Handle, settings: Settings, onError: OnError): void {
  const state = handle[kHandleState];
  if (state) {
    state.settings = settings;
    state.onError = onError;
    if (owner) state.owner = owner;
  } else if (handle.setKeepAlive) {
    handle[kHandleState] = { settings, owner, onError, calls: 0, original: handle.setKeepAlive };
    handle.setKeepAlive = stickyHandleSetKeepAlive;
  }
}
