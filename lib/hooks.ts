/*
 * The one place this package patches Node. Each hook only reports an event to the connection model and passes
 * the call on to what was there before (another library's wrapper included, looked up at call time when it is
 * inherited, so a wrapper added later on a prototype further up is not skipped). Installed once, when the
 * package loads (so a setKeepAlive made before the first apply is known), and never removed: with no settings
 * and no default they do nothing, and removing them could undo other code's wrappers installed over them.
 *
 *  Socket.prototype.emit('connect')          a client connection: connected()
 *  Socket.prototype.setKeepAlive             after Node's own: keepAliveCalled()
 *  Socket.prototype._destroy(ETIMEDOUT)      before Node closes the descriptor: died()
 *  Server.prototype.emit('connection')       an accepted (or handed-in) connection: accepted()
 *                       ('listening')        a server with settings on a Unix path says so: listening()
 *  server.emit, per instance                 the same, for servers that are not net.Servers (Bun's http)
 *  worker_threads.Worker                     a default set here is carried into threads started after it
 */
import { Server, Socket } from 'node:net';
import * as path from 'node:path';
import { accepted, connected, currentDefault, died, keepAliveCalled, listening } from './connection';
import { runtime } from './options';
import { carrierOf } from './target';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** `proto[name]` as it is now, or, when inherited, as the prototype above holds it at each call. */
function previous(proto: object, name: string): (self: unknown) => Method {
  const own = Object.hasOwn(proto, name) ? ((proto as Record<string, Method>)[name] as Method) : undefined;
  const above = Object.getPrototypeOf(proto) as Record<string, Method>;
  return own ? () => own : () => above[name];
}

let installed = false;

export function installHooks(): void {
  if (installed) return;
  installed = true;
  const socketEmit = previous(Socket.prototype, 'emit');
  Socket.prototype.emit = function emit(this: Socket, event: string | symbol) {
    if (event === 'connect') connected(carrierOf(this));
    // eslint-disable-next-line prefer-rest-params
    return socketEmit(this).apply(this, arguments as unknown as unknown[]) as boolean;
  };
  const setKeepAlive = previous(Socket.prototype, 'setKeepAlive');
  Socket.prototype.setKeepAlive = function (this: Socket, ...args: unknown[]) {
    const result = setKeepAlive(this).apply(this, args);
    // Node 26.4+ also takes { enable, initialDelay, interval, count }.
    const first = args[0] as { enable?: unknown } | undefined;
    keepAliveCalled(carrierOf(this), Boolean(typeof first === 'object' && first !== null ? first.enable : first));
    return result as Socket;
  };
  const destroy = previous(Socket.prototype, '_destroy');
  Socket.prototype._destroy = function (this: Socket, error: Error | null, callback: (error?: Error | null) => void) {
    if (error && (error as NodeJS.ErrnoException).code === 'ETIMEDOUT') died(carrierOf(this), error);
    return destroy(this).call(this, error, callback) as void;
  };
  const serverEmit = previous(Server.prototype, 'emit');
  Server.prototype.emit = function emit(this: Server, event: string | symbol, socket?: unknown) {
    if (event === 'connection') accepted(this, socket as Socket);
    else if (event === 'listening') listening(this);
    // eslint-disable-next-line prefer-rest-params
    return serverEmit(this).apply(this, arguments as unknown as unknown[]) as boolean;
  };
  if (runtime.name === 'node') hookWorkers();
}

const hooked = new WeakSet<object>();

/** A server that is not a net.Server (Bun's http.createServer()): its own `emit`, the same report. */
export function hookServer(server: Server): void {
  const isNetServer: boolean = server instanceof Server;
  if (isNetServer || hooked.has(server)) return;
  hooked.add(server);
  const emit = server.emit;
  server.emit = function (this: Server, event: string | symbol, socket?: unknown) {
    if (event === 'connection') accepted(this, socket as Socket);
    else if (event === 'listening') listening(this);
    // eslint-disable-next-line prefer-rest-params
    return emit.apply(this, arguments as unknown as Parameters<Server['emit']>);
  } as Server['emit'];
}

export const WORKER_DEFAULT = 'tcp-keepalive:default';

type WorkerOptions = { execArgv?: string[] } & Record<string, unknown>;

/**
 * A worker thread runs its own copy of node:net. A Worker started while a default is set loads ./inherit.js
 * first (`--require`, after the execArgv it would inherit), which sets the same default there from the
 * thread's environment data. Flags a worker refuses (process-wide ones such as --max-old-space-size, which a
 * worker that inherits them ignores) are dropped from that copy.
 */
function hookWorkers(): void {
  const threads = require('node:worker_threads') as typeof import('node:worker_threads');
  const Original = threads.Worker;
  const inherit = path.join(__dirname, 'inherit.js');
  class Worker extends Original {
    constructor(filename: string | URL, options: WorkerOptions = {}) {
      const carry = currentDefault()?.carry;
      if (carry === undefined) {
        super(filename, options);
        return;
      }
      threads.setEnvironmentData(WORKER_DEFAULT, carry as never);
      const execArgv = [...(options.execArgv ?? process.execArgv), '--require', inherit];
      try {
        super(filename, { ...options, execArgv });
      } catch (error) {
        const err = error as { code?: string; message?: string };
        if (err.code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || options.execArgv) throw error;
        const refused = new Set((err.message ?? '').replace(/^[^:]*: /, '').split(', '));
        super(filename, { ...options, execArgv: execArgv.filter((flag) => !refused.has(flag)) });
      }
    }
  }
  threads.Worker = Worker;
  (require('node:module') as { syncBuiltinESMExports(): void }).syncBuiltinESMExports();
}
