// `node --import tcp-keepalive/register`, `--require`, NODE_OPTIONS, `bun --preload`, `deno run --preload`:
// the process-wide default from the TCP_KEEPALIVE environment variable, or exit code 9 and one line.
import { writeSync } from 'node:fs';
import { parseKeepaliveEnv } from './env';
import { filterFrom } from './filter';
import { setDefaultKeepalive } from './index';

/** Node's own exit code for a bad option ("Invalid Argument"). */
const BAD_CONFIGURATION = 9;

function stop(value: string | undefined, why: string): never {
  const line = `tcp-keepalive/register: TCP_KEEPALIVE=${JSON.stringify(value ?? '')} is not valid: ${why}`.replace(/[\r\n]+/g, ' ');
  writeSync(2, `${line}\n`);
  process.exit(BAD_CONFIGURATION);
}

const value = process.env.TCP_KEEPALIVE;
const parsed = parseKeepaliveEnv(value);
if ('error' in parsed) stop(value, parsed.error);
if (!parsed.off) {
  try {
    setDefaultKeepalive(parsed.options, parsed.filter ? { filter: filterFrom(parsed.filter) } : {});
  } catch (error) {
    stop(value, (error as Error).message);
  }
}
