import type { Socket } from 'node:net';
import { Default, setDefault, wanted } from './connection';
import { invalidArgType } from './errors';
import { specOf } from './filter';
import { KeepaliveOptions, validate } from './options';

/** Which end of the connection this process is: it connected (`client`) or a server accepted it (`server`). */
export interface DefaultKeepaliveSocketInfo {
  side: 'client' | 'server';
}

export interface DefaultKeepaliveConfig {
  /**
   * Runs once per connection, once the addresses are known (`socket.remoteAddress`, `socket.remotePort`); a
   * falsy return leaves that connection alone. It runs on every TCP connection in the process, so keep it
   * cheap. A function cannot cross into worker threads: threads started while a filter is set get no default,
   * unless it was made by `filterFrom(spec)`, whose spec is carried there.
   */
  filter?: (socket: Socket, info: DefaultKeepaliveSocketInfo) => boolean;
}

const WARNING_CODE = 'TCP_KEEPALIVE_DEFAULT_FAILED';

function warnOnce(state: { warned: boolean }, error: unknown): void {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (state.warned || code === 'ERR_KEEPALIVE_NOT_TCP' || code === 'ERR_SOCKET_CLOSED') return;
  state.warned = true;
  const reason = error instanceof Error ? `${(error as NodeJS.ErrnoException).code ?? error.name}: ${error.message}` : String(error);
  process.emitWarning(`setDefaultKeepalive could not configure a socket, which was left as it was and keeps working (reported once): ${reason}`, {
    type: 'TcpKeepaliveWarning',
    code: WARNING_CODE,
  });
}

/**
 * Sets keepalive options for every TCP connection the process connects or accepts from now on, however it
 * was created (drivers, agents, pools, reconnects), and in worker threads started from now on; `null` stops
 * it for connections made afterwards. Options are checked here, with the same errors as `applyKeepalive`;
 * nothing changes if they throw.
 */
export function setDefaultKeepalive(options: KeepaliveOptions | null, config: DefaultKeepaliveConfig = {}): void {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw invalidArgType('config', 'of type object', config);
  const filter = config.filter;
  if (filter !== undefined && typeof filter !== 'function') throw invalidArgType('config.filter', 'of type function', filter);
  if (options === null) {
    setDefault(undefined);
    return;
  }
  const settings = validate(options);
  const state = { warned: false };
  const next: Default = {
    wanted: wanted(settings, 'default', (_socket, error) => warnOnce(state, error)),
    filter,
    carry: filter ? (specOf(filter) ? { options: { ...options }, spec: specOf(filter) } : undefined) : { options: { ...options } },
  };
  setDefault(next);
}
