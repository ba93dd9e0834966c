export type KeepaliveErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_KEEPALIVE_NOT_TCP'
  | 'ERR_KEEPALIVE_NOT_CONNECTED'
  | 'ERR_KEEPALIVE_UNSUPPORTED'
  | 'ERR_KEEPALIVE_SOCKET_NOT_FOUND'
  | 'ERR_KEEPALIVE_DEADAFTER_WITH_FIELDS';

export interface CodedError extends Error {
  code: string;
}

function withCode<E extends Error>(error: E, code: KeepaliveErrorCode): E & { code: KeepaliveErrorCode } {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  return error as E & { code: KeepaliveErrorCode };
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name ? `an instance of ${name}` : 'an object with no prototype';
  }
  if (typeof value === 'string') return `type string (${JSON.stringify(value.length > 28 ? `${value.slice(0, 25)}...` : value)})`;
  if (typeof value === 'symbol' || typeof value === 'bigint') return `type ${typeof value} (${String(value)}${typeof value === 'bigint' ? 'n' : ''})`;
  return `type ${typeof value} (${String(value)})`;
}

export function invalidArgType(name: string, expected: string, actual: unknown): TypeError {
  return withCode(new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(actual)}`), 'ERR_INVALID_ARG_TYPE');
}

export function invalidArgValue(name: string, reason: string): TypeError {
  return withCode(new TypeError(`The argument "${name}" ${reason}`), 'ERR_INVALID_ARG_VALUE');
}

export function outOfRange(name: string, range: string, actual: unknown): RangeError {
  return withCode(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${String(actual)}`), 'ERR_OUT_OF_RANGE');
}

export function keepaliveError(code: KeepaliveErrorCode, message: string): CodedError {
  return withCode(new Error(message), code);
}

/** Two options that say the same thing (deadAfter and one of the fields it sets). */
export function conflictingOptions(code: KeepaliveErrorCode, message: string): TypeError {
  return withCode(new TypeError(message), code);
}
