// `node --import tcp-keepalive/register`, `--require`, NODE_OPTIONS, `bun --preload`, `deno run --preload`:
// the process-wide default from the TCP_KEEPALIVE environment variable, or exit code 9 and one line.
import { writeSync } from 'node:fs';
import { parseKeepaliveEnv } from './env';
import { filterFrom } from './filter';

/** Node's own exit code for a bad option ("Invalid Argument"). */
const BAD_CONFIGURATION = 9;

function stop(line: string, code: number): never {
  writeSync(2, `tcp-keepalive/register: ${line.replace(/\s*[\r\n]+\s*/g, ' ').trim()}\n`);
  process.exit(code);
}

const value = process.env.TCP_KEEPALIVE;
function invalid(why: string): never {
  stop(`TCP_KEEPALIVE=${JSON.stringify(value ?? '')} is not valid: ${why}`, BAD_CONFIGURATION);
}
const parsed = parseKeepaliveEnv(value);
if ('error' in parsed) invalid(parsed.error);
if (!parsed.off) {
  // Loaded only now: TCP_KEEPALIVE=off costs the parse alone, not the package and its binary.
  let setDefaultKeepalive: typeof import('./index').setDefaultKeepalive;
  try {
    ({ setDefaultKeepalive } = require('./index') as typeof import('./index'));
  } catch (error) {
    stop(`cannot load tcp-keepalive, so no connection would be watched: ${(error as Error).message}`, 1);
  }
  try {
    setDefaultKeepalive(parsed.options, parsed.filter ? { filter: filterFrom(parsed.filter) } : {});
  } catch (error) {
    invalid((error as Error).message);
  }
}
